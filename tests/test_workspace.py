"""The UI's workspace: mask editing, approvals, export, steps out of order, and the
simulated campaign (priors from the world's past, the policies, continued calls)."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO, draw_photo
from studio.errors import StudioError
from studio.simulation.session import CAMPAIGN_LENGTH, campaign_window
from studio.ui.workspace import SHOWN_POLICIES, Workspace

USERS = REPO / "assets" / "demo" / "users.csv"


def _rendered(root, users=None, k=5) -> Workspace:
    """A workspace with the mug rendered small: two prompts per cluster, one format."""
    ws = Workspace(root)
    ws.load_product(str(REPO / "assets/products/mug.png"), category="kitchenware")
    ws.fit_audience(users, k=k)
    ws.generate_prompts(n=2)
    ws.render(engine="backdrop", size="64")
    return ws


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A demo-audience workspace after two "Simulate" calls (300, then 500 impressions),
    with the first call's tables kept."""
    ws = _rendered(tmp_path_factory.mktemp("campaign"))
    first = ws.simulate(300)
    first_arms = ws.arm_table()
    ws.simulate(500)
    return ws, first, first_arms


def test_steps_out_of_order_say_what_to_do(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(StudioError, match="upload a product photo first"):
        ws.load_product(None)
    with pytest.raises(StudioError, match="load a product first"):
        ws.generate_prompts()
    with pytest.raises(StudioError, match="render creatives first"):
        ws.export()
    plain = tmp_path / "plain.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(plain)
    with pytest.raises(ValueError, match="no product"):  # pipelines.InputError
        ws.load_product(str(plain))  # no mask can be found: a readable message


def test_brushed_mask_replaces_the_product_mask(tmp_path):
    ws = Workspace(tmp_path)
    path = tmp_path / "photo.png"
    rgb, truth = draw_photo(96, 96)
    Image.fromarray(rgb).save(path)
    ws.load_product(str(path))
    brushed = np.zeros((96, 96, 4), np.uint8)
    brushed[10:50, 10:50] = 255
    preview = ws.set_mask(brushed)
    assert ws.product.mask_source == "edited"
    assert np.array_equal(ws.product.mask, brushed[..., 0] > 127)
    assert np.array_equal(ws.product.rgb, rgb) and preview.shape == (96, 96, 3)
    with pytest.raises(StudioError, match="the mask is 32x32"):
        ws.set_mask(np.zeros((32, 32), np.uint8))


def test_only_approved_creatives_are_exported(tmp_path):
    ws = Workspace(tmp_path)
    ws.load_product(str(REPO / "assets/products/bottle.png"), category="beverage")
    ws.fit_audience(k=2)
    prompts = ws.generate_prompts(n=1)
    edited = prompts.to_dict("records")
    edited[0]["prompt"] = "a bottle on a white marble table, soft morning light"
    ws.edit_prompts(edited)
    creatives = ws.render(engine="backdrop", size="96")
    assert len(creatives) == 2 and creatives[0]["manifest"]["prompt"].startswith("a bottle on a white")
    ws.approve(creatives[0]["id"], False)
    with zipfile.ZipFile(ws.export()) as archive:
        names = archive.namelist()
        table = archive.read("creatives.csv").decode()
    assert f"{creatives[1]['id']}.png" in names and f"{creatives[0]['id']}.png" not in names
    assert creatives[1]["id"] in table and creatives[0]["id"] not in table
    with pytest.raises(StudioError, match="unknown creative"):
        ws.approve("nope", True)
    with pytest.raises(StudioError, match="cluster must be one of"):
        ws.edit_prompts([{"cluster": 9, "prompt": "x"}])


def test_demo_audience_priors_come_from_the_worlds_past(campaign):
    ws = campaign[0]
    assert "simulated past" in ws.scoring and ws.world is not None and ws.world.seed == 0
    creatives = ws.creatives()
    assert len(creatives) == 10 and all(0 < c["predicted_ctr"] < 0.2 for c in creatives)
    arms = ws._store().query("SELECT prior_ctr, prior_impressions FROM arms WHERE active = 1")
    assert len(arms) == 10
    assert all(0 < a["prior_ctr"] < 0.2 and a["prior_impressions"] >= 10 for a in arms)
    assert len({a["prior_impressions"] for a in arms}) == 1  # one calibrated strength


def test_simulate_compares_policies_in_the_world(campaign):
    ws, first, first_arms = campaign
    assert list(first["policy"]) == list(SHOWN_POLICIES)
    assert all(re.fullmatch(r"\d+\.\d\d%", v) for v in first["true CTR"])
    assert first.set_index("policy").loc["greedy_prior", "vs greedy-on-prior"] == "+0.0%"
    value = ws.campaign_arrays("value")
    ctr = {p: v.mean() for p, v in value.items()}
    assert all(len(v) == 800 for v in value.values())
    assert all(ctr["oracle_cluster"] >= ctr[p] for p in SHOWN_POLICIES), ctr
    assert all(0.003 <= c <= 0.05 for c in ctr.values()), ctr
    regret = ws.campaign_arrays("regret")
    assert np.allclose(regret["random"], value["oracle_cluster"] - value["random"])
    assert first_arms["pulls"].sum() == 300


def test_service_learns_in_the_store_and_calls_continue(campaign):
    ws = campaign[0]
    store = ws._store()
    arms = ws.arm_table()
    assert ws.impressions_served() == 800 and arms["pulls"].sum() == 800
    assert store.counts()["events"] == store.counts()["rewards"] == 800
    clicks = ws.campaign_arrays("clicks")["service"]
    assert store.query("SELECT SUM(reward) FROM rewards")[0][0] == clicks.sum()
    table = ws.policy_table().set_index("policy")
    assert table.loc["service", "clicks"] == clicks.sum()
    first, second = ws.campaign  # a new stream per call, the same policies on it
    assert not np.array_equal(first.value["random"][:300], second.value["random"][:300])
    curves = ws.ctr_curves()
    assert set(curves["policy"]) == set(SHOWN_POLICIES) and curves["impressions"].max() == 800
    last = curves[curves["impressions"] == 800].set_index("policy")["true CTR %"]
    assert np.isclose(last["service"], 100 * ws.campaign_arrays()["service"].mean())
    assert re.fullmatch(r"\d+\.\d\d%", arms["mean"][0]) and arms["CTR"].notna().any()


def test_campaign_time_moves_forward_and_stops_at_the_end():
    assert campaign_window(0, 500) == (0.0, 500 / CAMPAIGN_LENGTH)
    assert campaign_window(500, 500) == (500 / CAMPAIGN_LENGTH, 1000 / CAMPAIGN_LENGTH)
    end = CAMPAIGN_LENGTH - 10
    assert campaign_window(end, 100) == (end / CAMPAIGN_LENGTH, 1.0)
    assert campaign_window(2 * CAMPAIGN_LENGTH, 100) == (1.0, 1.0)


def test_bad_simulate_input_writes_nothing(campaign, tmp_path):
    ws = campaign[0]
    with pytest.raises(StudioError, match="at least one impression"):
        ws.simulate(0)
    assert ws.impressions_served() == 800 and ws._store().counts()["events"] == 800
    fresh = Workspace(tmp_path)
    with pytest.raises(StudioError, match="fit the audience first"):
        fresh.simulate(10)
    fresh.fit_audience(k=2)
    with pytest.raises(StudioError, match="render creatives first"):
        fresh.simulate(10)


def test_own_audience_has_no_world_and_says_so(tmp_path):
    own = tmp_path / "users.csv"
    pd.read_csv(USERS).drop(columns="segment").head(400).to_csv(own, index=False)
    ws = _rendered(tmp_path / "ws", own, k=2)
    assert ws.scoring.startswith("not scored") and "no planted segments" in ws.scoring
    assert ws.world is None and all(c["predicted_ctr"] is None for c in ws.creatives())
    assert all(a["prior_ctr"] is None for a in ws._store().query("SELECT prior_ctr FROM arms"))
    with pytest.raises(StudioError, match="cannot simulate: an audience of your own"):
        ws.simulate(100)
    assert ws._store().counts()["events"] == 0 and ws.campaign == []
