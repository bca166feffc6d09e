"""The audience simulator, and the reward CLI end to end on simulated logs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REPO
from studio.audience import Audience, load_users
from studio.cli import app
from studio.errors import StudioError
from studio.simulate import (ATTRIBUTES, AudienceSimulator, SimulatedCreative,
                             creative_attributes)

USERS = REPO / "assets" / "demo" / "users.csv"


@pytest.fixture(scope="module")
def users():
    return load_users(USERS)


def _image(colour, size=64):
    image = np.empty((size, size, 3), np.uint8)
    image[...] = colour
    mask = np.zeros((size, size), bool)
    mask[20:44, 24:40] = True
    image[mask] = (128, 128, 128)
    return image, mask


def test_attributes_come_from_pixels_and_prompt():
    warm = creative_attributes(*_image((230, 140, 60)), "a mug on a mossy rock on a mountain trail")
    cool = creative_attributes(*_image((60, 140, 230)), "a mug in a luxury hotel lounge")
    named = dict(zip(ATTRIBUTES, warm))
    assert named["scene_outdoor"] == 1 and named["scene_luxury"] == 0
    assert dict(zip(ATTRIBUTES, cool))["scene_luxury"] == 1
    assert named["warmth"] > dict(zip(ATTRIBUTES, cool))["warmth"]


def test_simulator_is_reproducible_by_seed(users):
    pool = [SimulatedCreative(f"c{i}", f"p{i % 2}", "1:1",
                              creative_attributes(*_image((40 * i, 120, 200 - 40 * i)), "a studio"))
            for i in range(4)]
    a = AudienceSimulator(users, seed=3).simulate(pool, 2000, seed=9)
    b = AudienceSimulator(users, seed=3).simulate(pool, 2000, seed=9)
    c = AudienceSimulator(users, seed=4).simulate(pool, 2000, seed=9)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["true_ctr"], c["true_ctr"])
    assert set(a["creative_id"]) == {"c0", "c1", "c2", "c3"}


def test_warm_palettes_win_with_warm_tastes(users):
    simulator = AudienceSimulator(users, seed=0)
    warm_taste = np.flatnonzero(simulator.tastes[:, ATTRIBUTES.index("warmth")] > 0.4)
    cool_taste = np.flatnonzero(simulator.tastes[:, ATTRIBUTES.index("warmth")] < -0.1)
    assert len(warm_taste) > 100
    prompt = "a bottle on a linen cloth, soft light"
    pool = [SimulatedCreative("warm", "p", "1:1", creative_attributes(*_image((235, 150, 70)), prompt)),
            SimulatedCreative("cool", "p", "1:1", creative_attributes(*_image((70, 150, 235)), prompt))]
    for group in (warm_taste,):
        warm = simulator.true_ctr(group, pool, np.zeros(len(group), int))
        cool = simulator.true_ctr(group, pool, np.ones(len(group), int))
        assert (warm > cool).mean() > 0.95
    if len(cool_taste):
        warm = simulator.true_ctr(cool_taste, pool, np.zeros(len(cool_taste), int))
        cool = simulator.true_ctr(cool_taste, pool, np.ones(len(cool_taste), int))
        assert (warm < cool).mean() > 0.9


def test_position_and_format_effects(users):
    simulator = AudienceSimulator(users, seed=0)
    attrs = creative_attributes(*_image((120, 120, 120)), "a studio")
    pool = [SimulatedCreative("a", "p", "9:16", attrs), SimulatedCreative("b", "p", "1.91:1", attrs)]
    first = simulator.segment_ctr([0, 0], pool, [0, 1])
    assert first[0] > first[1]
    top, lower = simulator.segment_ctr([0, 0], pool, [0, 0], position=[1, 3])
    assert top > lower


def test_simulator_needs_planted_segments(users):
    with pytest.raises(StudioError, match="needs a user table with user_id and segment"):
        AudienceSimulator(users.drop(columns="segment"))
    with pytest.raises(StudioError, match="unknown segments"):
        AudienceSimulator(users.assign(segment="gamers"))
    simulator = AudienceSimulator(users)
    with pytest.raises(StudioError, match="no creatives"):
        simulator.simulate([], 10)


def test_simulate_train_score_cli(tmp_path):
    from pipelines.engines import load_engine
    from studio.pool import render_pool
    from studio.prompts import TemplateGenerator

    clusters = tmp_path / "clusters.json"
    audience = Audience(5).fit(load_users(USERS))
    audience.save(clusters)
    creatives = tmp_path / "creatives"
    records = render_pool(REPO / "assets/demo/catalog.csv", audience, TemplateGenerator(),
                          load_engine("backdrop")[0], prompts_per_cluster=1, size="96",
                          out=creatives)
    assert len(records) == 25 and len(list(creatives.glob("*/*.json"))) == 25
    runner = CliRunner()
    log = tmp_path / "log.csv"
    result = runner.invoke(app, ["simulate", "--creatives", str(creatives), "--users", str(USERS),
                                 "--impressions", "20000", "--out", str(log)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(log)
    assert len(table) == 20000 and set(table["creative_id"]) <= {r.creative_id for r in records}
    model = tmp_path / "ctr.npz"
    result = runner.invoke(app, ["reward", "train", str(log), "--creatives", str(creatives),
                                 "--clusters", str(clusters), "--users", str(USERS),
                                 "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "held-out: auc" in result.output and model.exists()
    scores_file = tmp_path / "scores.csv"
    result = runner.invoke(app, ["reward", "score", str(model), "--creatives", str(creatives),
                                 "--clusters", str(clusters), "--out", str(scores_file)])
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(scores_file)
    assert len(scores) == 25 * 5 and scores["predicted_ctr"].between(0, 1).all()
    manifests = {json.loads(p.read_text())["id"]: json.loads(p.read_text())["prompt"]
                 for p in creatives.glob("*/*.json")}
    assert set(scores["creative_id"]) == set(manifests)
    bad = runner.invoke(app, ["reward", "train", str(tmp_path / "none.csv"), "--creatives",
                              str(creatives), "--clusters", str(clusters), "--out", str(model)])
    assert bad.exit_code == 2 and "does not exist" in bad.stderr
