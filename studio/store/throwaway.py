"""A throwaway PostgreSQL cluster: started in a temporary folder in a few seconds, used
through its DSN, removed on exit — what the tests and the benchmarks run the PostgreSQL
store against (trust authentication on 127.0.0.1 only, fsync off: never for real data).

As root, ``initdb`` and the server run as the ``postgres`` user (``initdb`` refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import StudioError


def postgres_binaries() -> tuple[Path | None, str]:
    """The folder with ``initdb`` and ``pg_ctl`` (on PATH, or Debian's versioned folder),
    or None and why not."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent, ""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if versions:
        return versions[-1].parent, ""
    return None, "PostgreSQL is not installed (apt-get install postgresql)"


def unavailable() -> str | None:
    """Why a throwaway cluster cannot start here (None: it can)."""
    binaries, reason = postgres_binaries()
    if binaries is None:
        return reason
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'creative-studio[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as postgres"
    return None


@contextmanager
def throwaway_cluster(*, fsync: bool = False) -> Iterator[str]:
    """Start a cluster; yield its admin DSN (database ``postgres``, user ``studio``)."""
    reason = unavailable()
    if reason:
        raise StudioError(reason)
    binaries, _ = postgres_binaries()
    data = Path(tempfile.mkdtemp(prefix="studio-pg-"))
    prefix = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True,
                       timeout=120)

    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c max_connections=200"
               + ("" if fsync else " -c fsync=off"))
    try:
        run(str(binaries / "initdb"), "-U", "studio", "--auth=trust", "--no-sync",
            "-D", str(data / "db"))
        run(str(binaries / "pg_ctl"), "-w", "-D", str(data / "db"), "-l", str(data / "log"),
            "-o", options, "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(data, ignore_errors=True)
        raise StudioError(f"PostgreSQL did not start: {exc.stderr.strip()[-300:]}") from None
    try:
        yield f"postgresql://studio@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data / "db"), "-m", "fast",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def new_database(admin_dsn: str) -> str:
    """Create an empty database in the cluster of ``admin_dsn``; its DSN."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return admin_dsn.rpartition("/")[0] + f"/{name}"
