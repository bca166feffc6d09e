"""Offline policy evaluation: estimators recover known values; replay; bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from bandit import BanditError, LinUCB
from bandit.evaluation import (
    BanditLog,
    dr,
    estimate_rewards,
    ips,
    one_hot_distribution,
    replay,
    snips,
    uniform_distribution,
)
from bandit.policies import GreedyPolicy, RandomPolicy

K, D = 5, 3


def _world(seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(K, D))
    bias = rng.normal(-1.5, 0.5, size=K)

    def click_prob(contexts):
        return 1 / (1 + np.exp(-(contexts @ weights.T + bias)))

    def target(contexts):  # a stochastic target policy: softmax over a linear score
        z = contexts @ weights[::-1].T
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    return rng, click_prob, target


def _uniform_log(rng, click_prob, n):
    contexts = rng.normal(size=(n, D))
    actions = rng.integers(0, K, n)
    rewards = (rng.random(n) < click_prob(contexts)[np.arange(n), actions]).astype(float)
    return BanditLog(contexts, actions, rewards, np.full(n, 1 / K), K)


def test_ips_snips_dr_recover_the_true_value_of_a_known_policy():
    rng, click_prob, target = _world()
    fresh = rng.normal(size=(200_000, D))
    truth = float((target(fresh) * click_prob(fresh)).sum(axis=1).mean())
    log = _uniform_log(rng, click_prob, 20_000)
    dist = target(log.contexts)
    estimates = {
        "ips": ips(log, dist, seed=1),
        "snips": snips(log, dist, seed=1),
        "dr": dr(log, dist, estimate_rewards(LogisticRegression(), log, log.contexts), seed=1),
    }
    for name, estimate in estimates.items():
        assert estimate.ci_low <= truth <= estimate.ci_high, (name, truth, estimate)
        assert estimate.ci_high - estimate.ci_low < 0.05, name
    # DR with a good reward model is tighter than IPS.
    width = {k: e.ci_high - e.ci_low for k, e in estimates.items()}
    assert width["dr"] < width["ips"]


def test_replay_of_a_fixed_policy_equals_snips_under_uniform_logging():
    rng, click_prob, _ = _world(1)
    log = _uniform_log(rng, click_prob, 5000)
    chooser = lambda x: int(np.argmax(x @ np.arange(D * K).reshape(D, K) % 7))

    class Fixed:
        def select(self, x):
            return type("C", (), {"arm": chooser(x)})()

    estimate = replay(Fixed, log, learn=False)
    actions = [chooser(x) for x in log.contexts]
    same = snips(log, one_hot_distribution(actions, K))
    assert estimate.value == pytest.approx(same.value, abs=1e-12)
    assert estimate.n == int(np.sum(np.array(actions) == log.actions))
    assert estimate.ci_low <= estimate.value <= estimate.ci_high


def test_replay_of_learning_policies_uses_permutations():
    rng, click_prob, _ = _world(2)
    log = _uniform_log(rng, click_prob, 6000)

    def make_linucb():
        model = LinUCB(D, alpha=0.3)
        for arm in range(K):
            model.add_arm(arm)
        return model

    learned = replay(make_linucb, log, n_resamples=5)
    random = replay(lambda: RandomPolicy(K, seed=3), log, n_resamples=5)
    greedy = replay(lambda: GreedyPolicy(K), log, n_resamples=5)
    assert learned.ci_low <= learned.ci_high and learned.n > len(log) / K * 0.5
    assert learned.value > random.value  # contexts matter in this world
    assert 0 <= greedy.value <= 1


def test_replay_refuses_non_uniform_logs():
    rng, click_prob, _ = _world(3)
    log = _uniform_log(rng, click_prob, 100)
    skewed = BanditLog(log.contexts, log.actions, log.rewards,
                       np.linspace(0.1, 0.3, 100), K)
    with pytest.raises(BanditError, match="uniformly random logging"):
        replay(lambda: RandomPolicy(K), skewed)


def test_uniform_target_on_uniform_log_is_the_mean_reward():
    rng, click_prob, _ = _world(4)
    log = _uniform_log(rng, click_prob, 3000)
    estimate = ips(log, uniform_distribution(len(log), K))
    assert estimate.value == pytest.approx(log.rewards.mean())


def test_bad_logs_and_distributions_raise_clear_errors():
    rng, click_prob, _ = _world(5)
    log = _uniform_log(rng, click_prob, 50)
    cases = [
        (lambda: BanditLog(log.contexts, log.actions[:-1], log.rewards, log.propensities, K),
         "disagree"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, np.zeros(50), K),
         r"propensities must lie in \(0, 1\]"),
        (lambda: BanditLog(log.contexts, log.actions + K, log.rewards, log.propensities, K),
         "actions must be integers"),
        (lambda: BanditLog(log.contexts[:0], log.actions[:0], log.rewards[:0],
                           log.propensities[:0], K), "empty"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards * np.nan, log.propensities, K),
         "NaN or inf"),
        (lambda: ips(log, np.ones((50, K))), "probability distributions"),
        (lambda: ips(log, np.ones((49, K)) / K), r"action_dist must be \(50, 5\)"),
        (lambda: dr(log, uniform_distribution(50, K), np.zeros((50, K + 1))),
         "estimated_rewards must be"),
        (lambda: ips(log, uniform_distribution(50, K), n_bootstrap=0), "n_bootstrap"),
        (lambda: ips(log, uniform_distribution(50, K), level=2), "level"),
    ]
    for call, pattern in cases:
        with pytest.raises(BanditError, match=pattern):
            call()


def test_estimators_agree_with_obp():
    obp_ope = pytest.importorskip("obp.ope", reason="obp is not installed (see Makefile)")
    rng, click_prob, target = _world(6)
    log = _uniform_log(rng, click_prob, 4000)
    dist = target(log.contexts)
    q = estimate_rewards(LogisticRegression(), log, log.contexts)
    inputs = dict(reward=log.rewards, action=log.actions, pscore=log.propensities,
                  action_dist=dist[:, :, None], position=np.zeros(len(log), dtype=int))
    theirs = {
        "ips": obp_ope.InverseProbabilityWeighting().estimate_policy_value(**inputs),
        "snips": obp_ope.SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**inputs),
        "dr": obp_ope.DoublyRobust().estimate_policy_value(
            **inputs, estimated_rewards_by_reg_model=q[:, :, None]),
    }
    ours = {"ips": ips(log, dist).value, "snips": snips(log, dist).value,
            "dr": dr(log, dist, q).value}
    for name in ours:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name
