"""How the command line reports errors: one ``error:`` line on stderr and an exit code.

Bad input ends with exit code 2 and a one-line ``error:`` message; so does a file or folder
that cannot be read or written (not a folder, read-only, no space left, permission denied)
and a store whose database cannot be written (full, read-only) — the message names the
path. An engine that cannot run ends with exit code 1; a cancelled render with 130.
"""

from __future__ import annotations

import errno
from contextlib import contextmanager
from typing import Iterator

import typer

from pipelines import InputError
from pipelines.engines import EngineUnavailableError, RenderCancelled

from ..store import database_errors, fault_kind


@contextmanager
def cli_errors() -> Iterator[None]:
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
    except database_errors() as exc:
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


def database_error_message(exc: BaseException) -> str:
    """One line for a store database's error (full, read-only, busy, unreachable...)."""
    path = getattr(exc, "store_path", None)
    where = f"store database {path!r}" if path else "store database"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    hint = {"full": ("cannot grow", "free some space and run again"),
            "read-only": ("is read-only", "make it writable or use another store"),
            "busy": ("is busy", "another process holds it; try again"),
            "unavailable": ("cannot be opened", "check that it exists and, for PostgreSQL, "
                                                  "that the server runs and the DSN is right"),
            }.get(fault_kind(exc))
    if hint is None:
        return f"{where}: {detail}"
    return f"{where} {hint[0]}: {detail} ({hint[1]})"


def choice(value: str, allowed, what: str) -> str:
    """``value`` if it is one of ``allowed``, else an ``InputError`` naming the choices."""
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")
    return value
