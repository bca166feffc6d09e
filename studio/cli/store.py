"""Commands about a creative store: ``studio store check``, ``studio store copy``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import cli_errors
from .options import store_argument, store_folder_option

app = typer.Typer(help="Inspect a creative store.", no_args_is_help=True)


@app.command("check")
def store_check(
    store: str = store_argument("Store"),
    repair: bool = typer.Option(False, help="Delete orphan and temporary files."),
) -> None:
    """Find orphan files, missing files and hash mismatches; exit 1 if any."""
    from ..store import Store

    with cli_errors():
        report = Store(store).check(repair=repair)
    for kind in ("orphans", "missing", "mismatched", "temporary"):
        for item in report[kind]:
            typer.echo(f"{kind}: {item}")
    typer.echo(f"{report['creatives']} creatives, {report['files']} files: "
               + ("ok" if report["ok"] else "problems found" + (" (repaired)" if repair else "")))
    if not report["ok"] and not repair:
        raise typer.Exit(1)


@app.command("copy")
def store_copy(
    source: str = typer.Argument(..., help="The store to copy: a folder or a PostgreSQL DSN."),
    target: str = typer.Argument(..., help="A new store: a folder or a PostgreSQL DSN of an "
                                 "empty database."),
    store_folder: Optional[Path] = store_folder_option(),
) -> None:
    """Copy a store (rows, files, bandit snapshots, the served log) into a new, empty one —
    e.g. a SQLite folder into PostgreSQL. A failed copy leaves the target without rows."""
    from ..store import Store, redact
    from ..store.transfer import copy_store

    with cli_errors():
        origin = Store(source)
        copied = copy_store(origin, Store(target, folder=store_folder, create=True),
                            echo=typer.echo)
    typer.echo(f"copied {redact(source)} to {redact(target)}: "
               + ", ".join(f"{n} {table}" for table, n in copied.items()))
