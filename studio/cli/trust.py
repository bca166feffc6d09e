"""Commands about content credentials: ``studio keys init`` and ``studio verify``.

Two apps: ``keys_app`` is the ``keys`` subcommand group; ``app`` holds ``verify``, added
without a name so that it is a top-level command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer

from .errors import cli_errors

keys_app = typer.Typer(help="Signing keys for content credentials.", no_args_is_help=True)
app = typer.Typer()


@keys_app.command("init")
def keys_init(
    folder: Path = typer.Argument(..., help="A new or empty folder for the keys."),
) -> None:
    """Make a development CA and a signing certificate it issued (ES256), with a
    signing.yaml for STUDIO_SIGNING=DIR. For development only: production signs with a
    remote or subprocess signer (command: in signing.yaml)."""
    from ..creatives.credentials import init_keys

    with cli_errors():
        made = init_keys(folder)
    for name in made["files"]:
        typer.echo(f"wrote {Path(made['folder']) / name}")
    typer.echo(f"signer {made['signer']!r}, issued by {made['ca']!r}, valid until "
               f"{made['not_valid_after']}")
    typer.echo("development only: production uses a remote or subprocess signer (command: "
               f"in signing.yaml). Sign with STUDIO_SIGNING={made['folder']}; verify with "
               f"--trust {Path(made['folder']) / 'ca.pem'}")


@app.command("verify")
def verify_files(
    files: List[Path] = typer.Argument(..., help="Creatives (PNG) to check."),
    trust: Optional[Path] = typer.Option(
        None, "--trust", help="Trust anchors (PEM CA certificates); default: "
                              "$STUDIO_SIGNING/ca.pem when it exists."),
) -> None:
    """Check the content credentials (C2PA) of creatives: one JSON line per file.

    Its state is trusted (signed by a trusted signer), valid (signature good, signer not
    trusted), invalid (changed after signing) or unsigned. Exits 1 if any file is invalid
    or unsigned."""
    from ..creatives.credentials import verify
    from ..errors import StudioError
    from ..files import read_bytes

    with cli_errors():
        missing = [str(path) for path in files if not path.is_file()]
        if missing:
            raise StudioError(f"no such file: {', '.join(missing)}")
        if trust is None and os.environ.get("STUDIO_SIGNING"):
            default = Path(os.environ["STUDIO_SIGNING"]) / "ca.pem"
            trust = default if default.is_file() else None
        anchors = None if trust is None else read_bytes(trust, "trust anchors")
        reports = []
        for path in files:
            reports.append(verify(path, trust_anchors=anchors))
            typer.echo(json.dumps(reports[-1]))
    if any(report["state"] in ("invalid", "unsigned") for report in reports):
        raise typer.Exit(1)
