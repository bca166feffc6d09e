"""The store: SQLite (WAL) plus content-addressed files — schema (``schema.py``), the
``Store`` (``store.py``: connections, transactions, migrations, files, checks) and its
job leases (``leases.py``)."""

from .leases import LEASE_ENV, LEASE_SECONDS, lease_seconds
from .schema import MIGRATIONS
from .store import DB_NAME, FILES, Store

__all__ = ["DB_NAME", "FILES", "LEASE_ENV", "LEASE_SECONDS", "MIGRATIONS", "Store",
           "lease_seconds"]
