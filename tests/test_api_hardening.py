"""Hardening of the selection API (issue 13): no request stalls the API, bounded inputs,
honest answers on storage faults, readiness, retention, constant-time key compare, JSON
errors everywhere."""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import running
from studio.serving.api import create_app
from studio.cli import app as cli
from studio.serving.service import SelectionService
from studio.store import Store

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}
HIKER = {"age": 31, "income_k": 45.0, "sessions_per_week": 3.0, "device": "mobile",
         "region": "north", "interests": "hiking;camping;mountains"}


def _select_body(**changes) -> dict:
    return {"product_id": "mug", "user": dict(HIKER), **changes}


def _events(store_root) -> int:
    with sqlite3.connect(store_root / "store.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


# ------------------------------------------------------------------ the stall
def test_many_unknown_keys_do_not_stall_health(fresh_store):
    """30,000 unknown user keys (a ~0.5 MB body under a raised limit): a fast 422 that
    names them, while /healthz keeps answering within 100 ms (today: the select runs on
    the event loop and makes a pandas column of every key — seconds for both)."""
    application = create_app(fresh_store, api_key=KEY, max_body_bytes=1_000_000)
    user = {**HIKER, **{f"k{i}": "abc" for i in range(30_000)}}
    payload = json.dumps({"product_id": "mug", "user": user})
    with running(application) as (base, _):
        result = {}

        def big():
            started = time.perf_counter()
            try:
                response = httpx.post(f"{base}/v1/select", content=payload, headers=JSON_AUTH,
                                      timeout=20)
                result["status"], result["body"] = response.status_code, response.json()
            except httpx.HTTPError as exc:
                result["status"] = repr(exc)
            result["seconds"] = time.perf_counter() - started

        with httpx.Client(base_url=base, timeout=5) as health:
            health.get("/healthz")  # a warm keep-alive connection
            worker = threading.Thread(target=big)
            worker.start()
            timings = []
            while worker.is_alive() or len(timings) < 5:
                started = time.perf_counter()
                assert health.get("/healthz").status_code == 200
                timings.append(time.perf_counter() - started)
                time.sleep(0.005)
            worker.join()
    assert result["status"] == 422, result
    assert "'k0'" in result["body"]["error"] and "29995 more" in result["body"]["error"]
    assert result["seconds"] < 2.0, result["seconds"]
    assert max(timings) < 0.1, f"/healthz took {max(timings) * 1000:.0f} ms"
    assert _events(fresh_store) == 0


# ------------------------------------------------------------ bounded inputs
@pytest.mark.parametrize("raw,field", [
    ('"age": Infinity', "user.age"),
    ('"age": -Infinity', "user.age"),
    ('"age": NaN', "user.age"),
    ('"age": ' + "9" * 400, "user.age"),
    ('"income_k": 1e300', "user.income_k"),
    ('"age": "31"', "user.age"),
    ('"age": true', "user.age"),
    ('"device": {"nested": 1}', "user.device"),
    ('"region": "' + "x" * 5000 + '"', "user.region"),
    ('"interests": "' + ";".join(f"t{i}" for i in range(150)) + '"', "user.interests"),
    ('"interests": [1, 2]', "user.interests"),
    ('"segment": Infinity', "user.segment"),
    ('"region": "\\ud800"', "user.region"),  # a lone surrogate: JSON holds it, UTF-8 cannot
    ('"interests": "hiking;\\udfff"', "user.interests"),
])
def test_non_finite_huge_and_malformed_features_are_422(fresh_store, raw, field):
    user = json.dumps(HIKER)[1:-1]
    body = '{"product_id": "mug", "user": {' + user + ", " + raw + "}}"
    with TestClient(create_app(fresh_store, api_key=KEY)) as client:
        response = client.post("/v1/select", content=body, headers=JSON_AUTH)
        assert response.status_code == 422, response.text
        assert response.json()["error"].startswith(field)
    assert _events(fresh_store) == 0


@pytest.mark.parametrize("value", ["true", "false", '"1"', "1.0"])
def test_a_cluster_id_must_be_an_integer_not_a_boolean_or_text(fresh_store, value):
    body = '{"product_id": "mug", "cluster_id": ' + value + "}"
    with TestClient(create_app(fresh_store, api_key=KEY)) as client:
        response = client.post("/v1/select", content=body, headers=JSON_AUTH)
        assert response.status_code == 422, response.text
        assert "cluster_id" in response.json()["error"]
        assert client.post("/v1/select", json={"product_id": "mug", "cluster_id": 1},
                           headers=JSON_AUTH).status_code == 200
    assert _events(fresh_store) == 1


def test_an_error_never_echoes_a_huge_key_back(fresh_store):
    key = "k" * 60_000
    body = json.dumps({"product_id": "mug", "cluster_id": 1, key: 1,
                       **{f"extra{i}": i for i in range(50)}})
    with TestClient(create_app(fresh_store, api_key=KEY)) as client:
        response = client.post("/v1/select", content=body, headers=JSON_AUTH)
    assert response.status_code == 422 and len(response.content) < 4000, len(response.content)
    answer = response.json()
    assert answer["error"].startswith("k" * 40 + "…") and answer["errors"] == 51
    assert len(answer["detail"]) == 5
    assert _events(fresh_store) == 0


def test_unknown_keys_are_422_naming_them(fresh_store):
    with TestClient(create_app(fresh_store, api_key=KEY)) as client:
        response = client.post("/v1/select", headers=AUTH, json=_select_body(
            user={**HIKER, "shoe_size": 42, "favourite_colour": "teal"}))
        assert response.status_code == 422
        error = response.json()["error"]
        assert "'shoe_size'" in error and "'favourite_colour'" in error and "known:" in error
        extra = client.post("/v1/select", headers=AUTH, json={**_select_body(), "debug": True})
        assert extra.status_code == 422 and "debug" in extra.json()["error"]
        ageless = {k: v for k, v in HIKER.items() if k != "age"}
        missing = client.post("/v1/select", headers=AUTH, json=_select_body(user=ageless))
        assert missing.status_code == 422 and "'age'" in missing.json()["error"]
        assert _events(fresh_store) == 0
        # The audience's own unused columns are accepted (and dropped); null imputes;
        # interests may be a list.
        fine = client.post("/v1/select", headers=AUTH, json=_select_body(user={
            **HIKER, "user_id": "u1", "segment": "outdoor", "income_k": None,
            "interests": ["hiking", "camping"]}))
        assert fine.status_code == 200, fine.text
        plain = client.post("/v1/select", headers=AUTH, json=_select_body()).json()
        assert fine.json()["cluster_id"] == plain["cluster_id"]


def test_body_limit_is_413_also_for_chunked_bodies(fresh_store):
    application = create_app(fresh_store, api_key=KEY, max_body_bytes=2048)
    padding = {f"k{i}": "abc" for i in range(300)}  # ~4 KB
    with running(application) as (base, _):
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as client:
            sized = client.post("/v1/select", json=_select_body(user={**HIKER, **padding}))
            assert sized.status_code == 413 and "2048 bytes" in sized.json()["error"]
            body = json.dumps(_select_body(user={**HIKER, **padding})).encode()

            def chunks():
                for i in range(0, len(body), 512):
                    yield body[i:i + 512]

            chunked = client.post("/v1/select", content=chunks(),
                                  headers={"Content-Type": "application/json"})
            assert chunked.request.headers.get("transfer-encoding") == "chunked"
            assert chunked.status_code == 413 and "error" in chunked.json()
            small = json.dumps(_select_body()).encode()
            ok = client.post("/v1/select", content=iter([small[:10], small[10:]]),
                             headers={"Content-Type": "application/json"})
            assert ok.status_code == 200, ok.text
    assert _events(fresh_store) == 1


def test_serve_passes_the_new_options(monkeypatch, store_dir):
    seen = {}
    monkeypatch.setattr("studio.serving.api.serve", lambda store, **kw: seen.update(kw))
    result = CliRunner().invoke(cli, ["serve", "--store", str(store_dir), "--api-key", KEY,
                                      "--max-body-bytes", "1000", "--retain-days", "2",
                                      "--min-free-mb", "1"])
    assert result.exit_code == 0, result.output
    assert seen["max_body_bytes"] == 1000 and seen["retention_s"] == 2 * 86400
    assert seen["min_free_bytes"] == 1024 * 1024
    bad = CliRunner().invoke(cli, ["serve", "--store", str(store_dir), "--max-body-bytes", "0"])
    assert bad.exit_code == 2 and "--max-body-bytes" in bad.stderr


# ------------------------------------------------------------ storage faults
def _cap_connections(service, state):
    """Every connection the service uses (one per thread) gets the current
    ``max_page_count`` cap and ``query_only`` flag of ``state`` when fetched."""
    original = service.store.connection

    def connection():
        conn = original()
        conn.execute(f"PRAGMA max_page_count = {state.get('cap') or 1_000_000_000}")
        conn.execute(f"PRAGMA query_only = {'ON' if state.get('query_only') else 'OFF'}")
        return conn

    service.store.connection = connection


def test_disk_full_during_serving(fresh_store):
    """The SQLite file is capped at its current size (``PRAGMA max_page_count`` on every
    connection): a committed reward is never answered 500 (its snapshot fails after the
    commit and stays pending), selections answer 503 + Retry-After; once the cap is
    lifted the service recovers without a restart, retries the snapshots on its timer,
    and the store has exactly the acknowledged rewards."""
    application = create_app(fresh_store, api_key=KEY, snapshot_every=1, min_free_bytes=0,
                             maintenance_interval_s=0.2)
    service = application.state.service
    state: dict = {}
    _cap_connections(service, state)
    acknowledged: dict[str, float] = {}
    statuses = {"select": [], "feedback": []}
    with TestClient(application) as client:
        products = ["mug", "sneaker", "bottle", "handbag", "perfume"]  # five categories
        events = [{"product_id": products[i % 5], "cluster_id": i % 4} for i in range(40)]
        events = [client.post("/v1/select", json=b, headers=AUTH).json() for b in events]
        state["cap"] = service.store.query("PRAGMA page_count")[0][0]
        unsent = []
        for i, event in enumerate(events):
            reward = float(i % 3 == 0)
            answer = client.post("/v1/feedback", headers=AUTH,
                                 json={"event_id": event["event_id"], "reward": reward})
            statuses["feedback"].append(answer.status_code)
            assert answer.status_code in (200, 503), answer.text
            assert "error" in answer.json() or answer.json()["status"] == "applied"
            if answer.status_code == 200:
                acknowledged[event["event_id"]] = reward
            else:
                assert answer.headers["Retry-After"]
                assert "nothing was recorded" in answer.json()["error"]
                unsent.append((event["event_id"], reward))
            chosen = client.post("/v1/select", headers=AUTH, json=_select_body())
            statuses["select"].append(chosen.status_code)
            assert chosen.status_code in (200, 503), chosen.text
            if chosen.status_code == 503:
                assert chosen.headers["Retry-After"] and "error" in chosen.json()
        assert acknowledged, "no reward was committed under the cap"
        assert service.pending_snapshots, "no snapshot failed after a committed reward"
        assert 503 in statuses["select"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert "full" in ready.json()["error"]
        assert client.get("/healthz").status_code == 200  # alive, not ready

        state["cap"] = None  # space again: no restart
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/select", json=_select_body(), headers=AUTH).status_code == 200
        for event_id, reward in unsent:
            answer = client.post("/v1/feedback", json={"event_id": event_id, "reward": reward},
                                 headers=AUTH)
            assert answer.status_code == 200 and answer.json()["status"] == "applied"
            acknowledged[event_id] = reward
        deadline = time.monotonic() + 10
        while service.pending_snapshots and time.monotonic() < deadline:
            time.sleep(0.05)  # the maintenance timer retries the failed snapshots
        assert not service.pending_snapshots
        counts = {c: m.counts() for c, m in service.models.items()}
    store = Store(fresh_store)
    stored = {r["event_id"]: r["reward"]
              for r in store.query("SELECT event_id, reward FROM rewards")}
    assert stored == acknowledged  # none lost, none extra
    restarted = SelectionService.open(store)
    assert {c: m.counts() for c, m in restarted.models.items()} == counts
    assert sum(sum(c.values()) for c in counts.values()) == len(acknowledged)


def test_snapshot_failure_after_commit_is_not_a_500(served_store, monkeypatch):
    """The snapshot after a committed reward fails (disk full): 200 ``applied``, the
    snapshot stays pending and is written with a later reward."""
    application = create_app(served_store, api_key=KEY, snapshot_every=1, min_free_bytes=0)
    service = application.state.service
    real = type(service).snapshot
    failing = [True]

    def snapshot(self, category=None):
        if failing[0]:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, category)

    monkeypatch.setattr(type(service), "snapshot", snapshot)
    with TestClient(application) as client:
        first, second = (client.post("/v1/select", json=_select_body(), headers=AUTH).json()
                         for _ in range(2))
        answer = client.post("/v1/feedback", json={"event_id": first["event_id"], "reward": 1},
                             headers=AUTH)
        assert answer.status_code == 200 and answer.json()["status"] == "applied"
        assert service.pending_snapshots == [service.products["mug"]]
        failing[0] = False
        answer = client.post("/v1/feedback", json={"event_id": second["event_id"], "reward": 0},
                             headers=AUTH)
        assert answer.status_code == 200 and not service.pending_snapshots
    assert Store(served_store).counts()["rewards"] == 2


def test_read_only_store_is_not_ready(fresh_store):
    """A store that refuses writes (``PRAGMA query_only=ON`` on the service's
    connections: tests run as root, so a chmod would not stop SQLite) → /readyz 503,
    select and feedback 503 + Retry-After; it recovers when writes work again."""
    application = create_app(fresh_store, api_key=KEY, min_free_bytes=0)
    state: dict = {}
    _cap_connections(application.state.service, state)
    with TestClient(application) as client:
        event = client.post("/v1/select", json=_select_body(), headers=AUTH).json()
        assert client.get("/readyz").status_code == 200
        state["query_only"] = True
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"]
        assert "readonly" in ready.json()["error"] and ready.json()["writable"] is False
        assert client.get("/healthz").status_code == 200
        chosen = client.post("/v1/select", json=_select_body(), headers=AUTH)
        assert chosen.status_code == 503 and chosen.headers["Retry-After"]
        assert "error" in chosen.json()
        feedback = client.post("/v1/feedback", json={"event_id": event["event_id"], "reward": 1},
                               headers=AUTH)
        assert feedback.status_code == 503
        state["query_only"] = False
        assert client.get("/readyz").status_code == 200
        feedback = client.post("/v1/feedback", json={"event_id": event["event_id"], "reward": 1},
                               headers=AUTH)
        assert feedback.status_code == 200 and feedback.json()["status"] == "applied"


def test_low_disk_floor_sheds_selections(fresh_store):
    import shutil as sh

    free = sh.disk_usage(fresh_store).free
    with TestClient(create_app(fresh_store, api_key=KEY, min_free_bytes=free * 4)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "free" in ready.json()["error"]
        chosen = client.post("/v1/select", json=_select_body(), headers=AUTH)
        assert chosen.status_code == 503 and chosen.headers["Retry-After"]
    assert _events(fresh_store) == 0


# ------------------------------------------------------------ feedback, auth, errors
def test_conflicting_reward_is_409_with_both_values(served_store):
    with TestClient(create_app(served_store, api_key=KEY)) as client:
        event = client.post("/v1/select", json=_select_body(), headers=AUTH).json()["event_id"]
        send = lambda r: client.post("/v1/feedback", json={"event_id": event, "reward": r},
                                     headers=AUTH)
        assert send(1.0).json()["status"] == "applied"
        assert send(1.0).json()["status"] == "duplicate"
        conflict = send(0.0)
        assert conflict.status_code == 409
        body = conflict.json()
        assert body["recorded"] == 1.0 and body["received"] == 0.0 and "error" in body
        service = client.app.state.service
        assert sum(service.models[service.products["mug"]].counts().values()) == 1
    rows = Store(served_store).query("SELECT reward FROM rewards")
    assert [r[0] for r in rows] == [1.0]


def test_api_key_is_compared_in_constant_time(fresh_store, monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("studio.serving.api.dependencies.hmac.compare_digest", recording)
    with TestClient(create_app(fresh_store, api_key=KEY)) as client:
        assert client.post("/v1/select", json=_select_body(),
                           headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.post("/v1/select", json=_select_body()).status_code == 401
        assert client.post("/v1/select", json=_select_body(), headers=AUTH).status_code == 200
    assert len(calls) == 3 and calls[-1][1] == f"Bearer {KEY}".encode()


def test_every_error_is_json_and_a_500_keeps_the_connection(fresh_store):
    application = create_app(fresh_store, api_key=KEY, max_body_bytes=4096)
    service = application.state.service
    with running(application) as (base, port):
        with httpx.Client(base_url=base, timeout=10) as client:
            answers = [
                client.post("/v1/select", json=_select_body()),                      # 401
                client.get("/v1/nowhere"),                                           # 404
                client.delete("/healthz"),                                           # 405
                client.get("/v1/creatives/" + "0" * 20),                             # 404
                client.post("/v1/select", content=b"{not json", headers=JSON_AUTH),  # 422
                client.post("/v1/select", content=b"x" * 5000, headers=JSON_AUTH),   # 413
                client.post("/v1/feedback", json={"event_id": "0" * 32, "reward": 1},
                            headers=AUTH),                                           # 404
            ]
            assert [a.status_code for a in answers] == [401, 404, 405, 404, 422, 413, 404]
            for answer in answers:
                assert answer.headers["content-type"].startswith("application/json")
                assert isinstance(answer.json()["error"], str)

        def boom(*args, **kwargs):
            raise RuntimeError("boom")

        service.select = boom
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps(_select_body())
        connection.request("POST", "/v1/select", body, JSON_AUTH)
        failed = connection.getresponse()
        payload = json.loads(failed.read())
        assert failed.status == 500 and "RuntimeError" in payload["error"]
        assert "boom" not in payload["error"]  # details go to the log, not the client
        sock = connection.sock
        connection.request("GET", "/healthz")
        again = connection.getresponse()
        assert again.status == 200 and json.loads(again.read())["status"] == "ok"
        assert connection.sock is sock  # the same connection: not dropped after the 500
        connection.close()


# ------------------------------------------------------------ retention
def test_retention_prunes_only_events_folded_into_a_snapshot(served_store):
    store = Store(served_store)
    service = SelectionService.open(store, snapshot_every=1000, feedback_window_s=1.0,
                                    retention_s=0.0)
    chosen = [service.select("mug", cluster_id=i % 5) for i in range(20)]
    for c in chosen[:10]:
        service.feedback(c.event_id, 1.0)
    service.snapshot()
    for c in chosen[10:15]:
        service.feedback(c.event_id, 0.0)  # after the snapshot: needed by a replay
    counts = {k: m.counts() for k, m in service.models.items()}
    time.sleep(1.1)
    recent = service.select("mug", cluster_id=0)  # inside the window: kept
    assert service.prune(batch=4) == 15  # 10 folded + 5 never rewarded, in batches
    kept = {r[0] for r in store.query("SELECT event_id FROM events")}
    assert kept == {c.event_id for c in chosen[10:15]} | {recent.event_id}
    assert store.counts()["rewards"] == 5
    restarted = SelectionService.open(Store(served_store))
    assert {k: m.counts() for k, m in restarted.models.items()} == counts
    assert SelectionService.open(Store(served_store)).prune() == 0  # retention off by default
