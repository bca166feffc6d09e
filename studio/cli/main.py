"""The root ``studio`` app: the version option and the command groups, wired in a fixed order.

Each group is a module of this package with its own ``typer.Typer()``; none imports this one.
Groups added without a name (create, learn, service, trust's verify) put their commands at the
top level; the named ones (audience, reward, store, keys) are subcommand groups. ``--help``
lists the commands in the order they are added here.
"""

from __future__ import annotations

import typer

from . import audience, create, learn, reward, safety, service, store, trust

app = typer.Typer(
    name="studio",
    help="Creative Studio: personalised ad creatives with the product kept pixel-fixed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"creative-studio {version('creative-studio')}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Creative Studio: personalised ad creatives with the product kept pixel-fixed."""


app.add_typer(create.app)       # prompts, render, demo, outfit
app.add_typer(learn.app)        # simulate, evolve, finetune
app.add_typer(service.app)      # batch, serve, evaluate
app.add_typer(trust.app)        # verify
app.add_typer(audience.app, name="audience")
app.add_typer(reward.app, name="reward")
app.add_typer(store.app, name="store")
app.add_typer(safety.app, name="safety")
app.add_typer(trust.keys_app, name="keys")
