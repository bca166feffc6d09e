"""What the selection service refuses, and storage faults: the errors its faces map to
answers (the API: 404, 409, 503 + ``Retry-After``).

A storage fault — a full disk, a read-only store, an I/O error, a lock held too long, a
PostgreSQL server that is down — is recognised on the exception or on one it was raised
from (``storage_fault``; the store's ``fault_kind`` knows each database's errors).
"""

from __future__ import annotations

import errno

from ..errors import StudioError
from ..store import fault_kind

#: OS errors that mean the store cannot be written now (and may be later).
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
    """The store cannot be written now (full or read-only disk, I/O error, lock held,
    database server unreachable): nothing was written; retry later."""


def storage_fault(exc: BaseException | None) -> BaseException | None:
    """The storage fault behind ``exc`` (itself or one it was raised from), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if fault_kind(exc) is not None:
            return exc
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
