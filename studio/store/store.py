"""The creative store: one SQLite database plus content-addressed files.

Layout of a store folder::

    store.db                     SQLite (WAL, foreign keys), schema versioned by migrations
    files/<ab>/<sha256>.png      creatives and product masks, named by the sha256 of their bytes

Tables: products, clusters (+ the audience document that assigns new users), prompts,
creatives (with their manifests and reward scores), arms, bandit snapshots, serving
events and rewards. Files are written to a temporary name and renamed before the rows
that point at them are committed in one transaction, so a crash leaves at most a
complete file without a row — which ``check`` reports and ``check(repair=True)`` (or the
next batch run, which writes the very same bytes) resolves.

Concurrent writers: the schema is read and migrated inside one ``BEGIN IMMEDIATE``
transaction (two processes opening a new store both succeed), and batch runs share their
work through *job leases* (``claim_job``): a job is claimed in a write transaction before
it is rendered, the lease names its owner (host, process) and expires after
``lease_seconds()`` unless the owner renews it; a lease of a process that no longer runs
on this host is free at once, so a killed run's jobs are taken over by the next.
SQLite errors keep their type; the store's database path is attached to them as
``exc.store_path`` so that faces can name it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import StudioError
from ..files import write_atomic
from .leases import Leases
from .pools import Pools
from .schema import MIGRATIONS, statements
from .serving_log import ServingLog

DB_NAME = "store.db"
FILES = "files"


class Store(Leases, Pools, ServingLog):
    """A store folder. Connections are per thread; writes go through ``transaction``."""

    def __init__(self, root, *, create: bool = False):
        self.root = Path(root)
        if not (self.root / DB_NAME).exists():
            if not create:
                raise StudioError(f"{str(self.root)!r} is not a store (no {DB_NAME}); run "
                                  "`studio batch` to create one")
            self.root.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._migrate()

    # ----------------------------------------------------------- connections
    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._named():
                conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
                try:
                    conn.row_factory = sqlite3.Row
                    conn.execute("PRAGMA busy_timeout=30000")
                    # Switching a new database to WAL needs it alone for a moment: retry.
                    _retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                    conn.execute("PRAGMA synchronous=NORMAL")
                    conn.execute("PRAGMA foreign_keys=ON")
                except BaseException:
                    conn.close()
                    raise
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (serialised within the process, IMMEDIATE across them)."""
        conn = self.connection()
        with self._named(), self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self._named():
            return self.connection().execute(sql, params).fetchall()

    @contextmanager
    def _named(self) -> Iterator[None]:
        """Attach the database path to SQLite errors (their type stays the same)."""
        try:
            yield
        except sqlite3.Error as exc:
            if getattr(exc, "store_path", None) is None:
                try:
                    exc.store_path = str(self.db_path)
                except AttributeError:
                    pass
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        """Bring the schema up to date. The version is read and the missing migrations
        applied inside one IMMEDIATE transaction, so two processes opening a new store at
        once apply each migration exactly once; a store that is up to date is only read
        (a read-only store opens)."""
        if self._read_version() == len(MIGRATIONS):
            return

        def apply() -> None:
            with self.transaction() as tx:
                tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = tx.execute("SELECT version FROM schema_version").fetchone()
                version = self._check_version(row[0] if row else 0)
                for number in range(version, len(MIGRATIONS)):
                    for statement in statements(MIGRATIONS[number]):
                        tx.execute(statement)
                if version < len(MIGRATIONS):
                    tx.execute("DELETE FROM schema_version")
                    tx.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS),))

        _retry_busy(apply, attempts=5)

    def _read_version(self) -> int:
        conn = self.connection()
        with self._named():
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = 'schema_version'").fetchone()
            row = conn.execute("SELECT version FROM schema_version").fetchone() if exists else None
        return self._check_version(row[0] if row else 0)

    def _check_version(self, version: int) -> int:
        if version > len(MIGRATIONS):
            raise StudioError(f"store {str(self.root)!r} has schema version {version}; this "
                              f"studio knows up to {len(MIGRATIONS)}: upgrade the studio")
        return version

    @property
    def schema_version(self) -> int:
        return int(self.query("SELECT version FROM schema_version")[0][0])

    # ----------------------------------------------------------------- files
    def file_path(self, sha256: str) -> Path:
        return self.root / FILES / sha256[:2] / f"{sha256}.png"

    def put_file(self, data: bytes) -> str:
        """Store bytes content-addressed (atomically); return their sha256."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.file_path(sha)
        if not path.exists():
            write_atomic(path, data)
        return sha

    def remove_temporary_files(self, *, min_age: float = 0.0) -> int:
        """Delete temporary files left by a killed writer: those last modified more than
        ``min_age`` seconds before the call (a live writer's file is younger)."""
        count = 0
        cutoff = time.time() - min_age
        for tmp in (self.root / FILES).rglob("*.tmp") if (self.root / FILES).exists() else []:
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink(missing_ok=True)
                    count += 1
            except FileNotFoundError:
                pass
        return count

    # ---------------------------------------------------------------- checks
    def check(self, *, repair: bool = False) -> dict:
        """Orphan files (no row points at them), missing files, hash mismatches and
        temporary leftovers. With ``repair``, orphans and leftovers are deleted."""
        referenced = {}
        for row in self.query("SELECT creative_id, image_sha256, mask_sha256 FROM creatives"):
            referenced[row["image_sha256"]] = row["creative_id"]
            referenced.setdefault(row["mask_sha256"], row["creative_id"])
        present = {}
        leftovers = []
        if (self.root / FILES).exists():
            for path in (self.root / FILES).rglob("*"):
                if path.is_file():
                    if path.suffix == ".tmp":
                        leftovers.append(str(path))
                    else:
                        present[path.stem] = path
        orphans = sorted(str(p) for sha, p in present.items() if sha not in referenced)
        missing = sorted(f"{cid}: {sha}" for sha, cid in referenced.items() if sha not in present)
        mismatched = sorted(str(p) for sha, p in present.items()
                            if sha in referenced and hashlib.sha256(p.read_bytes()).hexdigest() != sha)
        if repair:
            for path in orphans + leftovers:
                Path(path).unlink(missing_ok=True)
        return {"orphans": orphans, "missing": missing, "mismatched": mismatched,
                "temporary": leftovers, "files": len(present),
                "creatives": len({c for c in referenced.values()}),
                "ok": not (orphans or missing or mismatched or leftovers)}

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
            raise StudioError(f"store {str(self.root)!r} has no audience yet; run `studio batch`")
        return Audience.from_document(json.loads(rows[0][0]), where="the store's audience")


def _retry_busy(action, attempts: int = 40):
    """Run ``action``; retry while SQLite says the database is locked or busy (a second
    process opening or migrating the same new store)."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if attempt == attempts - 1 or not ("locked" in text or "busy" in text):
                raise
            time.sleep(min(0.05 * (attempt + 1), 0.5))
