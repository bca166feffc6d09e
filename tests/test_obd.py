"""The Open Bandit Dataset loader on the real logged clicks shipped inside obp."""

from __future__ import annotations

import numpy as np
import pytest

from bandit import BanditError
from bandit.evaluation import one_hot_distribution, replay, snips
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
    top_item = int(np.bincount(log.actions, weights=log.rewards).argmax())

    class AlwaysTop:
        def select(self, x):
            return type("C", (), {"arm": top_item})()

    estimate = replay(AlwaysTop, log, learn=False)
    same = snips(log, one_hot_distribution([top_item] * len(log), log.n_actions))
    assert estimate.value == pytest.approx(same.value, abs=1e-12)


def test_bad_arguments_fail_clearly(tmp_path):
    with pytest.raises(BanditError, match="behavior_policy"):
        load_obd("greedy", data_path=tmp_path)
    with pytest.raises(BanditError, match="campaign"):
        load_obd("random", "kids", data_path=tmp_path)
    with pytest.raises(BanditError, match="does not exist"):
        load_obd("random", "all", data_path=tmp_path)
    with pytest.raises(BanditError, match="does not exist"):
        obd_root(tmp_path / "missing")
