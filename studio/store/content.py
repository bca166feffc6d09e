"""The store's content-addressed files: ``files/<ab>/<sha256>.png`` under the store's
folder, written atomically, and the check that rows and files agree."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from ..files import write_atomic

FILES = "files"


class ContentFiles:
    """File methods of ``Store`` (they use its ``root`` folder and ``query``)."""

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
