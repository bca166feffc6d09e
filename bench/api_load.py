"""Load on the selection API: select + feedback from client processes against one or
more replicas, persistence on, optionally killing a replica (SIGKILL) mid-load.

Builds a demo store (demo catalog × demo audience, backdrop engine, small renders) — in
a folder (SQLite) for one replica, in PostgreSQL for several (``--store postgresql://…``
of an empty database, or, with no DSN, a throwaway cluster this script starts and
removes) — starts ``studio serve`` once per replica on 127.0.0.1, and drives them from
``--client-processes`` processes with ``--clients`` keep-alive connections in all, each
sending select → feedback pairs at up to ``--rate`` requests/s in total for ``--seconds``
(timed) after ``--warmup`` seconds (not timed).
A client selects on one replica and sends the feedback to the next (any replica takes
any event). With ``--kill-after S`` replica 0 is killed with SIGKILL after S seconds and
restarted at once (its clients move to the next replica meanwhile: a load balancer).

Afterwards: every acknowledged reward must be in the log (``lost_updates``), and every
replica, once caught up, must hold exactly the log's rewards in its bandit
(``replica_mismatch``, from /v1/arms); then all replicas restart (SIGTERM) and the
state must come back (``lost_after_restart``).

    python bench/api_load.py [--replicas 2] [--store postgresql://…] [--kill-after 5]
                             [--clients 8] [--client-processes 2] [--rate 500] [--seconds 20]

The last line is JSON with replicas, rps, p50_ms, p99_ms, requests, acknowledged and
lost_updates (and more). Goals: p99 < 10 ms at 500 req/s; 0 acknowledged rewards lost.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEY = "bench-key"
PRODUCTS = ["mug", "sneaker", "bottle", "handbag", "perfume"]


def build_store(location: str, folder: Path) -> None:
    from studio.inputs.audience import Audience
    from studio.store import is_dsn
    from studio.inputs.tables import load_users
    from studio.learning.batch import BatchSettings, run_batch

    clusters = folder / "clusters.json"
    Audience(5).fit(load_users(ROOT / "assets/demo/users.csv")).save(clusters)
    run_batch(ROOT / "assets/demo/catalog.csv", clusters, location,
              BatchSettings(per_cluster=4, size="128", engine="backdrop", watermark=False),
              echo=lambda m: None, store_folder=folder / "files" if is_dsn(location) else None)


class Replica:
    """One ``studio serve`` process on its own port (restartable on the same port)."""

    def __init__(self, store: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.store = store
        self.base = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        import httpx

        env = {**os.environ, "STUDIO_API_KEY": KEY, "OPENBLAS_NUM_THREADS": "1",
               "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "studio", "serve", "--store", self.store, "--port",
             str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(900):
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
            if self.process.poll() is not None:
                raise SystemExit(f"replica failed: {self.process.stderr.read().decode()[-2000:]}")
        raise SystemExit("replica did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)

    def get(self, path: str) -> dict:
        import httpx

        return httpx.get(f"{self.base}{path}", timeout=30).json()


class KeepAlive:
    """Persistent HTTP/1.1 connections, one per replica, posting JSON with the API key."""

    def __init__(self, ports: list[int]):
        import http.client

        self.ports = ports
        self.connections = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10)
                            for p in ports}
        self.headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def post(self, port: int, path: str, payload: dict) -> tuple[int, dict]:
        connection = self.connections[port]
        try:
            connection.request("POST", path, json.dumps(payload), self.headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        except Exception:  # refused, reset, cut mid-answer: not acknowledged
            connection.close()  # reconnects on the next request
            return 0, {}

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def client_process(index: int, threads: int, ports: list[int], interval: float,
                   record_from: float, stop_at: float, queue) -> None:
    """``threads`` clients of one process; puts (latencies of the requests sent after
    ``record_from``, acknowledged ids, errors)."""
    import threading

    import numpy as np

    latencies, acknowledged, errors = [], [], [0]
    lock = threading.Lock()

    def client(number: int) -> None:
        rng = np.random.default_rng(number)
        http = KeepAlive(ports)
        home = number % len(ports)
        mine, acks, failed = [], [], 0
        next_at = time.time() + rng.random() * interval
        while time.time() < stop_at:
            select_port = ports[home]
            feedback_port = ports[(home + 1) % len(ports)]
            time.sleep(max(0.0, next_at - time.time()))
            next_at += interval
            started = time.perf_counter()
            code, body = http.post(select_port, "/v1/select", {
                "product_id": PRODUCTS[int(rng.integers(5))], "cluster_id": int(rng.integers(5))})
            if time.time() >= record_from:
                mine.append(("select", time.perf_counter() - started))
            if code != 200:
                failed += 1
                home = (home + 1) % len(ports)  # the load balancer moves this client on
                continue
            time.sleep(max(0.0, next_at - time.time()))
            next_at += interval
            started = time.perf_counter()
            event = body["event_id"]
            code, answer = http.post(feedback_port, "/v1/feedback",
                                     {"event_id": event, "reward": float(rng.random() < 0.1)})
            if time.time() >= record_from:
                mine.append(("feedback", time.perf_counter() - started))
            if code == 200 and answer.get("status") in ("applied", "duplicate"):
                acks.append(event)
            else:
                failed += 1
                home = (home + 1) % len(ports)
        http.close()
        with lock:
            latencies.extend(mine)
            acknowledged.extend(acks)
            errors[0] += failed

    workers = [threading.Thread(target=client, args=(index * 1000 + i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((latencies, acknowledged, errors[0]))


def caught_up(replicas: list[Replica], timeout: float = 60.0) -> list[dict]:
    """Wait until every replica has applied the whole log; their /healthz replica parts."""
    deadline = time.time() + timeout
    while True:
        states = [r.get("/healthz")["replica"] for r in replicas]
        if all(s["behind"] == 0 for s in states) or time.time() > deadline:
            return states
        time.sleep(0.1)


def updates(replica: Replica) -> int:
    return sum(a["updates"] for a in replica.get("/v1/arms")["arms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--store", default=None, help="a DSN of an empty PostgreSQL "
                        "database (default: SQLite for one replica, a throwaway cluster "
                        "for several)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default=None,
                        help="without --store: sqlite (replicas on this machine poll its log) or a throwaway "
                             "PostgreSQL cluster (default: sqlite for one replica, else "
                             "postgresql)")
    parser.add_argument("--durable", action="store_true",
                        help="run the throwaway cluster with fsync on (default off)")
    parser.add_argument("--kill-after", type=float, default=None,
                        help="SIGKILL replica 0 after this many seconds, and restart it")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500.0, help="target requests/s in total")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured load")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before the "
                        "measured seconds, not timed (each server thread opens its "
                        "database connection once)")
    args = parser.parse_args()
    import numpy as np

    from studio.store import Store, is_dsn

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        location = args.store
        backend = args.backend or ("sqlite" if args.replicas == 1 else "postgresql")
        if location is None and backend == "postgresql":
            from studio.store.throwaway import new_database, throwaway_cluster

            location = new_database(stack.enter_context(throwaway_cluster(fsync=args.durable)))
        location = location or str(folder / "store")
        build_store(location, folder)
        replicas = [Replica(location) for _ in range(args.replicas)]
        stack.callback(lambda: [r.stop() for r in replicas])
        ports = [r.port for r in replicas]
        per_process = max(1, args.clients // args.client_processes)
        interval = args.clients / args.rate  # seconds between one client's requests
        queue = multiprocessing.get_context("spawn").Queue()
        record_from = time.time() + args.warmup
        stop_at = record_from + args.seconds
        processes = [multiprocessing.get_context("spawn").Process(
            target=client_process, args=(i, per_process, ports, interval, record_from, stop_at, queue))
            for i in range(args.client_processes)]
        started = time.perf_counter()
        for p in processes:
            p.start()
        killed_at = None
        if args.kill_after is not None:
            time.sleep(args.warmup + args.kill_after)
            replicas[0].stop(signal.SIGKILL)
            killed_at = round(time.perf_counter() - started - args.warmup, 2)
            replicas[0].start()
        results = [queue.get() for _ in processes]
        for p in processes:
            p.join()
        elapsed = time.perf_counter() - started - args.warmup
        latencies = [x for r in results for x in r[0]]
        acknowledged = {x for r in results for x in r[1]}
        errors = sum(r[2] for r in results)

        store = Store(location)
        logged = {row[0] for row in store.query("SELECT event_id FROM rewards")}
        states = caught_up(replicas)
        in_state = [updates(r) for r in replicas]
        for r in replicas:
            r.stop()
            r.start()
        caught_up(replicas)
        after_restart = [updates(r) for r in replicas]
        backend = "postgresql" if is_dsn(location) else "sqlite"

    ms = np.array([seconds for _, seconds in latencies]) * 1000
    by_kind = {kind: np.array([x for k, x in latencies if k == kind]) * 1000
               for kind in ("select", "feedback")}
    result = {"replicas": args.replicas, "store": backend, "durable": args.durable,
              "rps": round(len(ms) / elapsed, 1),
              "p50_ms": round(float(np.percentile(ms, 50)), 3),
              "p99_ms": round(float(np.percentile(ms, 99)), 3),
              **{f"{kind}_p99_ms": round(float(np.percentile(v, 99)), 3)
                 for kind, v in by_kind.items() if len(v)},
              "requests": len(ms), "errors": errors, "target_rate": args.rate, "warmup_s": args.warmup,
              "clients": per_process * args.client_processes,
              "client_processes": args.client_processes, "killed_at_s": killed_at,
              "acknowledged": len(acknowledged), "rewards_in_log": len(logged),
              "lost_updates": len(acknowledged - logged),
              "replica_updates": in_state,
              "replica_mismatch": sum(abs(n - len(logged)) for n in in_state),
              "replica_lag_after_s": [s["behind_s"] for s in states],
              "lost_after_restart": sum(abs(n - len(logged)) for n in after_restart)}
    print(f"{len(ms)} requests in {elapsed:.1f} s on {args.replicas} replica(s) over {backend} "
          f"({result['rps']} req/s, target {args.rate}): p50 {result['p50_ms']} ms, "
          f"p99 {result['p99_ms']} ms, {errors} errors"
          + (f", replica 0 killed at {killed_at} s" if killed_at is not None else "")
          + f"; {len(acknowledged)} rewards acknowledged, {result['lost_updates']} of them "
          f"missing from the log; replicas hold {in_state} of {len(logged)} logged rewards "
          f"({after_restart} after a restart)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
