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
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StudioError
from .files import write_atomic

DB_NAME = "store.db"
FILES = "files"

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
]


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
    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.root / DB_NAME, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (serialised within the process, IMMEDIATE across them)."""
        conn = self.connection()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        conn = self.connection()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > len(MIGRATIONS):
            raise StudioError(f"store {str(self.root)!r} has schema version {version}; this "
                              f"studio knows up to {len(MIGRATIONS)}: upgrade the studio")
        for number in range(version, len(MIGRATIONS)):
            with self.transaction() as tx:
                for statement in _statements(MIGRATIONS[number]):
                    tx.execute(statement)
                tx.execute("DELETE FROM schema_version")
                tx.execute("INSERT INTO schema_version VALUES (?)", (number + 1,))

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

    def remove_temporary_files(self) -> int:
        """Delete temporary files left by a killed writer (call with no writer running)."""
        count = 0
        for tmp in (self.root / FILES).rglob("*.tmp") if (self.root / FILES).exists() else []:
            tmp.unlink(missing_ok=True)
            count += 1
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
        from .audience import Audience

        rows = self.query("SELECT document FROM audience WHERE id = 1")
        if not rows:
            raise StudioError(f"store {str(self.root)!r} has no audience yet; run `studio batch`")
        return Audience.from_document(json.loads(rows[0][0]), where="the store's audience")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

