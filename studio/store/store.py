"""The creative store: a database plus content-addressed files in a folder.

Layout of a store folder::

    store.db                     SQLite (WAL, foreign keys) — absent for a PostgreSQL store
    files/<ab>/<sha256>.png      creatives and product masks, named by the sha256 of their bytes

The database is SQLite in the folder, or PostgreSQL when the location is a DSN
(``postgresql://…``; ``database.py`` hides the difference). A PostgreSQL store keeps its
files in a folder too (a shared filesystem for several machines): given as ``folder`` or
``STUDIO_STORE_FOLDER`` and recorded in the database when it is created, so later
openings need only the DSN.

Tables: products, clusters (+ the audience document that assigns new users), prompts,
creatives (with their manifests and reward scores), arms, bandit snapshots, serving
events and rewards. Files are written to a temporary name and renamed before the rows
that point at them are committed in one transaction, so a crash leaves at most a
complete file without a row — which ``check`` reports and ``check(repair=True)`` (or the
next batch run, which writes the very same bytes) resolves.

Concurrent writers: the schema is read and migrated inside one write transaction (two
processes opening a new store both succeed), and batch runs share their work through
*job leases* (``claim_job``): a job is claimed in a write transaction before it is
rendered, the lease names its owner (host, process) and expires after
``lease_seconds()`` unless the owner renews it; a lease of a process that no longer runs
on this host is free at once, so a killed run's jobs are taken over by the next.
Database errors keep their type (``sqlite3.Error`` or ``psycopg.Error``); the database's
name (path, or DSN without password) is attached to them as ``exc.store_path`` so that
faces can name it.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import StudioError
from .content import FILES, ContentFiles
from .database import database_errors, is_dsn, open_database, redact, retry_busy
from .leases import Leases
from .pools import Pools
from .schema import MIGRATIONS, statements
from .serving_log import ServingLog

DB_NAME = "store.db"
#: Where a PostgreSQL store being created keeps its files (when ``folder`` is not given).
FOLDER_ENV = "STUDIO_STORE_FOLDER"
#: The store location the command line and the API use when none is given.
STORE_ENV = "STUDIO_STORE"
#: The schema version that added ``store_settings``.
_SETTINGS_VERSION = 5


class Store(ContentFiles, Leases, Pools, ServingLog):
    """A store: ``location`` is a folder (SQLite inside it) or a PostgreSQL DSN (with
    ``folder`` for its files). Connections are per thread; writes go through
    ``transaction``."""

    def __init__(self, location, *, folder=None, create: bool = False):
        location = str(location) if is_dsn(str(location)) else Path(location)
        self.location = redact(location) if isinstance(location, str) else str(location)
        if isinstance(location, Path):
            if folder is not None:
                raise StudioError("a folder store keeps its files inside it; `folder` is "
                                  "for PostgreSQL stores")
            self.root = location
        self.database = open_database(location, location if isinstance(location, Path) else None)
        if not self.database.exists():
            if not create:
                raise StudioError(f"{str(self.root)!r} is not a store (no {DB_NAME}); run "
                                  "`studio batch` to create one")
            self.root.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._errors = database_errors()
        version = self._read_version()
        if isinstance(location, str):
            if version == 0 and not create:
                raise StudioError(f"{self.location!r} is not a store (no schema); run "
                                  "`studio batch --store …` to create one")
            self.root = self._files_folder(folder, version, create=create)
        self._migrate(version)
        if isinstance(location, str):
            self._record_folder()

    # ----------------------------------------------------------- connections
    @property
    def db_path(self) -> Path:
        """The SQLite file (a folder store only)."""
        return self.root / DB_NAME

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.database.kind

    def connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self.database.usable(conn):
            conn.close()
            conn = None
        if conn is None:
            with self._named():
                conn = self.database.connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator:
        """One write transaction: serialised within the process, and across processes
        (SQLite's ``BEGIN IMMEDIATE``; PostgreSQL's advisory write lock)."""
        conn = self.connection()
        with self._named(), self._write_lock:
            self.database.begin(conn)
            try:
                yield conn
            except BaseException:
                self._rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                self._rollback(conn)
                raise

    def insert(self, sql: str, params=()) -> None:
        """One insert that no other write reads before it writes, committed on return.
        PostgreSQL runs it on its own (autocommit: one round trip, no write lock), so it
        never waits behind the serialised writes; SQLite serialises it as any write."""
        if self.database.kind == "sqlite":
            with self.transaction() as tx:
                tx.execute(sql, params)
            return
        with self._named():
            self.connection().execute(sql, params)

    def _rollback(self, conn) -> None:
        if self.database.usable(conn) and conn.in_transaction:
            conn.execute("ROLLBACK")

    def query(self, sql: str, params=()) -> list:
        """Rows of one read statement (readable by position and by column name)."""
        with self._named():
            return self.connection().execute(sql, params).fetchall()

    @contextmanager
    def _named(self) -> Iterator[None]:
        """Attach the database's name to its errors (their type stays the same)."""
        try:
            yield
        except self._errors as exc:
            if getattr(exc, "store_path", None) is None:
                try:
                    exc.store_path = self.database.name
                except AttributeError:
                    pass
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self, version: int) -> None:
        """Bring the schema up to date. The version is read and the missing migrations
        applied inside one write transaction, so two processes opening a new store at
        once apply each migration exactly once; a store that is up to date is only read
        (a read-only store opens)."""
        if version == len(MIGRATIONS):  # read by the caller, outside any transaction
            return

        def apply() -> None:
            with self.transaction() as tx:
                tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = tx.execute("SELECT version FROM schema_version").fetchone()
                version = self._check_version(row[0] if row else 0)
                for number in range(version, len(MIGRATIONS)):
                    for statement in statements(MIGRATIONS[number]):
                        tx.execute(self.database.ddl(statement))
                if version < len(MIGRATIONS):
                    tx.execute("DELETE FROM schema_version")
                    tx.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))

        retry_busy(apply, attempts=5)

    def _read_version(self) -> int:
        conn = self.connection()
        with self._named():
            exists = self.database.table_exists(conn, "schema_version")
            row = conn.execute("SELECT version FROM schema_version").fetchone() if exists else None
        return self._check_version(row[0] if row else 0)

    def _check_version(self, version: int) -> int:
        if version > len(MIGRATIONS):
            raise StudioError(f"store {self.location!r} has schema version {version}; this "
                              f"studio knows up to {len(MIGRATIONS)}: upgrade the studio")
        return version

    def _files_folder(self, folder, version: int, *, create: bool) -> Path:
        """A PostgreSQL store's files folder: ``folder``, else ``STUDIO_STORE_FOLDER``,
        else the one recorded when the store was created. Decided before anything is
        written, so a refused opening leaves the database as it was."""
        given = folder if folder is not None else os.environ.get(FOLDER_ENV, "").strip() or None
        recorded = None
        if version >= _SETTINGS_VERSION:
            rows = self.query("SELECT value FROM store_settings WHERE key = 'folder'")
            recorded = rows[0][0] if rows else None
        if given is None and recorded is None:
            raise StudioError(f"PostgreSQL store {self.location!r} has no files folder yet: "
                              f"give one (--store-folder DIR or {FOLDER_ENV}=DIR)")
        path = Path(given if given is not None else recorded).resolve()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            raise StudioError(f"the files folder {str(path)!r} of store {self.location!r} "
                              "does not exist (mount it, or give the right one)")
        return path

    def _record_folder(self) -> None:
        """Record the files folder of a new PostgreSQL store (the first one given stays)."""
        if not self.query("SELECT 1 FROM store_settings WHERE key = 'folder'"):
            with self.transaction() as tx:
                tx.execute("INSERT INTO store_settings (key, value) VALUES ('folder', ?) "
                           "ON CONFLICT (key) DO NOTHING", (str(self.root),))

    @property
    def schema_version(self) -> int:
        return int(self.query("SELECT version FROM schema_version")[0][0])

    # ----------------------------------------------------------- convenience
    def counts(self) -> dict:
        tables = ("products", "clusters", "prompts", "creatives", "arms", "events", "rewards")
        return {t: int(self.query(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}

    def clear_campaign(self) -> None:
        """Forget served events, rewards and bandit snapshots (the pool stays): the next
        selection service starts learning from the arms' priors."""
        with self.transaction() as tx:
            tx.execute("DELETE FROM rewards")
            tx.execute("DELETE FROM events")
            tx.execute("DELETE FROM bandit_snapshots")

    def audience(self):
        """The store's fitted audience."""
        from ..inputs.audience import Audience

        rows = self.query("SELECT document FROM audience WHERE id = 1")
        if not rows:
            raise StudioError(f"store {self.location!r} has no audience yet; run `studio batch`")
        return Audience.from_document(json.loads(rows[0][0]), where="the store's audience")
