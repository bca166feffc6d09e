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
    _assert_matches_obp(obp_ope, log, dist, q, dist[:, :, None], q[:, :, None],
                        np.zeros(len(log), dtype=int))


# --------------------------------------------------------------- honest intervals
U, ARMS = 20, 10  # user types and actions of the click worlds below


def _click_world(seed, agree=1.0):
    """CTRs in [1 %, 3 %] per (user type, action); the best action per user type; the
    greedy action of an ε-greedy logger, which is the best one for a share ``agree`` of
    the user types and another one for the rest."""
    rng = np.random.default_rng(seed)
    ctr = 0.01 + 0.02 * rng.random((U, ARMS))
    best = ctr.argmax(axis=1)
    greedy = best.copy()
    wrong = rng.random(U) >= agree
    greedy[wrong] = (greedy[wrong] + rng.integers(1, ARMS, wrong.sum())) % ARMS
    return ctr, best, greedy


def _click_log(rng, ctr, logging, n):
    users = rng.integers(0, U, n)
    actions = (rng.random(n)[:, None] > logging[users].cumsum(axis=1)).sum(axis=1)
    actions = np.minimum(actions, ARMS - 1)
    rewards = (rng.random(n) < ctr[users, actions]).astype(float)
    return users, BanditLog(np.eye(U)[users], actions, rewards, logging[users, actions], ARMS)


def _coverage(ctr, logging, target, *, reps=200, n=3000, seed=0):
    """Share of the 95 % intervals of IPS, SNIPS and DR that hold the true value, over
    ``reps`` logs of ``n`` events; DR uses a context-free (misspecified) q̂."""
    truth = float((target * ctr).sum(axis=1).mean())
    q = np.tile(ctr.mean(axis=0), (U, 1))
    rng = np.random.default_rng(seed)
    hits, ess = [], []
    for rep in range(reps):
        users, log = _click_log(rng, ctr, logging, n)
        dist = target[users]
        estimates = [ips(log, dist, n_bootstrap=50, seed=rep),
                     snips(log, dist, n_bootstrap=50, seed=rep),
                     dr(log, dist, q[users], n_bootstrap=50, seed=rep)]
        hits.append([e.ci_low <= truth <= e.ci_high for e in estimates])
        ess.append(estimates[0].ess)
    return np.mean(hits, axis=0), float(np.median(ess))


def _epsilon_greedy(greedy, epsilon=0.1):
    probs = np.full((U, ARMS), epsilon / ARMS)
    probs[np.arange(U), greedy] += 1 - epsilon
    return probs


@pytest.mark.parametrize("logger", ["uniform", "epsilon"])
@pytest.mark.parametrize("target", ["deterministic", "uniform"])
def test_intervals_cover_the_truth_with_rare_clicks(logger, target):
    ctr, best, greedy = _click_world(0)
    logging = np.full((U, ARMS), 1 / ARMS) if logger == "uniform" else _epsilon_greedy(greedy)
    policy = np.eye(ARMS)[best] if target == "deterministic" else np.full((U, ARMS), 1 / ARMS)
    coverage, _ = _coverage(ctr, logging, policy)
    assert ((0.88 <= coverage) & (coverage <= 0.995)).all(), coverage


def test_intervals_stay_honest_when_the_target_leaves_the_loggers_greedy_arm():
    # The logger's greedy arm is not the target's on 30 % of user types: those events
    # carry weight 100 and hold a click now and then. A bootstrap alone covered 30–44 %.
    ctr, best, greedy = _click_world(0, agree=0.7)
    coverage, ess = _coverage(ctr, _epsilon_greedy(greedy), np.eye(ARMS)[best])
    assert ess < 150 and (coverage >= 0.88).all(), (coverage, ess)


def test_ess_and_warning_are_reported():
    ctr, best, _ = _click_world(1)
    users, log = _click_log(np.random.default_rng(2), ctr, np.full((U, ARMS), 1 / ARMS), 600)
    uniform = ips(log, uniform_distribution(len(log), ARMS), n_bootstrap=20)
    assert uniform.ess == pytest.approx(len(log)) and uniform.warning is None
    deterministic = snips(log, np.eye(ARMS)[best[users]], n_bootstrap=20)
    matched = int((best[users] == log.actions).sum())
    assert deterministic.ess == pytest.approx(matched) and matched < 100
    assert deterministic.warning == f"effective sample size {matched} < 100: interval is approximate"
    assert deterministic.as_dict()["ess"] == deterministic.ess
    assert deterministic.as_dict()["warning"] == deterministic.warning


@pytest.mark.parametrize("learn", [False, True])
def test_replay_with_no_matched_click_still_bounds_the_ctr(learn):
    rng = np.random.default_rng(3)
    n = 1240
    actions = rng.integers(0, ARMS, n)
    rewards = (actions != 0) & (rng.random(n) < 0.05)  # action 0 never clicks
    log = BanditLog(np.zeros((n, 1)), actions, rewards.astype(float), np.full(n, 1 / ARMS), ARMS)

    class AlwaysZero:
        def select(self, x):
            return type("C", (), {"arm": 0})()

        def update(self, arm, x, reward):
            pass

    estimate = replay(AlwaysZero, log, learn=learn, n_resamples=5)
    assert estimate.n == (actions == 0).sum() and 100 < estimate.n < 150
    assert estimate.ess == estimate.n
    assert estimate.value == 0 and estimate.ci_low == 0
    assert estimate.ci_high >= 0.025  # Wilson: 3.84 / (n + 3.84) ≈ 0.03 for n ≈ 124


def test_thin_overlap_is_refused():
    # A Thompson-sampling-like logger: one action takes nearly everything, the others
    # get propensities down to 1e-6; a target that always plays action 1 matches rarely
    # and then with weights of up to a million.
    rng = np.random.default_rng(4)
    n = 5000
    logging = np.array([0.0, 1e-6] + [1e-3] * (ARMS - 2))
    logging[0] = 1 - logging.sum()
    actions = rng.choice(ARMS, size=n, p=logging)
    actions[:2] = 1  # the target's action was logged, twice
    rewards = (rng.random(n) < 0.02).astype(float)
    log = BanditLog(np.zeros((n, 1)), actions, rewards, logging[actions], ARMS)
    target = one_hot_distribution(np.ones(n, dtype=int), ARMS)
    for call in (lambda: ips(log, target), lambda: snips(log, target),
                 lambda: dr(log, target, np.zeros((n, ARMS)))):
        with pytest.raises(BanditError, match=r"effective sample size 2\.0 < min_ess 10"):
            call()
    assert ips(log, target, min_ess=1, n_bootstrap=20).ess == pytest.approx(2.0)
    uniform_log = BanditLog(log.contexts, log.actions, log.rewards, np.full(n, 1 / ARMS), ARMS)

    class AlwaysOne:
        def select(self, x):
            return type("C", (), {"arm": 1})()

    matched = int((actions == 1).sum())
    with pytest.raises(BanditError, match=rf"effective sample size {matched}\.0 < min_ess 50"):
        replay(AlwaysOne, uniform_log, learn=False, min_ess=50)


def _slotted_log(seed=7, n=3000, slots=3):
    """A uniform log whose CTR depends on the slot; (log, the CTR table (U, K, slots))."""
    rng = np.random.default_rng(seed)
    ctr = rng.uniform(0.01, 0.2, (U, ARMS, slots))
    users, positions = rng.integers(0, U, n), rng.integers(0, slots, n)
    actions = rng.integers(0, ARMS, n)
    rewards = (rng.random(n) < ctr[users, actions, positions]).astype(float)
    return BanditLog(np.eye(U)[users], actions, rewards, np.full(n, 1 / ARMS), ARMS,
                     positions=positions, n_positions=slots), users, ctr


def test_slot_dependent_policies_are_read_at_each_rows_position():
    log, users, ctr = _slotted_log()
    per_slot = ctr.argmax(axis=1)  # (U, slots): the best action per user and slot
    dist = np.zeros((len(log), ARMS, 3))
    for slot in range(3):
        dist[np.arange(len(log)), per_slot[users, slot], slot] = 1.0
    flat = dist[np.arange(len(log)), :, log.positions]
    q = ctr[users] * 0.9
    for estimator, args in [(ips, ()), (snips, ()), (dr, (q,))]:
        sliced = [a[np.arange(len(log)), :, log.positions] for a in args]
        assert estimator(log, dist, *args, n_bootstrap=20).value == \
            estimator(log, flat, *sliced, n_bootstrap=20).value
    assert dr(log, dist, q[np.arange(len(log)), :, log.positions], n_bootstrap=20).value == \
        dr(log, dist, q, n_bootstrap=20).value  # a 2-D q̂ serves every slot
    half = log.subset(slice(0, 1500))
    assert half.positions.tolist() == log.positions[:1500].tolist() and half.n_positions == 3
    assert ips(half, dist[:1500], n_bootstrap=20).value == \
        ips(half, flat[:1500], n_bootstrap=20).value


def test_position_estimates_agree_with_obp():
    obp_ope = pytest.importorskip("obp.ope", reason="obp is not installed (see Makefile)")
    log, users, ctr = _slotted_log(8)
    rng = np.random.default_rng(9)
    dist = rng.dirichlet(np.ones(ARMS), size=(len(log), 3)).transpose(0, 2, 1)
    q = ctr[users] * rng.uniform(0.5, 1.5, ctr[users].shape)
    _assert_matches_obp(obp_ope, log, dist, q, dist, q, log.positions)


def test_bad_positions_and_options_raise_clear_errors():
    log, users, _ = _slotted_log(n=60)
    flat = BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS)
    dist = np.full((60, ARMS, 3), 1 / ARMS)
    cases = [
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           positions=log.positions[:-1]), "positions must be 60 integers"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           positions=log.positions + 0.5), "positions must be 60 integers"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           positions=log.positions - 1, n_positions=3),
         r"positions must be integers in \[0, 3\)"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           positions=log.positions, n_positions=2),
         r"positions must be integers in \[0, 2\)"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           positions=log.positions, n_positions=0), "n_positions must be"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           positions=log.positions, n_positions=3.0), "n_positions must be"),
        (lambda: BanditLog(log.contexts, log.actions, log.rewards, log.propensities, ARMS,
                           n_positions=3), "n_positions is given but positions are not"),
        (lambda: ips(flat, dist), "action_dist has a position axis but the log has no positions"),
        (lambda: ips(log, dist[:, :, :2]), r"action_dist must be \(60, 10\) or \(60, 10, 3\)"),
        (lambda: ips(log, np.ones((60, ARMS, 3))), "probability distributions"),
        (lambda: snips(log, dist[:, :, 0, None] * np.array([1, 1, 0])),
         "probability distributions"),  # the slot-2 slice is not a distribution
        (lambda: dr(log, dist, np.zeros((60, ARMS, 2))),
         r"estimated_rewards must be \(60, 10\) or \(60, 10, 3\)"),
        (lambda: dr(flat, dist[:, :, 0], np.zeros((60, ARMS, 3))),
         "estimated_rewards has a position axis"),
        (lambda: dr(log, dist, np.full((60, ARMS, 3), np.nan)), "estimated_rewards contain NaN"),
    ]
    uniform = uniform_distribution(60, ARMS)
    for bad in (0, -1, float("nan"), float("inf"), "10", None):
        cases += [(lambda bad=bad: ips(log, uniform, min_ess=bad), "min_ess must be"),
                  (lambda bad=bad: snips(log, uniform, min_ess=bad), "min_ess must be"),
                  (lambda bad=bad: dr(log, uniform, np.zeros((60, ARMS)), min_ess=bad),
                   "min_ess must be"),
                  (lambda bad=bad: replay(lambda: RandomPolicy(ARMS), log, min_ess=bad),
                   "min_ess must be")]
    cases.append((lambda: replay(lambda: RandomPolicy(ARMS), log, level=1.5), "level"))
    for call, pattern in cases:
        with pytest.raises(BanditError, match=pattern):
            call()


def _assert_matches_obp(obp_ope, log, dist, q, their_dist, their_q, positions):
    """Our IPS, SNIPS and DR equal obp's (given obp's shapes: a slot axis) to 1e-9."""
    inputs = dict(reward=log.rewards, action=log.actions, pscore=log.propensities,
                  action_dist=their_dist, position=positions)
    theirs = {
        "ips": obp_ope.InverseProbabilityWeighting().estimate_policy_value(**inputs),
        "snips": obp_ope.SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**inputs),
        "dr": obp_ope.DoublyRobust().estimate_policy_value(
            **inputs, estimated_rewards_by_reg_model=their_q),
    }
    ours = {"ips": ips(log, dist).value, "snips": snips(log, dist).value,
            "dr": dr(log, dist, q).value}
    for name in ours:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name
