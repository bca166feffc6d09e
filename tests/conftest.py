"""Shared test set-up: offline, one torch thread, the tiny model built once per run."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

# Before anything imports huggingface_hub (it reads these at import time).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Models and hub caches of this run live in a temporary folder."""
    root = tmp_path_factory.mktemp("cache")
    os.environ["STUDIO_CACHE"] = str(root / "studio")
    os.environ["HF_HOME"] = str(root / "hf")
    import torch

    torch.set_num_threads(1)
    yield root


@pytest.fixture(scope="session")
def tiny_engine():
    from pipelines.engines import load_engine

    engine, notice = load_engine("tiny")
    assert notice is None
    return engine


@pytest.fixture(scope="session")
def tiny_controlnet_engine():
    from pipelines.engines import load_engine

    return load_engine("tiny", controlnet=True)[0]


@pytest.fixture(scope="session")
def backdrop_engine():
    from pipelines.engines import load_engine

    return load_engine("backdrop")[0]


def draw_cutout(width: int = 64, height: int = 64, seed: int = 0) -> np.ndarray:
    """An RGBA cut-out: a textured, soft-edged ellipse in the middle of the canvas."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    d = ((xx - width / 2) / (width * 0.28)) ** 2 + ((yy - height / 2) / (height * 0.35)) ** 2
    alpha = np.clip((1.0 - d) * 6.0, 0, 1)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 0] = 180 + rng.integers(0, 60, (height, width))
    rgba[..., 1] = (xx * 3) % 255
    rgba[..., 2] = 40
    rgba[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return rgba


def draw_photo(width: int = 96, height: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """An RGB product photo on a plain light backdrop, and its true product mask."""
    yy, xx = np.mgrid[:height, :width]
    truth = (np.abs(xx - width / 2) < width * 0.2) & (np.abs(yy - height / 2) < height * 0.3)
    rgb = np.full((height, width, 3), 235, np.uint8)
    rgb[truth] = (30, 90, 160)
    rgb[truth & (yy < height / 2)] = (200, 60, 40)
    return rgb, truth


@pytest.fixture
def cutout_png(tmp_path) -> Path:
    path = tmp_path / "cutout.png"
    Image.fromarray(draw_cutout(), "RGBA").save(path)
    return path


@pytest.fixture
def photo_png(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(draw_photo()[0]).save(path)
    return path


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    """A served store: the demo catalog and audience, two prompts per cluster, 64-px
    backdrop renders (shared by the API tests; copy it with ``fresh_store`` to write)."""
    from studio.inputs.audience import Audience
    from studio.inputs.tables import load_users
    from studio.learning.batch import BatchSettings, run_batch

    root = tmp_path_factory.mktemp("served")
    clusters = root / "clusters.json"
    Audience(5).fit(load_users(REPO / "assets" / "demo" / "users.csv")).save(clusters)
    run_batch(REPO / "assets/demo/catalog.csv", clusters, root / "store",
              BatchSettings(per_cluster=2, size="64", engine="backdrop", watermark=False),
              echo=lambda m: None)
    return root / "store"


@pytest.fixture
def fresh_store(store_dir, tmp_path):
    """A copy of ``store_dir`` without events, vacuumed (no free pages: a size cap bites
    at once), for tests that count updates or break the disk."""
    import shutil

    from studio.store import Store

    target = tmp_path / "store"
    shutil.copytree(store_dir, target)
    store = Store(target)
    store.clear_campaign()
    store.connection().execute("VACUUM")
    store.close()
    return target


@pytest.fixture(params=["sqlite", "postgresql"])
def served_store(request, fresh_store, tmp_path):
    """``fresh_store`` on each backend: the folder itself, or its copy in a new
    PostgreSQL database (``studio store copy``'s code) whose DSN is returned."""
    if request.param == "sqlite":
        return fresh_store
    from studio.store import Store
    from studio.store.transfer import copy_store

    dsn = request.getfixturevalue("postgres_dsn")
    copy_store(Store(fresh_store), Store(dsn, folder=tmp_path / "pg-files", create=True))
    return dsn


@contextmanager
def running(application):
    """An ASGI app under a real uvicorn server in a thread, on a free port; yields
    (base URL, port) once ``/healthz`` answers, stops the server after."""
    import httpx
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield base, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def require(component: str, available: bool, reason: str) -> None:
    """Skip a test whose system component (e.g. ``chromium``) is missing — or fail it
    when ``STUDIO_REQUIRE`` names the component (``.ci/run`` sets it: in CI a missing
    browser or database is a failure, not a silent skip)."""
    if available:
        return
    required = {c.strip() for c in os.environ.get("STUDIO_REQUIRE", "").split(",") if c.strip()}
    if component in required:
        pytest.fail(f"{component} is required here (STUDIO_REQUIRE) but missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster for this run (``studio.store.throwaway``); yields
    its admin DSN."""
    from studio.errors import StudioError
    from studio.store.throwaway import throwaway_cluster, unavailable

    reason = unavailable()
    require("postgres", reason is None, reason or "")
    try:
        cluster = throwaway_cluster()
        dsn = cluster.__enter__()
    except StudioError as exc:
        require("postgres", False, str(exc))
    try:
        yield dsn
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture
def postgres_dsn(postgres_server):
    """The DSN of a new, empty database of the run's PostgreSQL cluster."""
    from studio.store.throwaway import new_database

    return new_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """Where a new store lives, once per backend: ``(location, folder)`` — a folder for
    SQLite (``folder`` None), or a fresh PostgreSQL database's DSN with a files folder.
    ``Store(location, folder=folder, create=True)`` opens it."""
    if request.param == "sqlite":
        return str(tmp_path / "store"), None
    return request.getfixturevalue("postgres_dsn"), str(tmp_path / "files")


def python_env(**extra: str) -> dict[str, str]:
    """Environment for CLI subprocesses: offline, this run's caches, the repo on the path."""
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **extra})
    env.pop("STUDIO_PROGRESS", None)
    return env


PYTHON = sys.executable
