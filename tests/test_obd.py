"""The Open Bandit Dataset loader on the real logged clicks shipped inside obp."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import BanditError
from bandit.evaluation import dr, ips, one_hot_distribution, replay, snips
from bandit.obd import load_obd, obd_root

try:
    obd_root()
    HAVE_OBD = True
except BanditError:
    HAVE_OBD = False

needs_obd = pytest.mark.skipif(
    not HAVE_OBD, reason="Open Bandit Dataset sample not installed: "
                         "pip install --no-deps --ignore-requires-python obp==0.5.7")


@needs_obd
def test_random_log_loads_with_uniform_propensities():
    log = load_obd("random", "all")
    assert len(log) == 10_000 and log.n_actions == 80
    assert np.allclose(log.propensities, 1 / 80)
    assert set(np.unique(log.rewards)) <= {0.0, 1.0} and 20 < log.rewards.sum() < 200
    one_hot = log.contexts[:, : log.contexts.shape[1] - 80]
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    assert (one_hot.sum(axis=1) == 4).all()  # one category per user feature


@needs_obd
def test_random_and_bts_logs_share_their_context_columns():
    random_log, bts_log = load_obd("random"), load_obd("bts")
    assert random_log.contexts.shape[1] == bts_log.contexts.shape[1]
    assert bts_log.propensities.min() < 1e-3  # bts logs are far from uniform
    without_affinity = load_obd("random", affinity=False)
    assert without_affinity.contexts.shape[1] == random_log.contexts.shape[1] - 80


@needs_obd
def test_position_filter_and_replay_on_real_clicks():
    log = load_obd("random", position=1)
    assert 0 < len(log) < 10_000
    assert (log.positions == 0).all() and log.n_positions == 3
    top_item = int(np.bincount(log.actions, weights=log.rewards).argmax())

    class AlwaysTop:
        def select(self, x):
            return type("C", (), {"arm": top_item})()

    estimate = replay(AlwaysTop, log, learn=False)
    same = snips(log, one_hot_distribution([top_item] * len(log), log.n_actions))
    assert estimate.value == pytest.approx(same.value, abs=1e-12)


@needs_obd
def test_slot_dependent_policy_is_evaluated_at_each_rounds_slot_as_obp_does():
    obp_ope = pytest.importorskip("obp.ope", reason="obp's estimators do not import")
    log = load_obd("random", "all")
    assert log.n_positions == 3 and set(np.unique(log.positions)) == {0, 1, 2}
    assert min(np.bincount(log.positions)) > 3000  # about a third of the rounds per slot
    # A deterministic policy that shows, in each slot, the item clicked most there.
    k, rounds = log.n_actions, np.arange(len(log))
    slot = [log.positions == p for p in range(3)]
    item = [int(np.bincount(log.actions[s], weights=log.rewards[s], minlength=k).argmax())
            for s in slot]
    dist = np.zeros((len(log), k, 3))
    dist[:, item, [0, 1, 2]] = 1.0
    slot_ctr = np.bincount(log.positions, weights=log.rewards) / np.bincount(log.positions)
    q = np.broadcast_to(slot_ctr, (len(log), k, 3))
    inputs = dict(reward=log.rewards, action=log.actions, position=log.positions,
                  pscore=log.propensities, action_dist=dist)
    theirs = {
        "ips": obp_ope.InverseProbabilityWeighting().estimate_policy_value(**inputs),
        "snips": obp_ope.SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**inputs),
        "dr": obp_ope.DoublyRobust().estimate_policy_value(
            **inputs, estimated_rewards_by_reg_model=q),
    }
    ours = {"ips": ips(log, dist, n_bootstrap=20), "snips": snips(log, dist, n_bootstrap=20),
            "dr": dr(log, dist, q, n_bootstrap=20)}
    for name, estimate in ours.items():
        assert estimate.value == pytest.approx(theirs[name], abs=1e-9), name
    assert ours["ips"].ess == (dist[rounds, log.actions, log.positions] == 1).sum()
    # Reading every round at the first slot's policy gets another value.
    assert abs(ips(log, dist[:, :, 0], n_bootstrap=20).value - theirs["ips"]) > 1e-4


def _fake_obd(root, positions):
    """A two-round stand-in for the dataset's CSV layout (no real rows)."""
    folder = root / "random" / "all"
    folder.mkdir(parents=True)
    (folder / "item_context.csv").write_text(",item_id\n0,0\n1,1\n")
    header = ",timestamp,item_id,position,click,propensity_score," + ",".join(
        f"user_feature_{i}" for i in range(4)) + ",user-item_affinity_0,user-item_affinity_1"
    rows = [f"{i},t,{i % 2},{p},0,0.5,a,b,c,d,0.0,0.0" for i, p in enumerate(positions)]
    (folder / "all.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def test_positions_are_read_zero_based_and_validated(tmp_path):
    log = load_obd(data_path=_fake_obd(tmp_path / "good", [2, 1]))
    assert log.positions.tolist() == [1, 0] and log.n_positions == 2
    with pytest.raises(BanditError, match="position column .* integers >= 1"):
        load_obd(data_path=_fake_obd(tmp_path / "zero", [0, 1]))
    with pytest.raises(BanditError, match="position column .* integers >= 1"):
        load_obd(data_path=_fake_obd(tmp_path / "text", ["top", 1]))


def test_bad_arguments_fail_clearly(tmp_path):
    with pytest.raises(BanditError, match="behavior_policy"):
        load_obd("greedy", data_path=tmp_path)
    with pytest.raises(BanditError, match="campaign"):
        load_obd("random", "kids", data_path=tmp_path)
    with pytest.raises(BanditError, match="does not exist"):
        load_obd("random", "all", data_path=tmp_path)
    with pytest.raises(BanditError, match="does not exist"):
        obd_root(tmp_path / "missing")
