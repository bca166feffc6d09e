"""The ``studio`` command line (also ``python -m studio``).

Each command is a thin face over ``studio`` functions. Bad input ends with exit code 2
and a one-line ``error:`` message; so does a file or folder that cannot be read or
written (not a folder, read-only, no space left, permission denied) and a store whose
database cannot be written (full, read-only) — the message names the path. An engine
that cannot run ends with exit code 1.
"""

from __future__ import annotations

import errno
import sqlite3
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
    except OSError as exc:
        typer.echo(f"error: {os_error_message(exc)}", err=True)
        raise typer.Exit(2) from None
    except sqlite3.Error as exc:
        typer.echo(f"error: {database_error_message(exc)}", err=True)
        raise typer.Exit(2) from None


#: What an OS error means for the person at the command line, and what to do.
_OS_REASONS = {
    errno.ENOSPC: ("no space left on device", "free some space and run again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space and run again"),
    errno.EROFS: ("read-only file system", "choose a writable location"),
    errno.EACCES: ("permission denied", "choose a location you may write to"),
    errno.EPERM: ("operation not permitted", "choose a location you may write to"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.EISDIR: ("is a folder", "give a file name"),
    errno.EEXIST: ("already exists", "choose another path"),
    errno.ENOENT: ("no such file or folder", None),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
    errno.EIO: ("input/output error", "check the disk"),
}


def os_error_message(exc: OSError) -> str:
    """One line for an OS error: the path(s) it concerns, the reason, what to do."""
    reason, hint = _OS_REASONS.get(exc.errno, (None, None))
    reason = reason or (exc.strerror or str(exc) or type(exc).__name__).rstrip(".").lower()
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(repr(p) for p in paths)
    text = f"{where}: {reason}" if where else reason
    return f"{text} ({hint})" if hint else text


def database_error_message(exc: sqlite3.Error) -> str:
    """One line for an SQLite error of a store (full, read-only, cannot open...)."""
    path = getattr(exc, "store_path", None)
    where = f"store database {path!r}" if path else "store database"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    lowered = detail.lower()
    if "full" in lowered:
        return f"{where} cannot grow: {detail} (free some space and run again)"
    if "readonly" in lowered or "read-only" in lowered:
        return f"{where} is read-only: {detail} (make it writable or use another store)"
    if "locked" in lowered or "busy" in lowered:
        return f"{where} is busy: {detail} (another process holds it; try again)"
    return f"{where}: {detail}"


def _choice(value: str, allowed, what: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
    return value


# The commands live in studio/commands/; importing them registers them on ``app``.
from .commands import audience, create, learn, service  # noqa: E402,F401
