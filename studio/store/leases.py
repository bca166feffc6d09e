"""Job leases: several batch runs on one store share the work.

Each pending render is claimed in a transaction before it starts (owner, expiry); a
running batch renews its leases, releases them when it ends, and a lease whose owner
process is gone (same host) or whose time ran out may be taken over.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from ..errors import StudioError

#: How long a job lease lasts without renewal, in seconds (``STUDIO_LEASE_SECONDS``);
#: a running batch renews its leases every third of it.
LEASE_SECONDS = 300.0
LEASE_ENV = "STUDIO_LEASE_SECONDS"


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


class Leases:
    """Lease methods of ``Store`` (they use its ``transaction`` and ``query``)."""

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
                except self._errors:
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
            except self._errors:
                pass  # expired leases are free anyway; do not hide the error at hand


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
