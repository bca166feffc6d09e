"""The ``studio`` command line (also ``python -m studio``).

Each command is a thin face over ``studio`` functions. Bad input ends with exit code 2
and a one-line ``error:`` message; an engine that cannot run ends with exit code 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import typer

from pipelines import InputError
from pipelines.engines import EngineUnavailableError, RenderCancelled

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


@contextmanager
def _cli_errors() -> Iterator[None]:
    """Turn the library's errors into one line on stderr and an exit code."""
    try:
        yield
    except (InputError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except EngineUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except RenderCancelled as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(130) from None


def _choice(value: str, allowed, what: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
    return value


# The commands live in studio/commands/; importing them registers them on ``app``.
from .commands import audience, create, learn, service  # noqa: E402,F401
