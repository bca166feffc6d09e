"""Hostile input and a failing machine at the command line: bounded sizes, bounded input
files, and write failures (a file where a folder should be, read-only or full disks,
permission denied, a full or read-only store) — each one `error:` line, exit code 2,
and no partial file."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import threading

import pytest
from typer.testing import CliRunner

from conftest import PYTHON, REPO, python_env
from pipelines import InputError, canvas_size, load_product
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.learning.batch import BatchSettings, run_batch
from studio.cli import app
from studio.store import Store

runner = CliRunner()
CATALOG = REPO / "assets" / "demo" / "catalog.csv"


class Reached(Exception):
    """Raised by a stand-in for work that the command must not reach."""


def _one_error(result, *patterns: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for pattern in patterns:
        assert pattern in lines[0], lines[0]
    return lines[0]


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) \
        if folder.exists() else []


@pytest.fixture(scope="module")
def clusters_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audience") / "clusters.json"
    Audience(5).fit(load_users(REPO / "assets" / "demo" / "users.csv")).save(path)
    return path


# ------------------------------------------------------------------ size bound
@pytest.mark.parametrize("fmt,size", [("1:1", "100000"), ("1:1", "4096"),
                                      ("1:1", "2056x2048"), ("9:16", "1152x4096")])
def test_size_over_the_limit_is_refused_by_the_placement(fmt, size):
    with pytest.raises(InputError, match="over the 2048 px limit"):
        canvas_size(fmt, size)
    assert canvas_size("1:1", "2048") == (2048, 2048)


def test_size_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_SIZE", "256")
    assert canvas_size("1:1", "256") == (256, 256)
    with pytest.raises(InputError, match="over the 256 px limit"):
        canvas_size("1:1", "264")
    monkeypatch.setenv("STUDIO_MAX_SIZE", "lots")
    with pytest.raises(InputError, match="STUDIO_MAX_SIZE"):
        canvas_size("1:1", "64")


def test_render_refuses_a_huge_size_before_reading_anything(tmp_path, cutout_png, monkeypatch):
    import pipelines

    def reached(*args, **kwargs):
        raise Reached("the product was loaded")

    monkeypatch.setattr(pipelines, "load_product", reached)
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(cutout_png), "-p", "a scene", "--engine",
                                 "backdrop", "--size", "100000", "--out", str(out)])
    _one_error(result, "long side 100000 is over the 2048 px limit", "STUDIO_MAX_SIZE")
    assert not out.exists()


def test_batch_refuses_a_huge_size_before_creating_the_store(tmp_path, clusters_file,
                                                            monkeypatch):
    def reached(*args, **kwargs):
        raise Reached("the engine was loaded")

    monkeypatch.setattr("pipelines.engines.load_engine", reached)
    store = tmp_path / "store"
    result = runner.invoke(app, ["batch", str(CATALOG), "--audience", str(clusters_file),
                                 "--store", str(store), "--size", "4096", "--engine",
                                 "backdrop"])
    _one_error(result, "4096 is over the 2048 px limit")
    assert not store.exists()


def test_demo_refuses_a_huge_size_before_it_starts(tmp_path, monkeypatch):
    def reached(*args, **kwargs):
        raise Reached("the demo started")

    monkeypatch.setattr("studio.simulation.demo.run_demo", reached)
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--engine", "backdrop", "--size", "100000",
                                 "--out", str(out)])
    _one_error(result, "100000 is over the 2048 px limit")
    assert not out.exists()
    result = runner.invoke(app, ["demo", "--engine", "backdrop", "--generator", "gpt",
                                 "--out", str(out)])
    _one_error(result, "generator")
    assert not out.exists()


def test_demo_passes_its_prompt_writer_to_the_campaign(tmp_path, monkeypatch):
    seen = {}

    def record(out, **kwargs):
        seen.update(kwargs)
        raise Reached("the demo started")

    monkeypatch.setattr("studio.simulation.demo.run_demo", record)
    runner.invoke(app, ["demo", "--engine", "backdrop", "--generator", "llm",
                        "--out", str(tmp_path / "demo")])
    assert seen["generator"] == "llm"


def test_ui_size_field_is_bounded_before_the_engine_loads(monkeypatch):
    import app as ui
    from studio.ui.workspace import Workspace

    calls = []
    monkeypatch.setattr(Workspace, "render", lambda self, **kw: calls.append(kw) or [])
    monkeypatch.setattr(Workspace, "edit_prompts", lambda self, table: None)
    status, *_ = ui.render_creatives(None, ["1:1"], "backdrop", "100000", None)
    assert status.startswith("**Error:**") and "over the 2048 px limit" in status
    status, *_ = ui.render_creatives(None, ["1:1", "9:16"], "backdrop", "512x4096", None)
    assert status.startswith("**Error:**") and "over the 2048 px limit" in status
    assert calls == []


# ------------------------------------------------------------------ input caps
def test_render_refuses_a_device_before_reading_it(tmp_path):
    import resource

    def cap_memory():  # a regression reads /dev/zero until MemoryError, not until killed
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    out = tmp_path / "out"
    result = subprocess.run([PYTHON, "-m", "studio", "render", "/dev/zero", "-p", "a scene",
                             "--engine", "backdrop", "--out", str(out)], env=python_env(),
                            preexec_fn=cap_memory, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "error: product image '/dev/zero' is not a regular file"]
    assert not out.exists()


def test_render_refuses_a_pipe_as_product_or_mask(tmp_path, cutout_png):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)  # opening it for reading would wait for a writer
    stop = threading.Event()

    def writer():  # a regression that opens the pipe gets a few bytes and an end
        while not stop.wait(0.05):
            try:
                fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # no reader
            os.write(fd, b"not an image")
            os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    out = tmp_path / "out"
    try:
        for args in ([str(pipe)], [str(cutout_png), "--mask", str(pipe)]):
            result = runner.invoke(app, ["render", *args, "-p", "a scene", "--engine",
                                         "backdrop", "--out", str(out)])
            _one_error(result, f"{str(pipe)!r} is not a regular file")
    finally:
        stop.set()
        thread.join()
    assert not out.exists()


def test_oversized_inputs_are_refused_before_they_are_read(tmp_path, clusters_file):
    big_image = tmp_path / "big.png"
    with open(big_image, "wb") as handle:
        handle.truncate(60_000_000)  # sparse: no disk used
    with pytest.raises(InputError, match="over the 50 MB limit"):
        load_product(big_image)
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(big_image), "-p", "a scene", "--engine",
                                 "backdrop", "--out", str(out)])
    _one_error(result, "60.0 MB, over the 50 MB limit")
    big_catalog = tmp_path / "catalog.csv"
    with open(big_catalog, "wb") as handle:
        handle.write(b"product_id,image,category,title\n")
        handle.truncate(60_000_000)
    store = tmp_path / "store"
    result = runner.invoke(app, ["batch", str(big_catalog), "--audience", str(clusters_file),
                                 "--store", str(store), "--size", "64", "--engine", "backdrop"])
    _one_error(result, "catalog", "over the 50 MB limit")
    assert not store.exists()
    big_yaml = tmp_path / "guidelines.yaml"
    with open(big_yaml, "wb") as handle:
        handle.write(b"tone: calm\n")
        handle.truncate(20_000_000)
    result = runner.invoke(app, ["prompts", "--product", str(REPO / "assets/products/mug.png"),
                                 "--clusters", str(clusters_file), "--guidelines",
                                 str(big_yaml)])
    _one_error(result, "guidelines file", "over the 10 MB limit")
    result = runner.invoke(app, ["prompts", "--product", str(REPO / "assets/products/mug.png"),
                                 "--clusters", str(clusters_file), "--guidelines", "/dev/zero"])
    _one_error(result, "'/dev/zero' is not a regular file")


# ------------------------------------------------------------------ write failures
def _render(out, product):
    return runner.invoke(app, ["render", str(product), "-p", "a scene", "--engine", "backdrop",
                               "--size", "64", "--n", "2", "--no-watermark", "--out", str(out)])


def test_out_under_a_file_is_one_error_line(tmp_path, cutout_png, clusters_file):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me")
    result = _render(blocker / "sub", cutout_png)
    _one_error(result, str(blocker))
    assert blocker.read_text() == "keep me"
    result = runner.invoke(app, ["prompts", "--product", str(REPO / "assets/products/mug.png"),
                                 "--clusters", str(clusters_file), "--n", "1", "--cluster", "0",
                                 "--out", str(blocker / "prompts.json")])
    _one_error(result, str(blocker / "prompts.json"), "not a folder")
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("code,words,when", [
    (errno.EROFS, "read-only file system", "create"),
    (errno.EACCES, "permission denied", "create"),
    (errno.EEXIST, "already exists", "create"),
    (errno.ENOSPC, "no space left on device", "flush"),  # the disk fills while writing
    (errno.EIO, "input/output error", "flush"),
])
def test_render_write_failures_are_one_error_line_and_leave_no_file(tmp_path, cutout_png,
                                                                      monkeypatch, code, words,
                                                                      when):
    import studio.files

    out = tmp_path / "out"

    def fail(*args, **kwargs):
        if when == "create":
            raise OSError(code, os.strerror(code), kwargs.get("dir"))
        raise OSError(code, os.strerror(code))  # write errors name no file

    if when == "create":
        monkeypatch.setattr(studio.files.tempfile, "mkstemp", fail)
    else:
        monkeypatch.setattr(studio.files.os, "fsync", fail)
    line = _one_error(_render(out, cutout_png), words)
    assert str(out) in line
    assert _files(out) == []  # no temporary file, no partial creative


def test_a_creative_is_published_whole_or_not_at_all(tmp_path, cutout_png, monkeypatch):
    import studio.files

    out = tmp_path / "out"
    real_replace = studio.files.os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the image is in place, then the disk turns read-only
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(studio.files.os, "replace", replace)
    _one_error(_render(out, cutout_png), "read-only file system")
    assert _files(out) == []


def _store_with_25_creatives(root, clusters_file):
    run_batch(CATALOG, clusters_file, root,
              BatchSettings(per_cluster=1, size="64", engine="backdrop", watermark=False),
              echo=lambda m: None)
    return Store(root)


def _batch(store, clusters_file):
    return runner.invoke(app, ["batch", str(CATALOG), "--audience", str(clusters_file),
                               "--store", str(store), "--per-cluster", "2", "--formats",
                               "1:1,9:16", "--size", "64", "--engine", "backdrop",
                               "--no-watermark"])


def _unchanged(store: Store, before: dict, *, prompts_written: bool = False) -> None:
    store.close()
    again = Store(store.root)
    counts = again.counts()
    if prompts_written:  # the new prompts were committed before the renders failed
        counts["prompts"] = before["prompts"]
    assert counts == before
    report = again.check()
    assert not report["temporary"] and not report["missing"] and not report["mismatched"]


def test_batch_on_a_full_store_is_one_error_line(tmp_path, clusters_file, monkeypatch):
    store = _store_with_25_creatives(tmp_path / "store", clusters_file)
    before = store.counts()
    pages = int(store.query("PRAGMA page_count")[0][0])
    store.close()
    real_connection = Store.connection

    def full(self):  # the database cannot grow by a page: "database or disk is full"
        conn = real_connection(self)
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(Store, "connection", full)
    line = _one_error(_batch(store.root, clusters_file), "database or disk is full")
    assert str(store.root / "store.db") in line
    monkeypatch.setattr(Store, "connection", real_connection)
    _unchanged(store, before)


def test_batch_on_a_read_only_store_is_one_error_line(tmp_path, clusters_file, monkeypatch):
    import studio.files

    store = _store_with_25_creatives(tmp_path / "store", clusters_file)
    before = store.counts()
    store.close()
    real_connection = Store.connection

    def read_only(self):
        conn = real_connection(self)
        conn.execute("PRAGMA query_only = 1")
        return conn

    def no_files(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), kwargs.get("dir"))

    monkeypatch.setattr(Store, "connection", read_only)
    monkeypatch.setattr(studio.files.tempfile, "mkstemp", no_files)
    line = _one_error(_batch(store.root, clusters_file), "read-only")
    assert str(store.root) in line
    monkeypatch.setattr(Store, "connection", real_connection)
    _unchanged(store, before)


def test_batch_when_the_disk_fills_during_renders_is_one_error_line(tmp_path, clusters_file,
                                                                   monkeypatch):
    import studio.files

    store = _store_with_25_creatives(tmp_path / "store", clusters_file)
    before = store.counts()
    real_fsync = studio.files.os.fsync

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(studio.files.os, "fsync", fsync)
    line = _one_error(_batch(store.root, clusters_file), "no space left on device")
    assert str(store.root / "files") in line
    monkeypatch.setattr(studio.files.os, "fsync", real_fsync)
    _unchanged(store, before, prompts_written=True)
    assert store.query("SELECT COUNT(*) FROM job_leases")[0][0] == 0  # released on failure
    # The next run, with space again, completes the store.
    result = _batch(store.root, clusters_file)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["creatives"] >= 100


def test_sqlite_errors_of_the_store_name_the_database(tmp_path):
    store = Store(tmp_path / "s", create=True)
    with pytest.raises(sqlite3.OperationalError) as caught:
        store.query("SELECT * FROM no_such_table")
    assert caught.value.store_path == str(tmp_path / "s" / "store.db")


def test_user_tables_clusters_and_logs_are_read_with_a_cap(tmp_path, monkeypatch):
    """User tables, clusters files, impression logs and manifests are bounded reads of
    regular files: /dev/zero and over-size files are one clear error, never a read of
    the whole stream."""
    import studio.inputs.tables as tables_module
    import studio.learning.scoring as scoring_module
    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users
    from studio.errors import StudioError
    from studio.learning.scoring import read_log

    with pytest.raises(StudioError, match="not a regular file"):
        load_users(_zero_link(tmp_path, "u.csv"))
    with pytest.raises(StudioError, match="not a regular file"):
        Audience.load(_zero_link(tmp_path, "c.json"))
    with pytest.raises(StudioError, match="not a regular file"):
        read_log(_zero_link(tmp_path, "log.csv"))
    table = tmp_path / "users.csv"
    table.write_text("user_id,age\nu1,30\nu2,40\n")
    monkeypatch.setattr(tables_module, "MAX_DATA_BYTES", 10)
    with pytest.raises(StudioError, match="user table"):
        load_users(table)
    log = tmp_path / "log2.csv"
    log.write_text("creative_id,click\na,1\n")
    monkeypatch.setattr(scoring_module, "MAX_DATA_BYTES", 5)
    with pytest.raises(StudioError, match="log"):
        read_log(log)
    assert table.read_text().startswith("user_id")  # nothing was touched


def _zero_link(tmp_path, name):
    """A path with the right suffix that points at /dev/zero."""
    link = tmp_path / name
    link.symlink_to("/dev/zero")
    return link
