"""Two batch runs on one store share the work (job leases), and two processes opening a
new store both succeed (the schema is migrated inside one transaction)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import PYTHON, REPO, python_env
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.store import MIGRATIONS, Store

CATALOG = REPO / "assets" / "demo" / "catalog.csv"
USERS = REPO / "assets" / "demo" / "users.csv"


@pytest.fixture(scope="module")
def clusters_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audience") / "clusters.json"
    Audience(5).fit(load_users(USERS)).save(path)
    return path


def _command(store, audience, *extra):
    return [PYTHON, "-m", "studio", "batch", str(CATALOG), "--audience", str(audience),
            "--store", str(store), "--size", "64", "--engine", "backdrop", "--no-watermark",
            *extra]


def _together(commands) -> list[subprocess.CompletedProcess]:
    """Start every command at once; wait for all of them."""
    processes = [subprocess.Popen(c, env=python_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for c in commands]
    results = []
    for process, command in zip(processes, commands):
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


def _summary(result) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _job_keys(store) -> list[str]:
    conn = sqlite3.connect(store / "store.db")
    keys = [r[0] for r in conn.execute("SELECT job_key FROM creatives ORDER BY job_key")]
    conn.close()
    return keys


def _arms(store) -> list[tuple]:
    conn = sqlite3.connect(store / "store.db")
    arms = conn.execute("SELECT arm_id, category, cluster_id, active FROM arms "
                        "ORDER BY arm_id").fetchall()
    conn.close()
    return arms


def test_two_batches_on_a_new_store_share_the_work(tmp_path):
    shared, single = tmp_path / "shared", tmp_path / "single"
    extra = ("--k", "5", "--per-cluster", "2", "--formats", "1:1,9:16")
    # Both fit the audience from the user table, write it, plan and render at once.
    first, second = _together([_command(shared, USERS, *extra)] * 2)
    a, b = _summary(first), _summary(second)
    alone = _summary(subprocess.run(_command(single, USERS, *extra), env=python_env(),
                                    capture_output=True, text=True, timeout=300))
    assert alone["creatives"] == alone["rendered"] == 100
    # Exactly the creatives of one run, each rendered once, by one of the two.
    assert a["rendered"] + b["rendered"] == 100, (a, b)
    assert a["creatives"] == b["creatives"] == 100
    assert _job_keys(shared) == _job_keys(single)
    assert _arms(shared) == _arms(single)
    report = Store(shared).check()
    assert report["ok"], report
    assert Store(shared).query("SELECT COUNT(*) FROM job_leases")[0][0] == 0


def test_two_batches_on_a_partly_rendered_store_render_each_missing_creative_once(
        tmp_path, clusters_file):
    store = tmp_path / "store"
    first = _summary(subprocess.run(_command(store, clusters_file, "--per-cluster", "1"),
                                    env=python_env(), capture_output=True, text=True,
                                    timeout=300))
    assert first["creatives"] == 25
    extra = ("--per-cluster", "2", "--formats", "1:1,9:16", "--seeds", "0,1")
    a, b = (_summary(r) for r in _together([_command(store, clusters_file, *extra)] * 2))
    total = a["creatives"]
    assert total == b["creatives"] and total > 150
    assert a["rendered"] + b["rendered"] == total - 25, (a, b)
    assert len(set(_job_keys(store))) == total
    assert Store(store).check()["ok"]


_OPEN = """
import sys, time
from studio.store import Store
start, roots = float(sys.argv[1]), sys.argv[2:]
for i, root in enumerate(roots):
    while time.time() < start + 0.4 * i:
        pass
    store = Store(root, create=True)
    print(store.schema_version, flush=True)
    store.close()
"""


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    roots = [str(tmp_path / f"store{i}") for i in range(6)]
    start = time.time() + 3.0  # after every interpreter has started
    processes = [subprocess.Popen([PYTHON, "-c", _OPEN, str(start), *roots],
                                  env=python_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        assert out.split() == [str(len(MIGRATIONS))] * len(roots)
    for root in roots:
        store = Store(root)
        assert store.schema_version == len(MIGRATIONS)
        columns = [r["name"] for r in store.query("PRAGMA table_info(arms)")]
        assert columns.count("prior_impressions") == 1
        assert store.query("SELECT COUNT(*) FROM schema_version")[0][0] == 1


def test_job_leases_expire_and_a_dead_owner_frees_its_jobs_at_once(tmp_path):
    store = Store(tmp_path / "s", create=True)
    mine = store.new_owner()
    elsewhere = "another-host:1:abc"  # its process cannot be checked from here
    assert store.claim_job("job-a", elsewhere, ttl=0.3) == "claimed"
    assert store.claim_job("job-a", mine) == "busy"
    assert store.live_leases(exclude=mine) == 1
    time.sleep(0.4)
    assert store.claim_job("job-a", mine) == "claimed"  # the lease expired
    assert store.claim_job("job-a", elsewhere) == "busy"  # now it is mine
    # A process of this host that is gone holds nothing, whatever its lease says.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:xyz"
    assert store.claim_job("job-b", dead, ttl=3600) == "claimed"
    assert store.claim_job("job-b", mine) == "claimed"
    # Leases end with the run that holds them.
    with store.keep_leases(mine, ttl=60):
        assert store.claim_job("job-c", mine) == "claimed"
        assert store.live_leases() == 3
    assert store.live_leases() == 0
