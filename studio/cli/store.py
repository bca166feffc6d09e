"""Commands about a creative store: ``studio store check``."""

from __future__ import annotations

from pathlib import Path

import typer

from .errors import cli_errors

app = typer.Typer(help="Inspect a creative store.", no_args_is_help=True)


@app.command("check")
def store_check(
    store: Path = typer.Argument(..., help="Store folder."),
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
