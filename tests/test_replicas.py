"""Selection API replicas over one store: every replica learns only from the reward log,
so feedback sent to any of them reaches all; a replica killed mid-feedback loses nothing
it acknowledged, and catches up when it comes back."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import httpx
import pytest

from conftest import PYTHON, REPO, python_env
from studio.store import Store
from studio.store.transfer import copy_store

KEY = "replica-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Replica:
    """``studio serve`` in a process of its own."""

    def __init__(self, store: str, *extra: str):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [PYTHON, "-m", "studio", "serve", "--store", store, "--port", str(self.port),
             *extra], env=python_env(STUDIO_API_KEY=KEY), cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"replica exited: {self.process.stderr.read()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("replica did not start")

    def health(self) -> dict:
        return httpx.get(f"{self.base}/healthz", timeout=5).json()

    def arms(self) -> dict:
        return {a["arm_id"]: (a["updates"], round(a["mean"], 9))
                for a in httpx.get(f"{self.base}/v1/arms", timeout=5).json()["arms"]}

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


def _caught_up(*replicas: Replica, timeout: float = 20.0) -> int:
    """Wait until every replica has applied the whole log; its last seq."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [r.health()["replica"] for r in replicas]
        if all(s["behind"] == 0 and s["position"] == s["log_seq"] for s in states) and \
                len({s["position"] for s in states}) == 1:
            return states[0]["position"]
        time.sleep(0.05)
    raise AssertionError(f"replicas did not catch up: {states}")


@pytest.fixture
def postgres_store(fresh_store, postgres_dsn, tmp_path):
    copy_store(Store(fresh_store), Store(postgres_dsn, folder=tmp_path / "files", create=True))
    return postgres_dsn


def test_feedback_to_either_replica_teaches_both(postgres_store):
    a, b = Replica(postgres_store), Replica(postgres_store)
    try:
        with httpx.Client(headers=AUTH, timeout=10) as client:
            events = [client.post(f"{a.base}/v1/select",
                                  json={"product_id": "mug", "cluster_id": i % 5}).json()
                      for i in range(40)]
            statuses = []
            for i, event in enumerate(events):  # chosen by A, rewarded through B
                body = {"event_id": event["event_id"], "reward": float(i % 3 == 0)}
                statuses.append(client.post(f"{b.base}/v1/feedback", json=body).json()["status"])
            for event in events[:10]:  # duplicates, sent to both
                for replica in (a, b):
                    body = {"event_id": event["event_id"],
                            "reward": float(events.index(event) % 3 == 0)}
                    answer = client.post(f"{replica.base}/v1/feedback", json=body)
                    assert answer.json()["status"] == "duplicate"
        assert statuses == ["applied"] * 40
        _caught_up(a, b)
        assert a.arms() == b.arms()
        assert sum(u for u, _ in a.arms().values()) == 40
        assert a.health()["store"] == "postgresql" and a.health()["rewards"] == 40
    finally:
        a.stop(), b.stop()


def test_a_replica_killed_mid_feedback_loses_nothing_it_acknowledged(postgres_store):
    a, b = Replica(postgres_store), Replica(postgres_store)
    acknowledged: list[str] = []
    try:
        with httpx.Client(headers=AUTH, timeout=10) as client:
            events = [client.post(f"{b.base}/v1/select",
                                  json={"product_id": p, "cluster_id": i % 5}).json()["event_id"]
                      for i, p in enumerate(["mug", "sneaker", "bottle", "handbag"] * 60)]

        def load(replica: Replica, part: list[str]) -> None:
            with httpx.Client(headers=AUTH, timeout=5) as client:
                for event_id in part:
                    try:
                        answer = client.post(f"{replica.base}/v1/feedback",
                                             json={"event_id": event_id, "reward": 1.0})
                    except httpx.HTTPError:
                        continue  # the replica is gone: not acknowledged
                    if answer.status_code == 200:
                        acknowledged.append(event_id)

        senders = [threading.Thread(target=load, args=(a, events[0::2])),
                   threading.Thread(target=load, args=(b, events[1::2]))]
        for s in senders:
            s.start()
        while len(acknowledged) < 40:
            time.sleep(0.005)
        a.stop(signal.SIGKILL)  # no graceful shutdown, no final snapshot
        for s in senders:
            s.join()
        assert 40 <= len(acknowledged) < len(events)
        logged = {r[0] for r in Store(postgres_store).query("SELECT event_id FROM rewards")}
        assert set(acknowledged) <= logged  # every acknowledged reward is in the log
        a = Replica(postgres_store)  # restarts: snapshot + replay of the log
        last = _caught_up(a, b)
        assert a.arms() == b.arms()
        assert sum(u for u, _ in a.arms().values()) == len(logged)
        assert last == max(r[0] for r in Store(postgres_store).query("SELECT seq FROM rewards"))
    finally:
        a.stop(), b.stop()


def test_serve_replicas_runs_worker_processes_that_share_the_log(served_store):
    """`studio serve --replicas 2`: two processes on one port (on either backend); the
    feedback each takes reaches the other."""
    server = Replica(str(served_store), "--replicas", "2")
    try:
        pids = set()
        for i in range(60):
            with httpx.Client(headers=AUTH, timeout=10) as client:  # a new connection each
                event = client.post(f"{server.base}/v1/select",
                                    json={"product_id": "mug", "cluster_id": i % 5}).json()
                pids.add(client.get(f"{server.base}/healthz").json()["replica"]["pid"])
                answer = client.post(f"{server.base}/v1/feedback",
                                     json={"event_id": event["event_id"], "reward": 1.0})
                assert answer.json()["status"] == "applied"
        assert len(pids) == 2, pids
        deadline, seen = time.time() + 20, {}
        while time.time() < deadline and (len(seen) < 2 or any(
                s["position"] != s["log_seq"] or s["behind"] for s in seen.values())):
            with httpx.Client(timeout=5) as client:
                state = client.get(f"{server.base}/healthz").json()["replica"]
            seen[state["pid"]] = state
        assert len(seen) == 2 and all(s["position"] == s["log_seq"] for s in seen.values())
        assert len({s["position"] for s in seen.values()}) == 1
        assert Store(str(served_store)).counts()["rewards"] == 60
    finally:
        server.stop()
