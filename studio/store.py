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
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StudioError
from .files import write_atomic

DB_NAME = "store.db"
FILES = "files"
#: How long a job lease lasts without renewal, in seconds (``STUDIO_LEASE_SECONDS``);
#: a running batch renews its leases every third of it.
LEASE_SECONDS = 300.0
LEASE_ENV = "STUDIO_LEASE_SECONDS"

#: Schema migrations, applied in order; the version table records how far a store is.
MIGRATIONS = [
    """
    CREATE TABLE products (
        product_id TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        title TEXT NOT NULL,
        image_sha256 TEXT NOT NULL
    );
    CREATE TABLE audience (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document TEXT NOT NULL
    );
    CREATE TABLE clusters (
        cluster_id INTEGER PRIMARY KEY,
        profile TEXT NOT NULL,
        size INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE prompts (
        prompt_id TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL REFERENCES clusters(cluster_id),
        text TEXT NOT NULL,
        negative_prompt TEXT NOT NULL,
        tags TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE TABLE creatives (
        creative_id TEXT PRIMARY KEY,
        job_key TEXT NOT NULL UNIQUE,
        product_id TEXT NOT NULL REFERENCES products(product_id),
        prompt_id TEXT NOT NULL REFERENCES prompts(prompt_id),
        cluster_id INTEGER NOT NULL REFERENCES clusters(cluster_id),
        format TEXT NOT NULL,
        seed INTEGER NOT NULL,
        image_sha256 TEXT NOT NULL,
        mask_sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        reward REAL,
        selected INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX creatives_by_product ON creatives(product_id, cluster_id);
    CREATE TABLE arms (
        arm_id TEXT PRIMARY KEY REFERENCES prompts(prompt_id),
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL REFERENCES clusters(cluster_id),
        prior_ctr REAL,
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE bandit_snapshots (
        category TEXT PRIMARY KEY,
        model BLOB NOT NULL,
        reward_seq INTEGER NOT NULL,
        saved_at REAL NOT NULL
    );
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        product_id TEXT NOT NULL,
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL,
        arm_id TEXT NOT NULL,
        creative_id TEXT NOT NULL,
        placement TEXT NOT NULL,
        candidates TEXT NOT NULL,
        context TEXT NOT NULL,
        propensity REAL NOT NULL,
        score REAL NOT NULL
    );
    CREATE TABLE rewards (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE REFERENCES events(event_id),
        reward REAL NOT NULL,
        received_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE evolution (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        round INTEGER NOT NULL,
        created_at REAL NOT NULL,
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    """,
    # How many impressions an arm's prior CTR counts for (calibrated from the reward
    # model's error on held-out creatives; NULL = the service's default).
    """
    ALTER TABLE arms ADD COLUMN prior_impressions REAL;
    """,
    # Job leases: who renders which batch job, until when (see ``Store.claim_job``).
    """
    CREATE TABLE job_leases (
        job_key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
]


def lease_seconds() -> float:
    """The lease duration: ``STUDIO_LEASE_SECONDS`` when set, else ``LEASE_SECONDS``."""
    value = os.environ.get(LEASE_ENV, "").strip()
    if not value:
        return LEASE_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 1 <= seconds <= 86400:
        raise StudioError(f"{LEASE_ENV}={value!r} must be a number of seconds from 1 to 86400")
    return seconds


class Store:
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
                    for statement in _statements(MIGRATIONS[number]):
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

    # ---------------------------------------------------------------- leases
    @staticmethod
    def new_owner() -> str:
        """A lease owner id, unique to this call (host, process, random part)."""
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def claim_job(self, job_key: str, owner: str, ttl: float | None = None) -> str:
        """Try to take a batch job: ``"done"`` (its creative is in the store), ``"busy"``
        (another live owner holds its lease) or ``"claimed"`` (the lease is ``owner``'s
        for ``ttl`` seconds, default ``lease_seconds()``), decided in one transaction."""
        ttl = lease_seconds() if ttl is None else ttl
        now = time.time()
        host, pid = _owner_parts(owner)
        with self.transaction() as tx:
            if tx.execute("SELECT 1 FROM creatives WHERE job_key = ?", (job_key,)).fetchone():
                return "done"
            row = tx.execute("SELECT owner, host, pid, expires_at FROM job_leases "
                             "WHERE job_key = ?", (job_key,)).fetchone()
            if row is not None and row["owner"] != owner and _lease_alive(row, now):
                return "busy"
            tx.execute("INSERT INTO job_leases (job_key, owner, host, pid, expires_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT(job_key) DO UPDATE SET "
                       "owner = excluded.owner, host = excluded.host, pid = excluded.pid, "
                       "expires_at = excluded.expires_at",
                       (job_key, owner, host, pid, now + ttl))
        return "claimed"

    def renew_leases(self, owner: str, ttl: float | None = None) -> int:
        """Extend every lease of ``owner``; returns how many it holds."""
        ttl = lease_seconds() if ttl is None else ttl
        with self.transaction() as tx:
            return tx.execute("UPDATE job_leases SET expires_at = ? WHERE owner = ?",
                              (time.time() + ttl, owner)).rowcount

    def release_leases(self, owner: str) -> None:
        """Give up every lease of ``owner`` (its unfinished jobs are free again)."""
        with self.transaction() as tx:
            tx.execute("DELETE FROM job_leases WHERE owner = ?", (owner,))

    def live_leases(self, *, exclude: str | None = None) -> int:
        """How many leases live owners (other than ``exclude``) hold."""
        now = time.time()
        rows = self.query("SELECT owner, host, pid, expires_at FROM job_leases")
        return sum(1 for r in rows if r["owner"] != exclude and _lease_alive(r, now))

    @contextmanager
    def keep_leases(self, owner: str, ttl: float | None = None) -> Iterator[None]:
        """Renew ``owner``'s leases in the background while the body runs (a long render
        keeps its job); release them all at the end, whatever happens."""
        ttl = lease_seconds() if ttl is None else ttl
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(ttl / 3):
                try:
                    self.renew_leases(owner, ttl)
                except sqlite3.Error:
                    pass  # a full or read-only store: the main thread reports it
            self.close()

        thread = threading.Thread(target=renew, name="studio-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            try:
                self.release_leases(owner)
            except sqlite3.Error:
                pass  # expired leases are free anyway; do not hide the error at hand

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
        from .audience import Audience

        rows = self.query("SELECT document FROM audience WHERE id = 1")
        if not rows:
            raise StudioError(f"store {str(self.root)!r} has no audience yet; run `studio batch`")
        return Audience.from_document(json.loads(rows[0][0]), where="the store's audience")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


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


def _owner_parts(owner: str) -> tuple[str, int]:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host, int(pid) if pid.isdigit() else -1


def _lease_alive(row, now: float) -> bool:
    """A lease holds until it expires, or until its owner's process is gone (known only
    on the owner's host)."""
    if row["expires_at"] <= now:
        return False
    if row["host"] == socket.gethostname() and row["pid"] != os.getpid():
        return _process_running(int(row["pid"]))
    return True


def _process_running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

