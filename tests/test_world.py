"""The hidden-truth world: realistic CTRs, appeal no feature predicts, drift, seeds, bad
input, and the boundary that keeps the truth away from the studio's learners."""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import REPO
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.cli import app
from studio.errors import StudioError
from studio.simulation.world import CONCEPTS, FORMATS, World, WorldConfig, concept_vector

USERS = REPO / "assets" / "demo" / "users.csv"


@pytest.fixture(scope="module")
def users():
    return load_users(USERS)


def _creatives(n: int, seed: int = 0):
    """n creatives with template-vocabulary prompts and varied colour images."""
    rng = np.random.default_rng(seed)
    vocab = yaml.safe_load((REPO / "assets/prompts/common.yaml").read_text())
    slots = [k for k, v in vocab.items() if isinstance(v, list)]
    prompts, images = [], []
    for _ in range(n):
        words = [rng.choice(vocab[s])["text"] if isinstance(vocab[s][0], dict) else rng.choice(vocab[s])
                 for s in slots]
        prompts.append("a mug " + ", ".join(words))
        base = rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, 64)[:, None, None] * rng.integers(-80, 80, 3)
        images.append(np.clip(base + ramp + np.zeros((64, 64, 3)), 0, 255).astype(np.uint8))
    return [f"c{i}" for i in range(n)], prompts, images


@pytest.fixture(scope="module")
def pool(users, tmp_path_factory):
    """The studio's own pools: every demo product x cluster x 6 template prompts (backdrop
    renders), with the audience that wrote them."""
    from pipelines.engines import load_engine
    from studio.creatives.pool import render_pool
    from studio.prompts import TemplateGenerator

    audience = Audience(5).fit(users)
    folder = tmp_path_factory.mktemp("pool")
    records = render_pool(REPO / "assets/demo/catalog.csv", audience, TemplateGenerator(),
                          load_engine("backdrop")[0], prompts_per_cluster=6, size="64", out=folder)
    return audience, folder, records


def test_ctrs_are_realistic_and_the_best_creative_of_a_pool_is_10_to_50_percent_better(users, pool):
    audience, _, records = pool
    ids = [r.creative_id for r in records]
    pools = np.arange(len(records)) // 6  # render order: product, cluster, six prompts
    cluster_of_pool = {p: p % 5 for p in set(pools)}
    members = audience.assign(users)
    medians = []
    for seed in range(3):
        world = World(seed)
        seen = world.read(ids, [r.prompt for r in records], [r.image for r in records],
                          [r.format for r in records])
        matrix = world.population(users).ctr_matrix(seen)
        assert 0.005 <= matrix.mean() <= 0.03  # display and social ads: 0.5-3 %
        lifts = []
        for name, cluster in cluster_of_pool.items():
            means = matrix[members == cluster][:, pools == name].mean(axis=0)
            lifts.append(means.max() / means.mean() - 1)
        assert len(lifts) == 25
        medians.append(np.median(lifts))
    assert 0.10 <= np.median(medians) <= 0.50


def test_positions_and_formats_move_ctr(users):
    world = World(1, WorldConfig(format_sd=0.2))
    ids, prompts, images = _creatives(2)
    seen = world.read(ids * 2, prompts * 2, images * 2, ["1:1", "1:1", "9:16", "9:16"])
    population = world.population(users)
    top = population.ctr(np.arange(500), seen, np.zeros(500, int), position=1)
    third = population.ctr(np.arange(500), seen, np.zeros(500, int), position=3)
    assert (top > third).all()
    square = population.ctr(np.arange(500), seen, np.zeros(500, int))
    tall = population.ctr(np.arange(500), seen, np.full(500, 2))
    effect = world.format_effects_["9:16"] - world.format_effects_["1:1"]
    assert np.sign(np.log(tall / (1 - tall)) - np.log(square / (1 - square))).mean() == \
        pytest.approx(np.sign(effect))


def test_latent_appeal_is_not_predictable_from_the_studios_image_features():
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import cross_val_score

    from reward import image_features

    ids, prompts, images = _creatives(300, seed=4)
    mask = np.zeros((64, 64), bool)
    mask[24:40, 24:40] = True
    features = np.array([image_features(im, mask) for im in images])
    appeal = World(2).read(ids, prompts, images, ["1:1"] * 300).appeal
    r2 = cross_val_score(LinearRegression(), features, appeal, cv=5, scoring="r2").mean()
    assert r2 < 0.05  # nothing the studio measures of the pixels predicts it


def test_the_same_seed_gives_the_same_world_and_drift_moves_tastes(users):
    ids, prompts, images = _creatives(5)
    a, b, c = World(3), World(3), World(4)
    matrix = lambda w, period="campaign", t=0.0: w.population(users, period).ctr_matrix(  # noqa: E731
        w.read(ids, prompts, images, ["1:1"] * 5), t=t)
    assert np.array_equal(matrix(a), matrix(b))
    assert not np.allclose(matrix(a), matrix(c))
    assert not np.allclose(matrix(a, "past"), matrix(a))  # drifted past
    assert not np.allclose(matrix(a, t=1.0), matrix(a, t=0.0))  # drift within the campaign
    stable = World(3, WorldConfig().without_drift())
    assert np.array_equal(stable.past_, stable.start_)
    assert np.allclose(matrix(stable, t=1.0), matrix(stable, t=0.0))


def test_describe_names_every_parameter():
    text = World(5).describe()
    for name in WorldConfig.__dataclass_fields__:
        assert f"{name} = " in text
    assert "World seed 5" in text and "outdoor: likes" in text


def test_concepts_come_from_the_worlds_own_lexicon():
    present = concept_vector("a mug on a mossy rock by the river at dawn")
    named = dict(zip(CONCEPTS, present))
    assert named["greenery"] == named["water"] == named["mountain"] == named["warm_light"] == 1
    assert named["opulence"] == 0
    assert concept_vector("rockstar").sum() == 0  # whole words only


def test_bad_input_is_refused(users):
    world = World(0)
    with pytest.raises(StudioError, match="planted segment"):
        world.population(users.drop(columns="segment"))
    with pytest.raises(StudioError, match="unknown segment 'gamers'"):
        world.population(users.assign(segment="gamers"))
    with pytest.raises(StudioError, match="period"):
        world.population(users, "future")
    ids, prompts, images = _creatives(1)
    with pytest.raises(StudioError, match="unknown format '2:1'"):
        world.read(ids, prompts, images, ["2:1"])
    with pytest.raises(StudioError, match="differ in length"):
        world.read(ids, prompts, images, ["1:1", "1:1"])
    with pytest.raises(StudioError, match="base_ctr"):
        WorldConfig(base_ctr=0.5)
    with pytest.raises(StudioError, match="past_drift"):
        WorldConfig(past_drift=-1.0)
    with pytest.raises(StudioError, match="slots"):
        WorldConfig(slots=0)
    assert set(FORMATS) >= {"1:1", "4:5", "9:16", "1.91:1"}


def _imports(path) -> set[str]:
    """Every module a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_nothing_outside_the_simulation_package_imports_the_world():
    """The truth stays hidden: no module outside ``studio/simulation`` imports the world,
    and the libraries, serving, scoring, batch and prompt writing import nothing of the
    simulation at all."""
    sources = [p for p in REPO.glob("*.py")] + [
        p for folder in ("studio", "reward", "bandit", "pipelines") for p in (REPO / folder).rglob("*.py")]
    learners = ("reward/", "bandit/", "pipelines/", "studio/serving/", "studio/learning/",
                "studio/prompts/", "studio/inputs/")
    for path in sources:
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("studio/simulation/"):
            continue
        modules = _imports(path)
        assert not any(m.startswith("studio.simulation.world") for m in modules), relative
        if relative.startswith(learners):
            assert not any(m.startswith("studio.simulation") for m in modules), relative


def test_simulate_cli_writes_a_world_log_that_trains_a_reward_model(tmp_path, users, pool):
    audience, creatives, records = pool
    clusters = tmp_path / "clusters.json"
    audience.save(clusters)
    runner = CliRunner()
    log = tmp_path / "log.csv"
    result = runner.invoke(app, ["simulate", "--creatives", str(creatives), "--users", str(USERS),
                                 "--impressions", "40000", "--out", str(log), "--period", "past"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(log)
    assert len(table) == 40000 and set(table["creative_id"]) <= {r.creative_id for r in records}
    assert "true_ctr" not in table.columns  # the log carries no truth
    assert 0.005 <= table["click"].mean() <= 0.03
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
    assert len(scores) == len(records) * 5 and scores["predicted_ctr"].between(0, 1).all()
    manifests = {json.loads(p.read_text())["id"] for p in creatives.glob("*/*.json")}
    assert set(scores["creative_id"]) == manifests
    bad = runner.invoke(app, ["simulate", "--creatives", str(creatives), "--users", str(USERS),
                              "--out", str(tmp_path / "x.csv"), "--period", "future"])
    assert bad.exit_code == 2 and "period" in bad.stderr and not (tmp_path / "x.csv").exists()
    own = tmp_path / "own.csv"
    users.drop(columns="segment").to_csv(own, index=False)
    bad = runner.invoke(app, ["simulate", "--creatives", str(creatives), "--users", str(own),
                              "--out", str(tmp_path / "y.csv")])
    assert bad.exit_code == 2 and "planted segment" in bad.stderr
