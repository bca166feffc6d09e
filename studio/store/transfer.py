"""Copy a whole store into a new, empty one — e.g. a SQLite store folder into a
PostgreSQL database when a team outgrows one machine (``studio store copy``).

Rows are copied table by table in the order their foreign keys need, in one write
transaction of the target (a failed copy leaves it empty); reward sequence numbers are
kept (bandit snapshots name them) and the target's numbering continues after them.
Files are copied first, content-addressed, and verified against their names.
"""

from __future__ import annotations

import hashlib
import shutil
from typing import Callable

from ..errors import StudioError

#: Tables and the columns copied, parents before children; job leases (live work of a
#: running batch) and store settings (the target's own files folder) stay behind.
TABLES = {
    "products": ("product_id", "category", "title", "image_sha256"),
    "audience": ("id", "document"),
    "clusters": ("cluster_id", "profile", "size", "record"),
    "prompts": ("prompt_id", "category", "cluster_id", "text", "negative_prompt", "tags",
                "source"),
    "creatives": ("creative_id", "job_key", "product_id", "prompt_id", "cluster_id", "format",
                  "seed", "image_sha256", "mask_sha256", "bytes", "manifest", "reward",
                  "selected", "blocked"),
    "safety_overrides": ("id", "creative_id", "reviewer", "reason", "at"),
    "arms": ("arm_id", "category", "cluster_id", "prior_ctr", "active", "prior_impressions"),
    "bandit_snapshots": ("category", "model", "reward_seq", "saved_at"),
    "events": ("event_id", "created_at", "product_id", "category", "cluster_id", "arm_id",
               "creative_id", "placement", "candidates", "context", "propensity", "score"),
    "rewards": ("seq", "event_id", "reward", "received_at"),
    "evolution": ("id", "round", "created_at", "category", "cluster_id", "record"),
}
#: Tables whose integer key the database numbers (it continues after the copied rows).
NUMBERED = {"rewards": "seq", "evolution": "id", "safety_overrides": "id"}
BATCH_ROWS = 500


def copy_store(source, target, *, echo: Callable[[str], None] = lambda m: None) -> dict:
    """Copy every row and file of ``source`` into ``target`` (a ``Store`` with no rows);
    returns the row counts copied. Refuses a target that holds anything."""
    if any(target.counts().values()) or target.has_audience():
        raise StudioError(f"store {target.location!r} is not empty; copy into a new store")
    if source.schema_version != target.schema_version:
        raise StudioError("the two stores have different schema versions "
                          f"({source.schema_version} and {target.schema_version})")
    files = sorted({sha for row in source.query("SELECT image_sha256, mask_sha256 FROM creatives")
                    for sha in row})
    for sha in files:
        _copy_file(source, target, sha)
    echo(f"copied {len(files)} files")
    copied = {}
    with target.transaction() as tx:
        for table, columns in TABLES.items():
            names = ", ".join(columns)
            insert = (f"INSERT INTO {table} ({names}) "
                      f"VALUES ({', '.join('?' * len(columns))})")
            rows = source.query(f"SELECT {names} FROM {table} ORDER BY {columns[0]}")
            for start in range(0, len(rows), BATCH_ROWS):
                tx.executemany(insert, [tuple(r) for r in rows[start:start + BATCH_ROWS]])
            if table in NUMBERED:
                target.database.continue_numbering(tx, table, NUMBERED[table])
            copied[table] = len(rows)
            echo(f"copied {len(rows)} {table}")
    return copied


def _copy_file(source, target, sha: str) -> None:
    origin, destination = source.file_path(sha), target.file_path(sha)
    if not origin.exists():
        raise StudioError(f"file {str(origin)!r} of store {source.location!r} is missing; "
                          "run `studio store check` on it first")
    if destination.exists():
        return
    digest = hashlib.sha256(origin.read_bytes()).hexdigest()
    if digest != sha:
        raise StudioError(f"file {str(origin)!r} does not match its name (sha256 {digest}); "
                          "run `studio store check` on the source first")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".tmp")
    shutil.copyfile(origin, temporary)
    temporary.replace(destination)
