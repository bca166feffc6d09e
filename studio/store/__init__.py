"""The store: a database (SQLite in the store folder, or PostgreSQL by DSN) plus
content-addressed files — schema (``schema.py``), the two databases behind one interface
(``database.py``), the ``Store`` (``store.py``: connections, transactions, migrations)
and its repository methods (``pools.py``, ``serving_log.py``, ``leases.py``), its files
(``content.py``) and whole-store copies (``transfer.py``). No SQL is written anywhere
else."""

from .database import database_errors, fault_kind, is_dsn, redact
from .leases import LEASE_ENV, LEASE_SECONDS, lease_seconds
from .schema import MIGRATIONS
from .store import DB_NAME, FILES, FOLDER_ENV, STORE_ENV, Store

__all__ = ["DB_NAME", "FILES", "FOLDER_ENV", "LEASE_ENV", "LEASE_SECONDS", "MIGRATIONS",
           "STORE_ENV", "Store", "database_errors", "fault_kind", "is_dsn", "lease_seconds",
           "redact"]
