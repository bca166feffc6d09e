"""The UI's workspace: mask editing, approvals, export, steps out of order, stale results,
prompt edits, progress, variations, and the simulated campaign (priors from the world's
past, the policies, continued calls)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO, draw_photo
from studio.errors import StudioError
from studio.simulation.session import CAMPAIGN_LENGTH, campaign_window
from studio.ui.images import cutout_preview, mask_from_editor
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
    # The editor: the photo as background, the mask as a paintable layer read back as is.
    editor = ws.editor()
    assert np.array_equal(editor["background"], rgb)
    assert np.array_equal(mask_from_editor(editor), ws.product.mask)
    with pytest.raises(StudioError, match="paint the mask first"):
        mask_from_editor({"background": rgb, "layers": [], "composite": rgb})


def test_mask_preview_is_a_cutout_not_a_tint():
    rgb, truth = draw_photo(96, 96)
    preview = cutout_preview(rgb, truth)
    assert np.array_equal(preview[truth], rgb[truth])  # the kept pixels, untouched
    outside = preview[~truth]
    assert set(np.unique(outside[:, 0])) <= {0, 236, 198}  # checkerboard (and the outline)


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
    assert [c["state"] for c in creatives] == ["pending", "pending"]  # nothing pre-approved
    with pytest.raises(StudioError, match=r"no creative is approved yet \(0 of 2: 2 pending"):
        ws.export()
    ws.set_state(creatives[0]["id"], "rejected")
    ws.set_state(creatives[1]["id"], "approved")
    path, summary = ws.export()
    assert summary.startswith("exported 1 of 2 creatives") and "1 rejected" in summary
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        table = archive.read("creatives.csv").decode()
        manifest = json.loads(archive.read(f"{creatives[1]['id']}.json"))
    assert f"{creatives[1]['id']}.png" in names and f"{creatives[0]['id']}.png" not in names
    assert creatives[1]["id"] in table and creatives[0]["id"] not in table
    assert manifest["image"] in names and manifest["mask"] in names  # every file it names
    assert re.search(r",\d+\.\d\d%,", table)  # a readable CTR, not 0.0312746…
    with pytest.raises(StudioError, match="unknown creative"):
        ws.set_state("nope", "approved")
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


def test_own_audience_is_scored_but_has_no_world(tmp_path):
    own = tmp_path / "users.csv"
    pd.read_csv(USERS).drop(columns="segment").head(400).to_csv(own, index=False)
    ws = _rendered(tmp_path / "ws", own, k=2)
    assert ws.own_audience() and "demo reward model" in ws.scoring
    assert "your clusters' centroids" in ws.scoring
    assert ws.world is None and all(0 < c["predicted_ctr"] < 0.2 for c in ws.creatives())
    assert all(a["prior_ctr"] is not None for a in ws._store().query("SELECT prior_ctr FROM arms"))
    assert "Simulate is off" in ws.notes()["campaign"]  # said before anyone clicks
    with pytest.raises(StudioError, match="cannot simulate: an audience of your own"):
        ws.simulate(100)
    assert ws._store().counts()["events"] == 0 and ws.campaign == []
    assert all(c.name and c.name in set(ws.cluster_table()["name"]) for c in ws.audience.clusters_)


def test_own_audience_with_other_columns_is_scored_on_the_demo_population(tmp_path):
    own = tmp_path / "shop.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_id": [f"u{i}" for i in range(200)],
                  "basket_eur": rng.gamma(2, 30, 200).round(2),
                  "visits": rng.integers(1, 20, 200)}).to_csv(own, index=False)
    ws = _rendered(tmp_path / "ws", own, k=2)
    assert "averaged over the demo population" in ws.scoring
    assert all(0 < c["predicted_ctr"] < 0.2 for c in ws.creatives())


def test_refitting_makes_prompts_and_creatives_stale(tmp_path):
    ws = _rendered(tmp_path, k=3)
    old = ws.prompts.copy()
    assert ws.stale == {} and all(v == "" for k, v in ws.notes().items() if k != "campaign")
    ws.fit_audience(k=2)
    assert set(ws.stale) == {"prompts", "creatives"}
    notes = ws.notes()
    assert "re-fitted" in notes["prompts"] and "re-fitted" in notes["render"]
    with pytest.raises(StudioError, match="prompts are out of date .*re-fitted"):
        ws.edit_prompts(old[old["cluster"] < 2])  # the old clusters' prompts
    with pytest.raises(StudioError, match="prompts are out of date"):
        ws.render(engine="backdrop", size="64")
    ws.generate_prompts(n=1)
    assert "prompts" not in ws.stale and "creatives" in ws.stale
    ws.render(engine="backdrop", size="64")
    assert ws.stale == {}
    ws.set_mask(ws.product.mask)  # a new mask: the creatives, not the prompts
    assert set(ws.stale) == {"creatives"} and "mask" in ws.notes()["export"]


def test_regenerating_prompts_keeps_edited_rows_unless_asked(tmp_path):
    ws = Workspace(tmp_path)
    ws.load_product(str(REPO / "assets/products/mug.png"), category="kitchenware")
    ws.fit_audience(k=2)
    table = ws.generate_prompts(n=2).to_dict("records")
    table[1]["prompt"] = "a mug on a picnic blanket, golden hour"
    again = ws.generate_prompts(n=2, current=table)
    assert "a mug on a picnic blanket, golden hour" in set(again["prompt"])
    assert len(again) == 4 and (again["source"] == "edited").sum() == 1
    assert list(again["cluster"]) == [0, 0, 1, 1]  # the edit stays in its cluster
    fresh = ws.generate_prompts(n=2, current=again, replace_all=True)
    assert "a mug on a picnic blanket, golden hour" not in set(fresh["prompt"])


def test_brand_rules_say_what_they_changed(tmp_path):
    ws = Workspace(tmp_path)
    ws.load_product(str(REPO / "assets/products/mug.png"), category="kitchenware")
    ws.fit_audience(k=2)
    rules = tmp_path / "brand.yaml"
    rules.write_text("banned_words: [cheap]\nrequired_words: [handcrafted]\n")
    table = ws.generate_prompts(n=1, guidelines_path=str(rules)).to_dict("records")
    table[0]["prompt"] = "a cheap mug on a kitchen table"
    changes = ws.edit_prompts(table)
    assert len(changes) == 1 and changes[0].startswith("row 1: removed 'cheap'")
    assert "added" in changes[0] and "handcrafted" in changes[0]
    assert "cheap" not in ws.prompts.loc[0, "prompt"]  # the table shows the enforced text


def test_render_reports_progress_through_every_phase(tmp_path):
    ws = Workspace(tmp_path)
    ws.load_product(str(REPO / "assets/products/mug.png"), category="kitchenware")
    ws.fit_audience(k=2)
    ws.generate_prompts(n=1)
    heard = []
    ws.render(engine="backdrop", size="64", presets=("feed-1:1", "story-9:16"),
              progress=lambda fraction, desc: heard.append((fraction, desc)))
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    descs = [d for _, d in heard]
    assert {f"rendering creative {i} of 4" for i in range(1, 5)} <= set(descs)
    assert any("training the reward model" in d for d in descs)
    assert any(d.startswith("scoring") for d in descs)
    training = next(f for f, d in heard if "training" in d)
    assert training <= 0.7  # the long phase is not announced at 95 %


def test_presets_render_at_their_exact_size_and_place_the_product(tmp_path):
    ws = Workspace(tmp_path)
    ws.load_product(str(REPO / "assets/products/mug.png"), category="kitchenware")
    ws.fit_audience(k=2)
    ws.generate_prompts(n=1)
    creatives = ws.render(engine="backdrop", area=0.2, anchor="top")  # default preset
    manifest = creatives[0]["manifest"]
    assert manifest["size"] == [1080, 1350] and manifest["preset"]["name"] == "feed-4:5"
    assert manifest["placement"]["area"] == 0.2 and manifest["placement"]["anchor"] == "top"
    assert Image.open(creatives[0]["path"]).size == (1080, 1350)


def test_variations_regenerate_and_compare(tmp_path):
    ws = _rendered(tmp_path, k=2)
    first = ws.creatives()[0]
    new = ws.vary(first["id"], 2)
    shown = {c["id"]: c for c in ws.creatives()}
    assert len(shown) == 6 and all(shown[i]["state"] == "pending" for i in new)
    assert {shown[i]["manifest"]["prompt"] for i in new} == {first["manifest"]["prompt"]}
    assert len({shown[i]["seed"] for i in new} | {first["seed"]}) == 3
    assert all(shown[i]["predicted_ctr"] is not None for i in new)
    (again,) = ws.vary(first["id"], replace=True)
    ids = [c["id"] for c in ws.creatives()]
    assert first["id"] not in ids and again in ids and len(ids) == 6
    table = ws.compare(new[0], again).set_index("")
    assert table.loc["prompt", "A"] == table.loc["prompt", "B"]
    assert table.loc["seed", "A"] != table.loc["seed", "B"]
    with pytest.raises(StudioError, match="unknown creative"):
        ws.vary(first["id"], 1)  # set aside: no longer one of the creatives


def test_with_studio_signing_the_ui_signs_and_the_export_says_so(tmp_path, monkeypatch):
    """STUDIO_SIGNING set for the UI's process: every creative it renders is signed (C2PA,
    trusted with the folder's CA), and the export CSV's ai_generated column says so."""
    import csv
    import io

    from studio.creatives.credentials import init_keys, verify

    keys = Path(init_keys(tmp_path / "keys")["folder"])
    monkeypatch.setenv("STUDIO_SIGNING", str(keys))
    ws = Workspace(tmp_path / "ws")
    ws.load_product(str(REPO / "assets/products/bottle.png"), category="beverage")
    ws.fit_audience(k=2)
    ws.generate_prompts(n=1, copy=False)
    creatives = ws.render(engine="backdrop", size="96", copy=False)
    ca = (keys / "ca.pem").read_bytes()
    assert all(verify(Path(c["path"]).read_bytes(), trust_anchors=ca)["state"] == "trusted"
               for c in creatives)
    ws.approve_all()
    path, _ = ws.export()
    with zipfile.ZipFile(path) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("creatives.csv").decode())))
        assert all(verify(archive.read(c["manifest"]["image"]), trust_anchors=ca)["state"]
                   == "trusted" for c in creatives)
    assert {r["ai_generated"] for r in rows} == {
        "yes: compositeWithTrainedAlgorithmicMedia (XMP), C2PA signed"}


def test_the_learning_loop_evolves_the_pool_from_the_campaign_clicks(tmp_path):
    ws = _rendered(tmp_path / "loop")
    with pytest.raises(StudioError, match="simulate some impressions first"):
        ws.evolve_pool()
    ws.simulate(3000)
    before = ws._store().query("SELECT COUNT(*) FROM arms WHERE active = 1")[0][0]
    with pytest.raises(StudioError, match="candidates must be"):
        ws.evolve_pool(candidates=0)
    assert ws.loop == [] and ws._store().last_round() == 0
    table = ws.evolve_pool(candidates=2, min_impressions=50)
    assert list(table["round"]) == [1] and table["impressions"][0] == 3000
    assert table["true CTR %"][0] == pytest.approx(
        100 * ws.campaign_arrays("value")["service"].mean(), abs=1e-3)
    assert ws._store().query("SELECT COUNT(*) FROM arms WHERE active = 1")[0][0] == before
    assert ws._store().last_round() == 1
    changed = table["retired → added (why)"][0]
    assert "retired" in changed and ("posterior mean" in changed or "upper bound" in changed)
    with pytest.raises(StudioError, match="since the last round"):
        ws.evolve_pool()
    ws.simulate(500)  # the campaign goes on with the evolved pool
    assert ws.evolve_pool(candidates=2, min_impressions=50)["impressions"].tolist() == [3000, 500]
