"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

Every file the studio publishes is written to a temporary name in the same folder,
flushed to disk, and renamed into place; a failure removes the temporary file.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_files(folder: Path) -> Iterator[dict[str, bytes]]:
    """Collect {file name: bytes} in the ``with`` body, then publish them all.

    Files are written to temporary names first and renamed in insertion order only
    after every one of them was written, so put the file that marks completeness (a
    manifest) last. If anything fails, no temporary file is left behind, and files of
    this group that were already renamed into place (and did not exist before) are
    removed again.
    """
    files: dict[str, bytes] = {}
    yield files
    folder.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, str]] = []
    published: list[Path] = []
    try:
        for name, data in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            staged.append((tmp, name))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, name in staged:
            target = folder / name
            existed = target.exists()
            os.replace(tmp, target)
            if not existed:
                published.append(target)
    except BaseException:
        for target in published:
            target.unlink(missing_ok=True)
        raise
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_atomic(path: Path, data: bytes) -> None:
    """Write one file atomically."""
    with atomic_files(path.parent) as files:
        files[path.name] = data


def read_yaml(path, what: str):
    """Parse a YAML file; a missing or invalid file is a StudioError naming ``what``."""
    import yaml

    from .errors import StudioError

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise StudioError(f"{what} {str(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise StudioError(f"{what} {str(path)!r} is not valid YAML: "
                          f"{str(exc).splitlines()[0]}") from None
