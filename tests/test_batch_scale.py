"""Scaling ``studio batch`` out: CPU processes under torchrun split the jobs (accelerate),
and the Ray executor loses nothing and duplicates nothing when a worker and then the
driver are killed — a rerun resumes to the rows of a local run.

The Ray tests share one Ray cluster per module (``ray start --head``, ~15 s to start
under load); the runs join it with ``--ray-address``, except the one that checks the
executor's own local start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from conftest import PYTHON, REPO, python_env, require
from studio.cli import app
from studio.errors import StudioError
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.store import Store, database_errors

CATALOG = REPO / "assets" / "demo" / "catalog.csv"
RAY = str(Path(PYTHON).with_name("ray"))
#: 5 products x 5 clusters x 2 prompts x 2 formats x 2 seeds
PLAN = ("--per-cluster", "2", "--formats", "1:1,9:16", "--seeds", "0,1")
PLANNED = 200


def ray_importable() -> bool:
    return importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def clusters_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audience") / "clusters.json"
    Audience(5).fit(load_users(REPO / "assets" / "demo" / "users.csv")).save(path)
    return path


def _batch(store, clusters_file, *extra, folder=None) -> list[str]:
    return ["-m", "studio", "batch", str(CATALOG), "--audience", str(clusters_file),
            "--store", str(store), "--size", "64", "--engine", "backdrop", "--no-watermark",
            *(["--store-folder", str(folder)] if folder else []), *extra]


def _summaries(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _rows(location) -> list[tuple]:
    """Every creative (with the files it names) and every arm, in key order."""
    store = Store(location)
    rows = [tuple(r) for r in store.query(
        "SELECT creative_id, job_key, product_id, prompt_id, cluster_id, format, seed, "
        "image_sha256, mask_sha256, selected FROM creatives ORDER BY job_key")]
    rows += [tuple(r) for r in store.query("SELECT * FROM arms ORDER BY arm_id")]
    store.close()
    return rows


def _check_store(location, planned: int) -> None:
    store = Store(location)
    keys = [r[0] for r in store.query("SELECT job_key FROM creatives")]
    assert len(keys) == len(set(keys)) == planned
    images = [r[0] for r in store.query("SELECT image_sha256 FROM creatives")]
    assert len(set(images)) == planned  # no creative twice under two keys
    assert store.query("SELECT COUNT(*) FROM schema_version")[0][0] == 1
    assert store.query("SELECT COUNT(*) FROM job_leases")[0][0] == 0
    report = store.check()
    assert report["ok"], report
    store.close()


def test_torchrun_cpu_processes_split_the_jobs(store_location, clusters_file):
    """Two CPU processes under torchrun render half the jobs each (a plain
    ``PartialState()`` would see one process in each, and both would plan everything)."""
    location, folder = store_location
    result = subprocess.run(
        [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         *_batch(location, clusters_file, "--per-cluster", "1", folder=folder)],
        env=python_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = _summaries(result.stdout)
    assert len(summaries) == 1, result.stdout  # one main process
    summary = summaries[0]
    assert "25 creatives in the plan: 0 in the store, 25 to render over 2 processes" \
        in result.stdout
    assert summary["workers"] == 2 and summary["rendered_per_worker"] == [13, 12]
    assert summary["rendered"] == summary["creatives"] == 25
    _check_store(location, 25)


def test_batch_scale_bench_runs():
    """The bench runs (local executor, a tiny plan) and ends with its JSON line."""
    result = subprocess.run([PYTHON, "bench/batch_scale.py", "--per-cluster", "1", "--seeds",
                             "1", "--size", "64", "--executors", "local"], cwd=REPO,
                            env=python_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["creatives"] == 50 and set(out["creatives_per_s"]["local"]) == {"1", "2"}
    assert out["ratios"]["local"] > 0


# ----------------------------------------------------------------------------- Ray
def test_executor_ray_without_ray_is_one_clear_error(monkeypatch, tmp_path, clusters_file):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # `import ray` fails
    result = CliRunner().invoke(app, _batch(tmp_path / "s", clusters_file,
                                            "--executor", "ray")[2:])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: --executor ray needs Ray, which is not installed: "
                     "pip install 'creative-studio[ray]'"]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("extra,message", [
    (("--workers", "2"), "--workers and --ray-address are for --executor ray"),
    (("--executor", "dask"), "unknown executor 'dask'"),
    (("--executor", "ray", "--workers", "0"), "--workers must be from 1 to 1024"),
])
def test_bad_executor_options_are_refused(tmp_path, clusters_file, extra, message):
    result = CliRunner().invoke(app, _batch(tmp_path / "s", clusters_file, *extra)[2:])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def ray_cluster():
    """A two-CPU Ray cluster on loopback for this module: ``(address, head process)``."""
    require("ray", ray_importable(), "ray is not installed (pip install 'creative-studio[ray]')")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # sockets need a short path
    env = python_env(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    head = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus", "2", "--include-dashboard", "false",
         "--node-ip-address", "127.0.0.1", "--port", str(port), "--temp-dir", temp,
         "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while subprocess.run([RAY, "status", "--address", address], env=env,
                             capture_output=True, timeout=60).returncode != 0:
            assert head.poll() is None and time.time() < deadline, "Ray did not start"
            time.sleep(1)
        yield address, head
    finally:
        # The cluster's processes, by id (a graceful `ray start --block` stop takes ~30 s).
        if head.poll() is None:
            tree = psutil.Process(head.pid)
            processes = [tree, *tree.children(recursive=True)]
            for process in processes:
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(processes, timeout=30)
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory, clusters_file) -> list[tuple]:
    """The rows of the plan rendered by the local executor, one process."""
    store = tmp_path_factory.mktemp("local") / "store"
    result = subprocess.run([PYTHON, *_batch(store, clusters_file, *PLAN)], env=python_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return _rows(store)


def _renderers(head) -> list[psutil.Process]:
    """The render actors' processes of the module's cluster."""
    found = []
    for process in psutil.Process(head.pid).children(recursive=True):
        try:
            if "_Renderer" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def _wait_for(condition, what: str, seconds: float = 120):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_ray_batch_survives_a_killed_worker_and_a_killed_driver(ray_cluster, postgres_dsn,
                                                                tmp_path, clusters_file,
                                                                local_rows):
    """PostgreSQL store, one actor: the actor is killed mid-run (Ray restarts it and the
    run goes on), then the driver; a rerun renders exactly the rest, and the store has
    the rows of a local run, each creative once, clean."""
    address, head = ray_cluster
    files = tmp_path / "files"
    command = [PYTHON, *_batch(postgres_dsn, clusters_file, *PLAN, "--executor", "ray",
                               "--ray-address", address, "--workers", "1", folder=files)]
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen(command, env=python_env(), stdout=log, stderr=subprocess.STDOUT)
    store = None

    def count() -> int:
        nonlocal store
        try:
            store = store or Store(postgres_dsn)
            return store.counts()["creatives"]
        except (StudioError, *database_errors()):  # not created yet
            store = None
            return 0

    try:
        _wait_for(lambda: count() >= 10 or driver.poll() is not None, "the first creatives")
        workers = _renderers(head)
        assert driver.poll() is None and len(workers) == 1, (tmp_path / "driver.log").read_text()
        workers[0].kill()
        at_kill = count()
        _wait_for(lambda: count() >= at_kill + 30 or driver.poll() is not None,
                  "the restarted worker")
        assert driver.poll() is None, "the batch finished before its driver could be killed"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        _wait_for(lambda: not _renderers(head), "the dead driver's workers to go", 60)
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()
    interrupted = count()
    store.close()
    assert at_kill + 30 <= interrupted < PLANNED

    resumed = subprocess.run(
        [PYTHON, *_batch(postgres_dsn, clusters_file, *PLAN, "--executor", "ray",
                         "--ray-address", address)],
        env=python_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{interrupted} in the store, {PLANNED - interrupted} to render" in resumed.stdout
    summary = _summaries(resumed.stdout)[-1]
    assert summary["executor"] == "ray" and summary["rendered"] == PLANNED - interrupted

    assert _rows(postgres_dsn) == local_rows
    _check_store(postgres_dsn, PLANNED)
    check = CliRunner().invoke(app, ["store", "check", postgres_dsn])
    assert check.exit_code == 0 and "ok" in check.output


def test_ray_batch_on_a_local_ray_matches_a_local_run(ray_cluster, tmp_path, clusters_file,
                                                      local_rows):
    """Two actors on a Ray the command starts itself: the rows of a local run. More
    workers than a cluster's CPUs, and an engine the workers cannot load, are one clear
    error line each (the engine's as a local run prints it)."""
    store = tmp_path / "ray"
    result = subprocess.run([PYTHON, *_batch(store, clusters_file, *PLAN, "--executor", "ray",
                                             "--workers", "2")],
                            env=python_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ray: 2 workers with one CPU each, on a local Ray" in result.stdout
    summary = _summaries(result.stdout)[-1]
    assert summary["rendered"] == summary["creatives"] == PLANNED
    assert summary["workers"] == 2 and sum(summary["rendered_per_worker"]) == PLANNED
    assert _rows(store) == local_rows
    _check_store(store, PLANNED)

    address, _ = ray_cluster
    too_many = subprocess.run([PYTHON, *_batch(store, clusters_file, *PLAN, "--executor", "ray",
                                               "--ray-address", address, "--workers", "3")],
                              env=python_env(), capture_output=True, text=True, timeout=300)
    assert too_many.returncode == 2
    errors = [line for line in too_many.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --workers 3 needs 3 CPUs; the Ray cluster has 2"], \
        too_many.stderr[-3000:]

    no_weights = subprocess.run([PYTHON, *_batch(store, clusters_file, *PLAN, "--executor", "ray",
                                                 "--ray-address", address, "--engine", "sd")],
                                env=python_env(), capture_output=True, text=True, timeout=300)
    assert no_weights.returncode == 1, no_weights.stderr[-3000:]
    errors = [line for line in no_weights.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot load" in errors[0], no_weights.stderr[-3000:]
    assert _rows(store) == local_rows  # nothing was rendered
