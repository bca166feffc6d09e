"""The store's repository methods, run against both backends (SQLite in a folder and a
throwaway PostgreSQL database): the same calls, the same answers, the same refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, python_env
from studio.errors import StudioError
from studio.store import MIGRATIONS, Store, database_errors, fault_kind


def open_store(location, *, create=True) -> Store:
    where, folder = location
    return Store(where, folder=folder, create=create)


class _Cluster:
    def __init__(self, cid):
        self.id, self.profile, self.size = cid, f"cluster {cid}", 10 + cid

    def as_dict(self):
        return {"id": self.id, "profile": self.profile, "size": self.size}


class _Audience:
    def __init__(self, n=2, tag="a"):
        self.clusters_ = [_Cluster(i) for i in range(n)]
        self.tag = tag

    def to_document(self):
        return {"tag": self.tag}


def _pool(store: Store) -> None:
    """Two clusters, one product, two prompts, two creatives with files, two arms."""
    store.add_audience(_Audience())
    store.add_products([("p1", "mug", "A mug", "sha-p1")])
    store.add_prompts([{"prompt_id": f"q{c}", "category": "mug", "cluster_id": c,
                        "text": f"mug on marble {c}", "source": "template"} for c in (0, 1)])
    notes = []
    for c in (0, 1):
        image = store.put_file(f"image {c}".encode())
        mask = store.put_file(b"mask")
        notes.append({"job_key": f"job{c}", "product_id": "p1", "prompt_id": f"q{c}",
                      "cluster_id": c, "format": "square", "seed": c, "image_sha256": image,
                      "mask_sha256": mask, "bytes": 10, "manifest": {"id": f"cr{c}"}})
    store.add_creatives(notes)
    store.set_scores_and_arms({"cr0": (0.03, True), "cr1": (0.05, True)},
                              {"q0": ("mug", 0, 0.03), "q1": ("mug", 1, 0.05)}, strength=80.0)


def test_a_new_store_has_the_whole_schema_and_nothing_in_it(store_location):
    store = open_store(store_location)
    assert store.schema_version == len(MIGRATIONS)
    assert set(store.counts().values()) == {0}
    assert not store.has_audience()
    assert store.check()["ok"]


def test_pools_round_trip_and_repeat_writes_change_nothing(store_location):
    store = open_store(store_location)
    _pool(store)
    assert store.add_audience(_Audience(tag="second")) is False  # the first one stays
    _pool(store)  # everything again: idempotent
    counts = store.counts()
    assert (counts["clusters"], counts["products"], counts["prompts"], counts["creatives"],
            counts["arms"]) == (2, 1, 2, 2, 2)
    creatives = store.creatives(selected_only=True)
    assert [c["creative_id"] for c in creatives] == ["cr0", "cr1"]
    assert creatives[0]["manifest"] == {"id": "cr0"} and creatives[0]["selected"] == 1
    assert [c["creative_id"] for c in store.top_creatives("mug", 5)] == ["cr1", "cr0"]
    arms = store.active_arms()
    assert list(arms) == ["q0", "q1"] and arms["q1"]["prior_impressions"] == 80.0
    assert arms["q0"]["prior_ctr"] == pytest.approx(0.03)
    assert store.product_categories() == {"p1": "mug"}
    assert store.selected_creatives() == {("p1", "q0", "square"): "cr0",
                                          ("p1", "q1", "square"): "cr1"}
    assert store.store_bytes() == 20 and store.creative_formats() == ["square"]
    assert store.check()["ok"] and store.check()["creatives"] == 2


def test_a_changed_product_is_refused_and_nothing_is_written(store_location):
    store = open_store(store_location)
    _pool(store)
    with pytest.raises(StudioError, match="changed since the store was built"):
        store.add_products([("p2", "mug", "new", "sha-p2"), ("p1", "mug", "A mug", "other")])
    assert store.product_categories() == {"p1": "mug"}  # p2 rolled back with it


def test_the_same_pixels_from_two_jobs_are_kept_under_two_ids(store_location):
    store = open_store(store_location)
    _pool(store)
    image = store.put_file(b"image 0")
    note = {"job_key": "job9", "product_id": "p1", "prompt_id": "q0", "cluster_id": 0,
            "format": "square", "seed": 9, "image_sha256": image, "mask_sha256": image,
            "bytes": 7, "manifest": {"id": "cr0"}}
    store.add_creatives([note])
    assert note["manifest"]["id"] != "cr0"
    assert len(store.creatives()) == 3 and "job9" in store.job_keys()


def test_rewards_are_checked_against_the_log_in_one_transaction(store_location):
    store = open_store(store_location)
    _pool(store)
    for i in range(3):
        store.log_event(event_id=f"e{i}", product_id="p1", category="mug", cluster_id=0,
                        arm_id="q0", creative_id="cr0", placement="square",
                        candidates=["q0", "q1"], context=[1.0, 0.5], propensity=0.9,
                        score=0.1, created_at=time.time() - (1000 if i == 2 else 0))
    first = store.record_reward("e0", 1.0, window_s=100)
    assert first.status == "applied" and first.event.context == [1.0, 0.5]
    assert store.record_reward("e0", 1.0, window_s=100).status == "duplicate"
    conflict = store.record_reward("e0", 0.0, window_s=100)
    assert (conflict.status, conflict.recorded) == ("conflict", 1.0)
    assert store.record_reward("nope", 1.0, window_s=100).status == "unknown"
    assert store.record_reward("e2", 1.0, window_s=100).status == "expired"
    second = store.record_reward("e1", 0.0, window_s=100)
    assert second.seq > first.seq
    replay = store.rewards_after(0)
    assert [(r.seq, r.reward, r.arm_id) for r in replay] == [(first.seq, 1.0, "q0"),
                                                             (second.seq, 0.0, "q0")]
    assert store.rewards_after(first.seq)[0].seq == second.seq
    stats = store.arm_statistics()["q0"]
    assert (stats.pulls, stats.rewarded, stats.clicks) == (3, 2, 1.0)
    assert len(store.rewarded_events()) == 2


def test_snapshots_replace_and_pruning_keeps_what_is_not_folded(store_location):
    store = open_store(store_location)
    _pool(store)
    for i in range(4):
        store.log_event(event_id=f"e{i}", product_id="p1", category="mug", cluster_id=0,
                        arm_id="q0", creative_id="cr0", placement="square", candidates=["q0"],
                        context=[1.0], propensity=1.0, score=0.0, created_at=100.0 + i)
    seqs = [store.record_reward(f"e{i}", 1.0, window_s=1e12).seq for i in range(3)]
    store.save_snapshot("mug", b"\x00model-1", seqs[0])
    store.save_snapshot("mug", b"\x00model-2\xff", seqs[1])
    snapshot = store.snapshots()["mug"]
    assert (snapshot.model, snapshot.reward_seq) == (b"\x00model-2\xff", seqs[1])
    prunable = store.prunable_events(cutoff=1000.0, limit=10)
    assert sorted(prunable) == ["e0", "e1", "e3"]  # e2's reward is not folded yet
    assert store.prune_events(prunable, cutoff=1000.0) == 3
    assert store.counts()["events"] == 1 and store.counts()["rewards"] == 1


def test_job_leases_let_one_owner_render_a_job(store_location):
    store = open_store(store_location)
    _pool(store)
    a, b = "host-x:1:a", "host-x:2:b"  # another host: liveness comes from the expiry
    assert store.claim_job("job0", a) == "done"
    assert store.claim_job("new", a, ttl=60) == "claimed"
    assert store.claim_job("new", b, ttl=60) == "busy"
    assert store.live_leases() == 1 and store.live_leases(exclude=a) == 0
    assert store.renew_leases(a, ttl=60) == 1
    store.release_leases(a)
    assert store.claim_job("new", b, ttl=60) == "claimed"


def test_threads_racing_for_one_job_get_it_once(store_location):
    store = open_store(store_location)
    outcomes = []

    def claim(owner):
        outcomes.append(store.claim_job("contested", owner, ttl=60))
        store.close()

    threads = [threading.Thread(target=claim, args=(f"other:{i}:x",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["busy"] * 5 + ["claimed"]


_OPEN = """
import sys
from studio.store import Store
store = Store(sys.argv[1], folder=sys.argv[2] if sys.argv[2] != "-" else None, create=True)
print(store.schema_version)
"""


def test_two_processes_opening_a_new_store_at_once_both_succeed(store_location):
    where, folder = store_location
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN, where, folder or "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=python_env(), cwd=REPO) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == [str(len(MIGRATIONS))] * 2
    store = open_store(store_location, create=False)
    assert store.query("SELECT COUNT(*) FROM schema_version")[0][0] == 1


# ------------------------------------------------------------- PostgreSQL only
def test_a_postgres_store_finds_its_files_folder_from_the_dsn_alone(postgres_dsn, tmp_path):
    store = Store(postgres_dsn, folder=tmp_path / "shared", create=True)
    sha = store.put_file(b"bytes of a creative")
    assert store.file_path(sha).read_bytes() == b"bytes of a creative"
    assert store.backend == "postgresql" and store.root == (tmp_path / "shared").resolve()
    again = Store(postgres_dsn)
    assert again.root == store.root and again.file_path(sha).exists()


def test_a_postgres_store_refuses_what_it_cannot_open(postgres_dsn, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_STORE_FOLDER", raising=False)
    with pytest.raises(StudioError, match="is not a store"):
        Store(postgres_dsn)  # an empty database, not asked to create
    with pytest.raises(StudioError, match="no files folder yet"):
        Store(postgres_dsn, create=True)
    import psycopg

    with psycopg.connect(postgres_dsn) as conn:  # both refusals left the database empty
        assert conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone()[0] == 0
    Store(postgres_dsn, folder=tmp_path / "f", create=True)
    with pytest.raises(StudioError, match="does not exist"):
        Store(postgres_dsn, folder=tmp_path / "missing")


def test_an_unreachable_database_is_a_named_storage_fault(tmp_path):
    pytest.importorskip("psycopg")
    with socket_port() as port:
        dsn = f"postgresql://studio:secret@127.0.0.1:{port}/nothing"
    with pytest.raises(database_errors()) as caught:
        Store(dsn, folder=tmp_path, create=True)
    assert fault_kind(caught.value) == "unavailable"
    assert "secret" not in caught.value.store_path and str(port) in caught.value.store_path


def test_postgres_stores_json_and_bytes_as_sqlite_does(postgres_dsn, tmp_path):
    store = Store(postgres_dsn, folder=tmp_path, create=True)
    _pool(store)
    row = store.prompt_records()["q0"]
    assert json.loads(row["tags"]) == {} and row["cluster_id"] == 0
    assert isinstance(store.counts()["arms"], int)


class socket_port:
    """A local port nothing listens on (bound, then released on exit)."""

    def __enter__(self):
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return self._socket.getsockname()[1]

    def __exit__(self, *exc):
        self._socket.close()


# ------------------------------------------------------------ the command line
def test_store_copy_moves_a_served_store_into_postgres(fresh_store, postgres_dsn, tmp_path):
    """`studio store copy` carries rows, files, snapshots and the log; the copy serves on
    from where the original stopped; a non-empty target is refused and left as it was."""
    from typer.testing import CliRunner

    from studio.cli import app
    from studio.serving.service import SelectionService

    source = Store(fresh_store)
    service = SelectionService.open(source, snapshot_every=5)
    for i in range(12):
        chosen = service.select("mug", cluster_id=i % 5)
        service.feedback(chosen.event_id, float(i % 3 == 0))
    result = CliRunner().invoke(app, ["store", "copy", str(fresh_store), postgres_dsn,
                                      "--store-folder", str(tmp_path / "pg")])
    assert result.exit_code == 0, result.output
    copy = Store(postgres_dsn)
    assert copy.counts() == source.counts() and copy.check()["ok"]
    assert copy.rewards_after(0) == source.rewards_after(0)
    assert copy.snapshots() == source.snapshots()
    again = SelectionService.open(copy)
    category = service.products["mug"]
    assert again.models[category].counts() == service.models[category].counts()
    more = again.select("mug", cluster_id=1)  # numbering continues after the copied rows
    assert again.feedback(more.event_id, 1.0) == "applied"
    assert copy.rewards_after(0)[-1].seq == max(r.seq for r in source.rewards_after(0)) + 1
    before = copy.counts()
    refused = CliRunner().invoke(app, ["store", "copy", str(fresh_store), postgres_dsn])
    assert refused.exit_code == 2 and "is not empty" in refused.stderr
    assert Store(postgres_dsn).counts() == before


def test_an_unreachable_store_is_one_line_without_the_password(tmp_path):
    pytest.importorskip("psycopg")
    from typer.testing import CliRunner

    from studio.cli import app

    with socket_port() as port:
        dsn = f"postgresql://studio:hunter2@127.0.0.1:{port}/db"
    result = CliRunner().invoke(app, ["store", "check", dsn])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be opened" in lines[0] and "hunter2" not in lines[0]
    assert f"studio:***@127.0.0.1:{port}" in lines[0]


def test_the_store_comes_from_studio_store_when_not_given(fresh_store):
    from typer.testing import CliRunner

    from studio.cli import app

    result = CliRunner().invoke(app, ["store", "check"], env={"STUDIO_STORE": str(fresh_store)})
    assert result.exit_code == 0 and "ok" in result.output
    missing = CliRunner().invoke(app, ["store", "check"], env={"STUDIO_STORE": ""})
    assert missing.exit_code == 2 and "Missing argument 'STORE'" in missing.output
