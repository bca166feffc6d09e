"""What the selection service refuses, and storage faults: the errors its faces map to
answers (the API: 404, 409, 503 + ``Retry-After``).

A storage fault — a full disk, a read-only store, an I/O error, a lock held too long —
is recognised on the exception or on one it was raised from (``storage_fault``).
"""

from __future__ import annotations

import errno
import sqlite3

from ..errors import StudioError

#: What a failed write says when the store cannot be written now (and may be later).
STORAGE_FAULTS = ("database or disk is full", "readonly database", "disk i/o error",
                  "database is locked", "unable to open database file")
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO}


class NotFound(StudioError):
    """An unknown product, event, creative or cluster."""


class Conflict(StudioError):
    """A request that conflicts with the log (e.g. feedback after its window)."""


class RewardConflict(Conflict):
    """A second reward for an event, with another value than the recorded one."""

    def __init__(self, event_id: str, recorded: float, received: float):
        super().__init__(f"event {event_id} already has reward {recorded:g}; a different "
                         f"reward ({received:g}) is refused")
        self.event_id, self.recorded, self.received = event_id, recorded, received


class StoreUnavailable(StudioError):
    """The store cannot be written now (full or read-only disk, I/O error, lock held):
    nothing was written; retry later."""


def storage_fault(exc: BaseException | None) -> BaseException | None:
    """The storage fault behind ``exc`` (itself or one it was raised from), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sqlite3.OperationalError) and any(
                m in str(exc).lower() for m in STORAGE_FAULTS):
            return exc
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
