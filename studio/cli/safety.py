"""Commands of the safety gate: ``studio safety list``, ``studio safety override``."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import typer

from .errors import cli_errors
from .options import store_option

app = typer.Typer(help="Creatives the safety gate blocked, and reviewers' overrides.",
                  no_args_is_help=True)


@app.command("list")
def safety_list(store: str = store_option("Store built by `studio batch`")) -> None:
    """The creatives the safety gate blocked and why, one JSON object per line
    (``override``: who let it through, why and when; null while it is held)."""
    from ..store import Store

    with cli_errors():
        blocked = Store(store).blocked_creatives()
    for record in blocked:
        typer.echo(json.dumps(record))
    held = sum(r["override"] is None for r in blocked)
    typer.echo(f"{len(blocked)} blocked creatives, {held} held, {len(blocked) - held} overridden",
               err=True)


@app.command("override")
def safety_override(
    creative_id: str = typer.Argument(..., help="The blocked creative (`studio safety list`)."),
    store: str = store_option("Store built by `studio batch`"),
    reason: str = typer.Option(..., help="Why the creative may be served (recorded)."),
    reviewer: str = typer.Option(..., help="Who decides (recorded)."),
) -> None:
    """Let a blocked creative through, recording the reviewer and the reason.

    It becomes servable at the next choice of arms — the end of the next `studio batch`
    on this store (or a render in the UI) — and is served by `studio serve` processes
    started after that; running services keep what they loaded."""
    from ..store import Store

    with cli_errors():
        done = Store(store).override_safety(creative_id, reviewer, reason)
    at = datetime.fromtimestamp(done["at"], timezone.utc).isoformat(timespec="seconds")
    typer.echo(f"overrode {creative_id} ({done['reviewer']}: {done['reason']}, {at}); it can "
               "be served after the next `studio batch` on this store")
