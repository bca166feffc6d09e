"""The creative store and the resumable batch job."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from typer.testing import CliRunner

from conftest import PYTHON, REPO, python_env
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.learning.batch import BatchSettings, run_batch
from studio.cli import app
from studio.errors import StudioError
from studio.store import Store, database_errors

CATALOG = REPO / "assets" / "demo" / "catalog.csv"


@pytest.fixture(scope="module")
def clusters_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audience") / "clusters.json"
    Audience(5).fit(load_users(REPO / "assets" / "demo" / "users.csv")).save(path)
    return path


def _batch_command(store, clusters_file, folder=None):
    return [PYTHON, "-m", "studio", "batch", str(CATALOG), "--audience", str(clusters_file),
            "--store", str(store), "--per-cluster", "2", "--formats", "1:1,9:16",
            "--size", "64", "--engine", "backdrop", "--no-watermark",
            *(["--store-folder", str(folder)] if folder else [])]


def _snapshot(location) -> dict:
    store = Store(location)
    tables = {
        "creatives": "SELECT creative_id, job_key, product_id, prompt_id, cluster_id, format, seed, "
                     "image_sha256, mask_sha256, reward, selected FROM creatives ORDER BY job_key",
        "prompts": "SELECT * FROM prompts ORDER BY prompt_id",
        "arms": "SELECT * FROM arms ORDER BY arm_id",
        "products": "SELECT * FROM products ORDER BY product_id",
        "clusters": "SELECT cluster_id, size FROM clusters ORDER BY cluster_id",
    }
    result = {name: [tuple(r) for r in store.query(sql)] for name, sql in tables.items()}
    store.close()
    return result


def _count(location) -> int:
    try:
        store = Store(location)
    except (StudioError, *database_errors()):
        return 0  # not created yet
    try:
        return store.counts()["creatives"]
    except database_errors():
        return 0
    finally:
        store.close()


def test_batch_killed_mid_run_resumes_to_the_same_store(tmp_path, clusters_file, store_location):
    """Killed mid-run (SIGKILL), resumed: the same rows as a straight run into a SQLite
    folder — on either backend."""
    (killed, folder), clean = store_location, tmp_path / "clean"
    process = subprocess.Popen(_batch_command(killed, clusters_file, folder), env=python_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(killed) < 6 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the batch finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted = _count(killed)
    assert 6 <= interrupted < 100
    resumed = subprocess.run(_batch_command(killed, clusters_file), env=python_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{interrupted} in the store, {100 - interrupted} to render" in resumed.stdout
    straight = subprocess.run(_batch_command(clean, clusters_file), env=python_env(),
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    assert _snapshot(killed) == _snapshot(clean)
    for store in (killed, clean):
        report = Store(store).check()
        assert report["ok"], report
        assert report["creatives"] == 100
    check = CliRunner().invoke(app, ["store", "check", str(killed)])
    assert check.exit_code == 0 and "ok" in check.output


def test_rerun_renders_nothing_and_max_bytes_guards(tmp_path, clusters_file):
    settings = BatchSettings(per_cluster=1, size="64", engine="backdrop", watermark=False)
    first = run_batch(CATALOG, clusters_file, tmp_path / "s", settings, echo=lambda m: None)
    assert first["rendered"] == 25 and first["creatives"] == 25 and first["arms"] == 25
    again = run_batch(CATALOG, clusters_file, tmp_path / "s", settings, echo=lambda m: None)
    assert again["rendered"] == 0 and again["creatives"] == 25
    with pytest.raises(StudioError, match="over --max-bytes"):
        run_batch(CATALOG, clusters_file, tmp_path / "small",
                  BatchSettings(per_cluster=1, size="64", engine="backdrop", max_bytes=1000),
                  echo=lambda m: None)
    assert Store(tmp_path / "small").counts()["creatives"] == 0
    with pytest.raises(StudioError, match="unknown format"):
        run_batch(CATALOG, clusters_file, tmp_path / "s", BatchSettings(formats=("2:1",)))


def test_store_check_finds_orphans_missing_and_mismatched_files(tmp_path, clusters_file):
    run_batch(CATALOG, clusters_file, tmp_path / "s",
              BatchSettings(per_cluster=1, size="64", engine="backdrop", watermark=False),
              echo=lambda m: None)
    store = Store(tmp_path / "s")
    rows = store.query("SELECT image_sha256 FROM creatives ORDER BY creative_id LIMIT 2")
    store.file_path(rows[0][0]).unlink()
    store.file_path(rows[1][0]).write_bytes(b"corrupted")
    orphan_sha = "f" * 64
    store.file_path(orphan_sha).parent.mkdir(parents=True, exist_ok=True)
    store.file_path(orphan_sha).write_bytes(b"orphan")
    (store.file_path(orphan_sha).parent / ".abc.tmp").write_bytes(b"partial")
    report = store.check()
    assert not report["ok"]
    assert len(report["missing"]) == 1 and len(report["mismatched"]) == 1
    assert len(report["orphans"]) == 1 and len(report["temporary"]) == 1
    result = CliRunner().invoke(app, ["store", "check", str(tmp_path / "s")])
    assert result.exit_code == 1 and "orphans:" in result.output and "missing:" in result.output
    repaired = store.check(repair=True)
    assert not store.file_path(orphan_sha).exists() and repaired["orphans"]
    assert not store.check()["orphans"]


def test_store_refuses_unknown_folders_and_newer_schemas(tmp_path):
    with pytest.raises(StudioError, match="is not a store"):
        Store(tmp_path / "nothing")
    store = Store(tmp_path / "s", create=True)
    with store.transaction() as tx:
        tx.execute("UPDATE schema_version SET version = 99")
    store.close()
    with pytest.raises(StudioError, match="schema version 99"):
        Store(tmp_path / "s")
