"""Options several command groups share: where the store is."""

from __future__ import annotations

import typer

from ..store import FOLDER_ENV, STORE_ENV

_WHERE = (f"a folder (SQLite inside it) or a PostgreSQL DSN postgresql://user@host/db "
          f"(default: ${STORE_ENV})")


def store_option(what: str):
    """``--store``: a store folder or a PostgreSQL DSN, ``$STUDIO_STORE`` by default."""
    return typer.Option(..., "--store", envvar=STORE_ENV, show_envvar=False,
                        help=f"{what}: {_WHERE}.")


def store_argument(what: str):
    """The store as a positional argument (``studio store check STORE``)."""
    return typer.Argument(..., envvar=STORE_ENV, show_envvar=False, metavar="STORE",
                          help=f"{what}: {_WHERE}.")


def store_folder_option():
    """``--store-folder``: where a new PostgreSQL store keeps its files."""
    return typer.Option(None, "--store-folder", envvar=FOLDER_ENV, show_envvar=False,
                        help="Files folder of a new PostgreSQL store (recorded in it; a "
                             f"shared filesystem for several machines; default: ${FOLDER_ENV}). "
                             "A folder store keeps its files inside it.")
