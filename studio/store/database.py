"""The two databases a store can live in — SQLite (a file in the store folder) and
PostgreSQL (a DSN) — behind one small interface, so that the repository methods write
their SQL once.

The SQL the store writes is the common subset of both: ``?`` placeholders (turned into
psycopg's ``%s`` here), ``INSERT … ON CONFLICT … DO NOTHING / DO UPDATE``, ``RETURNING``.
The schema is written in SQLite's words and translated for PostgreSQL by ``ddl``
(``INTEGER`` → ``BIGINT``, ``REAL`` → ``DOUBLE PRECISION``, ``BLOB`` → ``BYTEA``, an
``AUTOINCREMENT`` key → an identity column). A small layer of our own rather than
SQLAlchemy Core: the store has ~60 statements, all simple, and this keeps the SQL readable
where it is used and the dependency list short.

Write transactions are serialised, on both backends, exactly as SQLite's
``BEGIN IMMEDIATE`` does: PostgreSQL takes a transaction-level advisory lock first. Every
repository method that reads and then writes (claiming a job lease, checking a reward
against the log, migrating) is therefore race-free on both, with the same code.

Why this module is long: the two backends stand side by side, method for method, so that
every difference between them is visible in one place.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

from ..errors import StudioError

#: The advisory lock every PostgreSQL write transaction holds (one store per database).
WRITE_LOCK_KEY = 0x5354554449304B  # "STUDIO" + a version nibble, as a bigint

DSN_SCHEMES = ("postgresql://", "postgres://")


def is_dsn(location) -> bool:
    """Whether a store location names a PostgreSQL database rather than a folder."""
    return isinstance(location, str) and location.startswith(DSN_SCHEMES)


def redact(dsn: str) -> str:
    """A DSN without its password, for messages and logs (a folder path as it is)."""
    if not is_dsn(dsn):
        return str(dsn)
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception types a store's database raises (psycopg's when it is installed)."""
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


#: PostgreSQL SQLSTATE classes and codes that mean "the database cannot take writes now"
#: (insufficient resources, connection lost, operator intervention, lock timeout,
#: read-only transaction), as SQLite's messages do below.
_PG_FAULT_CLASSES = ("53", "08", "57", "58")
_PG_FAULT_CODES = {"55P03": "busy", "25006": "read-only", "40P01": "busy"}
_SQLITE_FAULTS = {"full": "full", "readonly": "read-only", "read-only": "read-only",
                  "locked": "busy", "busy": "busy", "disk i/o": "i/o error",
                  "unable to open": "unavailable"}


def fault_kind(exc: BaseException) -> str | None:
    """What a database error says about the storage — ``"full"``, ``"read-only"``,
    ``"busy"``, ``"i/o error"`` or ``"unavailable"`` — or None when it is not a storage
    fault (a bug, a constraint). The faces turn a fault into 503 / a one-line error."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return next((kind for word, kind in _SQLITE_FAULTS.items() if word in text), None)
    try:
        import psycopg
    except ImportError:
        return None
    if not isinstance(exc, psycopg.Error):
        return None
    state = getattr(exc, "sqlstate", None) or ""
    if state in _PG_FAULT_CODES:
        return _PG_FAULT_CODES[state]
    if state[:2] == "53":
        return "full"
    if state[:2] in _PG_FAULT_CLASSES or (not state and isinstance(exc, psycopg.OperationalError)):
        return "unavailable"
    return None


class Row(tuple):
    """A result row readable by position and by column name, like ``sqlite3.Row``
    (``dict(row)`` gives ``{column: value}``)."""

    __slots__ = ()
    _columns: tuple[str, ...] = ()

    def __getitem__(self, key):
        if isinstance(key, str):
            try:
                key = self._columns.index(key)
            except ValueError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._columns)


class SQLiteDatabase:
    """``store.db`` in the store folder: WAL, foreign keys on, ``BEGIN IMMEDIATE``."""

    kind = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            # Switching a new database to WAL needs it alone for a moment: retry.
            retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def usable(conn) -> bool:
        return True

    @staticmethod
    def begin(conn) -> None:
        conn.execute("BEGIN IMMEDIATE")

    @staticmethod
    def notify(conn, channel: str, payload: str) -> None:
        """Nothing to do: SQLite readers of the log poll it."""

    def listener(self, channel: str) -> "Poller":
        return Poller()

    @staticmethod
    def ddl(statement: str) -> str:
        return statement

    @staticmethod
    def continue_numbering(conn, table: str, column: str) -> None:
        """After rows were inserted with explicit keys: AUTOINCREMENT continues by itself."""

    @staticmethod
    def table_exists(conn, table: str) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (table,)).fetchone() is not None

    @staticmethod
    @contextmanager
    def lock_wait(conn, wait_ms: int) -> Iterator[None]:
        """Wait at most ``wait_ms`` for the write lock inside the body."""
        waited = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(waited)}")


class PostgresDatabase:
    """A PostgreSQL database named by a DSN (psycopg 3, autocommit connections with
    explicit transactions; writers serialised by an advisory lock)."""

    kind = "postgresql"

    def __init__(self, dsn: str):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StudioError("a PostgreSQL store needs psycopg: pip install "
                              "'creative-studio[postgres]'") from None
        self.dsn = dsn
        self.name = redact(dsn)

    def exists(self) -> bool:
        return True  # the database itself is made by its administrator

    def connect(self) -> "PostgresConnection":
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10,
                               row_factory=_pg_rows)
        return PostgresConnection(conn)

    @staticmethod
    def usable(conn) -> bool:
        return not (conn.raw.closed or conn.raw.broken)

    @staticmethod
    def begin(conn) -> None:
        """Open a transaction holding the store's write lock (one round trip)."""
        conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")

    @staticmethod
    def notify(conn, channel: str, payload: str) -> None:
        """Wake the listeners of ``channel`` when the transaction commits."""
        conn.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def listener(self, channel: str) -> "PostgresListener":
        return PostgresListener(self.dsn, channel)

    @staticmethod
    def ddl(statement: str) -> str:
        statement = re.sub(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b",
                           "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", statement)
        statement = re.sub(r"\bINTEGER\b", "BIGINT", statement)
        statement = re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)
        return re.sub(r"\bBLOB\b", "BYTEA", statement)

    @staticmethod
    def continue_numbering(conn, table: str, column: str) -> None:
        """After rows were inserted with explicit keys: move the identity past them."""
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                     f"COALESCE(MAX({column}), 0) + 1, false) FROM {table}")

    @staticmethod
    def table_exists(conn, table: str) -> bool:
        return conn.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()[0]

    @staticmethod
    @contextmanager
    def lock_wait(conn, wait_ms: int) -> Iterator[None]:
        conn.execute(f"SET lock_timeout = {int(wait_ms)}")
        try:
            yield
        finally:
            if PostgresDatabase.usable(conn):
                conn.execute("SET lock_timeout = 0")


class Poller:
    """A listener for a database without notifications: ``wait`` just waits."""

    def wait(self, timeout: float) -> str | None:
        time.sleep(timeout)
        return None

    def close(self) -> None:
        pass


class PostgresListener:
    """``LISTEN`` on its own connection: ``wait`` returns a notification's payload as
    soon as one arrives (the newest of those already queued), None after ``timeout``
    seconds without one (the caller polls anyway). A lost connection is reopened on the
    next wait."""

    def __init__(self, dsn: str, channel: str):
        self.dsn, self.channel, self._conn = dsn, channel, None

    def wait(self, timeout: float) -> str | None:
        import psycopg

        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10)
                self._conn.execute(f"LISTEN {self.channel}")
            payload = None
            for note in self._conn.notifies(timeout=timeout, stop_after=1):
                payload = note.payload
            for note in self._conn.notifies(timeout=0.0):  # drain what else is queued
                payload = note.payload
            return payload
        except psycopg.Error:
            self.close()
            time.sleep(timeout)  # the database is away: poll at the caller's pace
            return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _pg_rows(cursor):
    """psycopg row factory: ``Row`` objects carrying the cursor's column names."""
    names = tuple(c.name for c in cursor.description or ())
    row_type = type("Row", (Row,), {"__slots__": (), "_columns": names})
    return lambda values: row_type(values)


class PostgresConnection:
    """A psycopg connection that speaks the store's SQL: ``?`` placeholders, Python
    ``bool`` and NumPy scalars as SQLite would take them, ``executemany``."""

    def __init__(self, raw):
        self.raw = raw

    def execute(self, sql: str, params=()):
        return self.raw.execute(_placeholders(sql), _values(params) if params else None)

    def executemany(self, sql: str, rows):
        cursor = self.raw.cursor()
        cursor.executemany(_placeholders(sql), [_values(r) for r in rows])
        return cursor

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


_TRANSLATED: dict[str, str] = {}


def _placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    translated = _TRANSLATED.get(sql)
    if translated is None:
        translated = _TRANSLATED[sql] = sql.replace("%", "%%").replace("?", "%s")
    return translated


def _values(params) -> list:
    """Parameters as PostgreSQL columns of the store take them: a ``bool`` is 0/1 (the
    schema's flags are integers, as in SQLite), NumPy scalars are Python numbers."""
    out = []
    for value in params:
        if isinstance(value, bool):
            value = int(value)
        elif hasattr(value, "item") and getattr(value, "shape", None) == ():
            value = value.item()
        out.append(value)
    return out


def open_database(location, folder) -> SQLiteDatabase | PostgresDatabase:
    """The database of a store: PostgreSQL for a DSN, else ``store.db`` in ``folder``."""
    if is_dsn(location):
        return PostgresDatabase(location)
    return SQLiteDatabase(Path(folder) / "store.db")


def retry_busy(action, attempts: int = 40):
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
