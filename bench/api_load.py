"""Load on the selection API: select + feedback from concurrent clients, persistence on.

Builds a demo store (demo catalog × demo audience, backdrop engine, small renders),
starts ``studio serve`` in its own process on 127.0.0.1, and drives it with ``--clients``
threads, each with a keep-alive connection, issuing select → feedback pairs at up to
``--rate`` requests/s in total for ``--seconds`` (or until ``--requests``). Afterwards it
checks, through /v1/arms, that every applied feedback is in the bandit state, then
restarts the server and checks that the state came back.

    python bench/api_load.py [--clients 8] [--rate 500] [--seconds 20]

The last line is JSON with p50_ms, p99_ms, rps, requests and lost_updates.
Goal on this machine: p99 < 10 ms at 500 req/s, zero lost updates.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KEY = "bench-key"


def build_store(folder: Path) -> Path:
    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users
    from studio.learning.batch import BatchSettings, run_batch

    clusters = folder / "clusters.json"
    Audience(5).fit(load_users(ROOT / "assets/demo/users.csv")).save(clusters)
    run_batch(ROOT / "assets/demo/catalog.csv", clusters, folder / "store",
              BatchSettings(per_cluster=4, size="128", engine="backdrop", watermark=False),
              echo=lambda m: None)
    return folder / "store"


def start_server(store: Path, port: int) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "STUDIO_API_KEY": KEY, "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "studio", "serve", "--store", str(store),
                                "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise SystemExit(f"server failed: {process.stderr.read().decode()[-2000:]}")
    raise SystemExit("server did not start")


class KeepAlive:
    """A persistent HTTP/1.1 connection posting JSON with the API key."""

    def __init__(self, port: int):
        import http.client

        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def post(self, path: str, payload: dict) -> tuple[int, dict]:
        self.connection.request("POST", path, json.dumps(payload), self.headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.connection.close()


def server_percentiles(base: str) -> dict:
    """p50/p99 of the server's own request latency, from its Prometheus histogram
    (bucket upper bounds: coarse, but free of the load generator's overhead)."""
    import httpx

    buckets: dict[float, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
        if line.startswith("studio_request_seconds_bucket") and 'path="/v1/' in line \
                and ('/select"' in line or '/feedback"' in line):
            bound = line.split('le="')[1].split('"')[0]
            buckets[float(bound)] = buckets.get(float(bound), 0.0) + float(line.rsplit(" ", 1)[1])
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    result = {}
    for name, q in (("server_p50_ms", 0.5), ("server_p99_ms", 0.99)):
        le = next(b for b in bounds if buckets[b] >= q * total)
        result[name] = le * 1000 if le != float("inf") else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500.0, help="target requests/s in total")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=20_000, help="upper bound")
    args = parser.parse_args()
    import httpx
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        store = build_store(Path(folder))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = start_server(store, port)
        base = f"http://127.0.0.1:{port}"
        latencies: list[float] = []
        applied = errors = 0
        lock = threading.Lock()
        products = ["mug", "sneaker", "bottle", "handbag", "perfume"]
        interval = args.clients / args.rate  # seconds between one client's requests
        stop_at = time.perf_counter() + args.seconds
        budget = [args.requests]

        def client(index: int) -> None:
            nonlocal applied, errors
            rng = np.random.default_rng(index)
            mine, local_applied, local_errors = [], 0, 0
            # The standard library's keep-alive connection: the lightest client, so that
            # the load generator (on the same cores) perturbs the server as little as it can.
            with KeepAlive(port) as http:
                next_at = time.perf_counter() + rng.random() * interval
                while time.perf_counter() < stop_at:
                    with lock:
                        if budget[0] <= 0:
                            break
                        budget[0] -= 2
                    for kind in ("select", "feedback"):
                        time.sleep(max(0.0, next_at - time.perf_counter()))
                        next_at += interval
                        started = time.perf_counter()
                        if kind == "select":
                            code, body = http.post("/v1/select", {
                                "product_id": products[int(rng.integers(5))],
                                "cluster_id": int(rng.integers(5))})
                            event = body.get("event_id") if code == 200 else None
                        else:
                            code, body = http.post("/v1/feedback", {
                                "event_id": event, "reward": float(rng.random() < 0.1)})
                            if code == 200 and body["status"] == "applied":
                                local_applied += 1
                        mine.append(time.perf_counter() - started)
                        if code != 200:
                            local_errors += 1
                            break
            with lock:
                latencies.extend(mine)
                applied += local_applied
                errors += local_errors

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        server_side = server_percentiles(base)
        arms = httpx.get(f"{base}/v1/arms", timeout=30).json()["arms"]
        in_state = sum(a["updates"] for a in arms)
        server.terminate()
        server.wait(timeout=30)
        server = start_server(store, port)
        after_restart = sum(a["updates"] for a in httpx.get(f"{base}/v1/arms", timeout=30).json()["arms"])
        server.terminate()
        server.wait(timeout=30)

    ms = np.array(latencies) * 1000
    result = {"p50_ms": round(float(np.percentile(ms, 50)), 3),
              "p99_ms": round(float(np.percentile(ms, 99)), 3),
              "rps": round(len(ms) / elapsed, 1), "requests": len(ms), "errors": errors,
              "clients": args.clients, "target_rate": args.rate,
              "feedback_applied": applied, "updates_in_state": in_state,
              "lost_updates": applied - in_state,
              "lost_after_restart": applied - after_restart, **server_side}
    print(f"{len(ms)} requests in {elapsed:.1f} s ({result['rps']} req/s, target {args.rate}): "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {errors} errors; "
          f"{applied} feedbacks applied, {in_state} in the bandit state, "
          f"{after_restart} after a restart; server-side p50 <= {server_side['server_p50_ms']} ms, "
          f"p99 <= {server_side['server_p99_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
