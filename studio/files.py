"""Atomic file writes and bounded reads.

Every file the studio publishes is written to a temporary name in the same folder,
flushed to disk, and renamed into place; a failure removes the temporary file, and an
OS error (read-only or full disk, permission, a file where a folder should be) carries
the path it concerns, so the faces can name it.

Input files are read with a size cap before they are parsed: only regular files (no
devices, pipes or folders) of at most ``MAX_TEXT_BYTES`` (YAML, JSON: 10 MB),
``MAX_TABLE_BYTES`` (CSV catalogs: 50 MB) or ``MAX_DATA_BYTES`` (user tables and
impression logs: 500 MB, about five million users); images have their own cap
(``pipelines.product.MAX_FILE_BYTES``, 50 MB).
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: Largest YAML or JSON file read (vocabularies, guidelines, manifests), in bytes.
MAX_TEXT_BYTES = 10_000_000
#: Largest CSV table read (catalogs), in bytes.
MAX_TABLE_BYTES = 50_000_000
#: Largest user table (CSV / Parquet) or impression log read, in bytes.
MAX_DATA_BYTES = 500_000_000


def read_bytes(path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else (missing, a
    device such as /dev/zero, a pipe, a folder, larger) is a StudioError naming ``what``."""
    from pipelines import InputError
    from pipelines.product import read_file

    from .errors import StudioError

    try:
        return read_file(path, what=what, max_bytes=max_bytes)
    except InputError as exc:
        if not Path(path).exists() and not Path(path).is_symlink():
            raise StudioError(f"{what} {str(path)!r} does not exist") from None
        raise StudioError(str(exc)) from None


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
    folder = Path(folder)
    staged: list[tuple[str, str]] = []
    published: list[Path] = []
    current = folder
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            # The folder, or one above it, is a file: say so, naming what was to be written.
            current = folder / next(iter(files), "")
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                     str(current)) from None
        for name, data in files.items():
            current = folder / name
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            staged.append((tmp, name))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, name in staged:
            target = current = folder / name
            existed = target.exists()
            os.replace(tmp, target)
            if not existed:
                published.append(target)
    except BaseException as exc:
        for target in published:
            _remove_quietly(target)
        if isinstance(exc, OSError) and exc.filename is None:
            # A write or fsync error names no file: say which one it was.
            raise OSError(exc.errno, exc.strerror or str(exc), str(current)) from exc
        raise
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                _remove_quietly(Path(tmp))


def _remove_quietly(path: Path) -> None:
    """Unlink during clean-up; a failure here must not hide the error being handled."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def check_folder_path(folder, what: str) -> None:
    """Refuse, before any work, a folder path that cannot be created because it, or a
    folder above it, is a file (a StudioError naming ``what``)."""
    from .errors import StudioError

    folder = Path(folder)
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == folder else f"is under {str(parent)!r}, a file"
                raise StudioError(f"{what} {str(folder)!r} {where}; give a folder")
            return


def write_atomic(path: Path, data: bytes) -> None:
    """Write one file atomically."""
    with atomic_files(path.parent) as files:
        files[path.name] = data


def read_yaml(path, what: str):
    """Parse a YAML file; a missing or invalid file is a StudioError naming ``what``."""
    import yaml

    from .errors import StudioError

    path = Path(path)
    data = read_bytes(path, what, MAX_TEXT_BYTES)
    try:
        return yaml.safe_load(data.decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise StudioError(f"{what} {str(path)!r} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise StudioError(f"{what} {str(path)!r} is not valid YAML: "
                          f"{str(exc).splitlines()[0]}") from None
