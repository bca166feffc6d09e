"""LinUCB: exact ridge solutions, learning, live arms, priors, persistence, validation."""

from __future__ import annotations

import json
import threading
import zipfile

import numpy as np
import pytest

from bandit import BanditError, CTRPrior, LinUCB, ParameterPrior

D = 6


def _closed_form(model: LinUCB, X: np.ndarray, y: np.ndarray, A0=None, b0=None):
    Xe = np.hstack([X, np.ones((len(X), 1))]) if model.fit_intercept else X
    A = (model.l2 * np.eye(model.dim) if A0 is None else A0) + Xe.T @ Xe
    b = (np.zeros(model.dim) if b0 is None else b0) + Xe.T @ y
    return np.linalg.solve(A, b), np.linalg.inv(A)


@pytest.mark.parametrize("refresh_every", [1000, 7])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_parameters_equal_the_closed_form_ridge_solution(refresh_every, fit_intercept):
    rng = np.random.default_rng(1)
    model = LinUCB(D, l2=0.7, fit_intercept=fit_intercept, refresh_every=refresh_every)
    for arm in ("a", "b", "c"):
        model.add_arm(arm)
    seen = {arm: ([], []) for arm in ("a", "b", "c")}
    for step in range(300):
        arm = ("a", "b", "c")[rng.integers(3)]
        if step % 50 == 25:  # a batch in the middle of single updates
            arms = [("a", "b", "c")[i] for i in rng.integers(0, 3, 20)]
            X = rng.normal(size=(20, D))
            y = rng.normal(size=20)
            model.update_batch(arms, X, y)
            for a, x, r in zip(arms, X, y):
                seen[a][0].append(x)
                seen[a][1].append(r)
            continue
        x, r = rng.normal(size=D), float(rng.normal())
        model.update(arm, x, r)
        seen[arm][0].append(x)
        seen[arm][1].append(r)
    for arm, (xs, ys) in seen.items():
        theta, A_inv = _closed_form(model, np.array(xs), np.array(ys))
        params = model.arm_parameters(arm)
        np.testing.assert_allclose(params["theta"], theta, atol=1e-8)
        np.testing.assert_allclose(params["A_inv"], A_inv, atol=1e-8)
        assert params["count"] == len(ys)


def _linear_problem(seed=0, d=8, k=10):
    rng = np.random.default_rng(seed)
    thetas = rng.normal(size=(k, d)) / np.sqrt(d)
    return rng, thetas


def test_regret_is_far_below_random_and_sublinear():
    rng, thetas = _linear_problem()
    k, d = thetas.shape
    model = LinUCB(d, alpha=0.5, fit_intercept=False, seed=3)
    for arm in range(k):
        model.add_arm(arm)
    regret_ucb, regret_random = np.zeros(10_000), np.zeros(10_000)
    for t in range(10_000):
        x = rng.normal(size=d)
        means = thetas @ x
        arm = model.select(x).arm
        model.update(arm, x, float(means[arm] + rng.normal(0, 0.5)))
        regret_ucb[t] = means.max() - means[arm]
        regret_random[t] = means.max() - means[rng.integers(k)]
    assert regret_ucb.sum() < 0.25 * regret_random.sum()
    assert regret_ucb[5000:].sum() < regret_ucb[:5000].sum()


def test_arms_added_and_removed_mid_stream_keep_the_others_untouched():
    rng = np.random.default_rng(2)
    model = LinUCB(D)
    for arm in range(5):
        model.add_arm(arm)
    for _ in range(50):
        model.update(int(rng.integers(5)), rng.normal(size=D), float(rng.random()))
    before = {arm: model.arm_parameters(arm) for arm in model.arms}
    model.remove_arm(1)
    model.add_arm("new")
    model.remove_arm(4)
    assert sorted(map(str, model.arms)) == ["0", "2", "3", "new"]
    for arm in (0, 2, 3):
        after = model.arm_parameters(arm)
        for key in ("A", "A_inv", "b", "theta"):
            np.testing.assert_array_equal(after[key], before[arm][key])
    fresh = model.arm_parameters("new")
    np.testing.assert_array_equal(fresh["A"], model.l2 * np.eye(model.dim))
    assert fresh["count"] == 0
    for arm in range(20):  # grows past its initial capacity
        model.add_arm(f"extra-{arm}")
    assert len(model.arms) == 24 and model.select(rng.normal(size=D)).arm in model.arms
    with pytest.raises(BanditError, match="unknown arm 1"):
        model.update(1, rng.normal(size=D), 1.0)
    with pytest.raises(BanditError, match="already exists"):
        model.add_arm("new")


def test_restricted_arm_sets_choose_only_among_the_candidates():
    rng = np.random.default_rng(3)
    model = LinUCB(D, alpha=0.0)
    for arm in "abcd":
        model.add_arm(arm)
    for _ in range(40):  # arm "a" is clearly best
        x = rng.normal(size=D)
        model.update("a", x, 1.0)
        model.update("b", x, 0.0)
    x = rng.normal(size=D)
    assert model.select(x).arm == "a"
    decision = model.select(x, arms=["b", "c"])
    assert decision.arm in ("b", "c") and decision.arms == ("b", "c")
    assert decision.expected.shape == (2,) and decision.propensities.sum() == pytest.approx(1)
    batch = model.select_batch(rng.normal(size=(5, D)), arms=["d"])
    assert batch.chosen_arms == ["d"] * 5
    with pytest.raises(BanditError, match="empty"):
        model.select(x, arms=[])
    with pytest.raises(BanditError, match="unknown arm 'z'"):
        model.select(x, arms=["a", "z"])


def test_warm_started_arms_start_near_their_prior():
    model = LinUCB(D, l2=1.0)
    model.add_arm("cold")
    model.add_arm("ctr", prior=CTRPrior(ctr=0.08, pseudo_count=200))
    theta0 = np.linspace(-0.5, 0.5, D)
    model.add_arm("theta", prior=ParameterPrior(theta0, pseudo_count=5))
    rng = np.random.default_rng(4)
    contexts = rng.normal(size=(20, D))
    decisions = model.select_batch(contexts)
    column = {arm: i for i, arm in enumerate(decisions.arms)}
    assert np.allclose(decisions.expected[:, column["ctr"]], 0.08, atol=0.001)
    np.testing.assert_allclose(decisions.expected[:, column["theta"]], contexts @ theta0)
    assert np.allclose(decisions.expected[:, column["cold"]], 0.0)
    # A confident prior explores less than a cold arm along the intercept.
    assert (decisions.bonus[:, column["ctr"]] < decisions.bonus[:, column["cold"]]).all()
    # Real feedback then moves the arm as ridge regression with that prior says.
    xs, ys = rng.normal(size=(30, D)), rng.random(30)
    for x, y in zip(xs, ys):
        model.update("ctr", x, float(y))
    e = np.zeros(D + 1)
    e[-1] = 1
    theta, _ = _closed_form(model, xs, ys, A0=np.eye(D + 1) + 200 * np.outer(e, e),
                            b0=200 * 0.08 * e)
    np.testing.assert_allclose(model.arm_parameters("ctr")["theta"], theta, atol=1e-8)


def test_ucb_is_deterministic_with_seeded_tie_breaking_and_logs_propensities():
    a, b = LinUCB(D, seed=5), LinUCB(D, seed=5)
    for model in (a, b):
        for arm in range(4):
            model.add_arm(arm)  # all tied at first
    contexts = np.random.default_rng(0).normal(size=(200, D))
    picks_a = [a.select(x).arm for x in contexts]
    picks_b = [b.select(x).arm for x in contexts]
    assert picks_a == picks_b and len(set(picks_a)) == 4  # ties spread over all arms
    decision = a.select(contexts[0])
    assert decision.propensity == pytest.approx(0.25)


@pytest.mark.parametrize("policy,kwargs", [("epsilon", {"epsilon": 0.2}),
                                           ("softmax", {"temperature": 0.05})])
def test_randomised_policies_report_their_action_distribution(policy, kwargs):
    model = LinUCB(D, alpha=0.1, policy=policy, seed=1, **kwargs)
    for arm in range(4):
        model.add_arm(arm)
    rng = np.random.default_rng(6)
    for _ in range(100):
        x = rng.normal(size=D)
        model.update(0, x, 1.0)
    x = rng.normal(size=D)
    decision = model.select(x)
    assert decision.propensities.sum() == pytest.approx(1.0)
    assert (decision.propensities > 0).all()
    if policy == "epsilon":
        assert decision.propensities.min() == pytest.approx(0.05)
    counts = np.bincount([model.select(x).arm for _ in range(4000)], minlength=4) / 4000
    np.testing.assert_allclose(counts, decision.propensities, atol=0.03)


def test_select_batch_equals_sequential_selects():
    contexts = np.random.default_rng(7).normal(size=(50, D))
    one, many = LinUCB(D, policy="epsilon", epsilon=0.3, seed=9), LinUCB(
        D, policy="epsilon", epsilon=0.3, seed=9)
    for model in (one, many):
        for arm in range(5):
            model.add_arm(arm)
        model.update(2, contexts[0], 1.0)
    batch = many.select_batch(contexts)
    singles = [one.select(x) for x in contexts]
    assert batch.chosen_arms == [d.arm for d in singles]
    # Exploration bonuses come from a float32 scoring copy: equal to ~1e-7 relative.
    np.testing.assert_allclose(batch.score, np.array([d.score for d in singles]), rtol=1e-5)
    np.testing.assert_allclose(batch.propensity, [d.propensity for d in singles])


def test_save_load_makes_bit_identical_decisions(tmp_path):
    rng = np.random.default_rng(8)
    model = LinUCB(D, alpha=0.7, policy="softmax", temperature=0.2, seed=11)
    for arm in ["x", "y", 3]:
        model.add_arm(arm)
    for _ in range(200):
        model.update(["x", "y", 3][rng.integers(3)], rng.normal(size=D), float(rng.random()))
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = LinUCB.load(path)
    assert loaded.arms == ["x", "y", 3] and loaded.counts() == model.counts()
    contexts = rng.normal(size=(1000, D))
    original = [model.select(x) for x in contexts]
    restored = [loaded.select(x) for x in contexts]
    assert [d.arm for d in original] == [d.arm for d in restored]
    assert all(np.array_equal(a.score, b.score) and np.array_equal(a.propensities, b.propensities)
               for a, b in zip(original, restored))


def test_corrupt_and_foreign_files_are_rejected(tmp_path):
    model = LinUCB(D)
    model.add_arm("a")
    good = tmp_path / "good.npz"
    model.save(good)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(good.read_bytes()[:200])
    text = tmp_path / "text.npz"
    text.write_text("hello")
    other_version = tmp_path / "v99.npz"
    with np.load(good) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["version"] = 99
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(other_version, **arrays)
    missing_array = tmp_path / "missing.npz"
    np.savez(missing_array, meta=arrays["meta"])
    for path, pattern in [(damaged, "not a LinUCB model file|damaged"),
                          (text, "not a LinUCB model file"),
                          (other_version, "format version 99"),
                          (missing_array, "damaged"),
                          (tmp_path / "none.npz", "does not exist")]:
        with pytest.raises(BanditError, match=pattern):
            LinUCB.load(path)
    assert zipfile.is_zipfile(good)  # the good file is untouched and still loads
    assert LinUCB.load(good).arms == ["a"]


@pytest.mark.parametrize("kwargs,pattern", [
    ({"n_features": 0, "fit_intercept": False}, "n_features"), ({"n_features": -1}, "n_features"),
    ({"n_features": 2.5}, "n_features"), ({"thompson_draws": 0}, "thompson_draws"),
    ({"alpha": -1}, "alpha"), ({"alpha": float("nan")}, "alpha"), ({"l2": 0}, "l2"),
    ({"policy": "greedy"}, "policy"), ({"epsilon": 1.5}, "epsilon"),
    ({"temperature": 0}, "temperature"), ({"refresh_every": 0}, "refresh_every"),
])
def test_bad_configuration_is_refused(kwargs, pattern):
    with pytest.raises(BanditError, match=pattern):
        LinUCB(**{"n_features": D, **kwargs})


def test_bad_inputs_raise_clear_errors_and_change_nothing():
    model = LinUCB(D)
    with pytest.raises(BanditError, match="no arms"):
        model.select(np.zeros(D))
    model.add_arm("a")
    before = model.arm_parameters("a")
    cases = [
        (lambda: model.select(np.zeros(D + 1)), "context must have 6 features"),
        (lambda: model.select([0.0] * (D - 1) + [np.nan]), "NaN or inf"),
        (lambda: model.update("a", [np.inf] * D, 1.0), "NaN or inf"),
        (lambda: model.update("a", np.zeros(D), float("nan")), "reward must be a finite"),
        (lambda: model.update("a", np.zeros(D), "1"), "reward must be a finite"),
        (lambda: model.update("b", np.zeros(D), 1.0), "unknown arm 'b'"),
        (lambda: model.update_batch(["a", "b"], np.zeros((2, D)), [1, 0]), "unknown arm 'b'"),
        (lambda: model.update_batch(["a", "a"], np.zeros((2, D)), [1, np.nan]), "NaN or inf"),
        (lambda: model.update_batch(["a"], np.zeros((2, D)), [1, 0]), "differ in length"),
        (lambda: model.select_batch(np.zeros((3, D - 1))), r"contexts must be \(n, 6\)"),
        (lambda: model.add_arm(1.5), "str or int"),
        (lambda: model.add_arm(True), "str or int"),
        (lambda: model.add_arm("p", prior=[1.0, 2.0]), "prior theta must have 6"),
        (lambda: model.add_arm("p", prior=CTRPrior(0.1, pseudo_count=0)), "pseudo_count"),
        (lambda: LinUCB(D, fit_intercept=False).add_arm("p", prior=CTRPrior(0.1)),
         "needs fit_intercept"),
        (lambda: model.remove_arm("zzz"), "unknown arm"),
    ]
    for call, pattern in cases:
        with pytest.raises(BanditError, match=pattern):
            call()
    after = model.arm_parameters("a")
    for key in ("A", "A_inv", "b", "theta"):
        np.testing.assert_array_equal(after[key], before[key])
    assert after["count"] == 0 and model.arms == ["a"]


def test_concurrent_updates_and_selects_stay_consistent():
    model = LinUCB(D, refresh_every=10_000)
    for arm in range(4):
        model.add_arm(arm)
    rng = np.random.default_rng(10)
    X = rng.normal(size=(4000, D))
    y = rng.random(4000)
    arms = rng.integers(0, 4, 4000)
    errors = []

    def writer(part):
        for i in range(part, 4000, 4):
            model.update(int(arms[i]), X[i], float(y[i]))

    def reader():
        try:
            for x in X[:500]:
                decision = model.select(x)
                assert np.isfinite(decision.score).all()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for arm in range(4):
        mine = arms == arm
        theta, _ = _closed_form(model, X[mine], y[mine])
        np.testing.assert_allclose(model.arm_parameters(arm)["theta"], theta, atol=1e-8)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 2.0])
def test_scores_follow_the_linucb_formula(alpha):
    rng = np.random.default_rng(12)
    model = LinUCB(D, alpha=alpha)
    for arm in range(3):
        model.add_arm(arm)
    for _ in range(60):
        model.update(int(rng.integers(3)), rng.normal(size=D), float(rng.random()))
    x = rng.normal(size=D)
    decision = model.select(x)
    xe = np.append(x, 1.0)
    for i, arm in enumerate(decision.arms):
        params = model.arm_parameters(arm)
        assert decision.expected[i] == pytest.approx(params["theta"] @ xe, abs=1e-12)
        bonus = alpha * np.sqrt(xe @ params["A_inv"] @ xe)
        assert decision.bonus[i] == pytest.approx(bonus, rel=1e-5, abs=1e-9)
        assert decision.score[i] == pytest.approx(decision.expected[i] + decision.bonus[i])
    assert decision.arm == decision.arms[int(np.argmax(decision.score))]


def test_thompson_sampling_learns_and_reports_propensities():
    """Thompson sampling plays the arm that wins the first posterior draw; its logged
    propensities are the share of draws each arm wins, and it concentrates on the better
    arm as evidence accumulates. The batch path agrees in distribution."""
    model = LinUCB(2, alpha=0.2, policy="thompson", thompson_draws=128, seed=3)
    model.add_arm("good")
    model.add_arm("bad")
    first = model.select([1.0, 0.0])
    assert first.propensities.sum() == pytest.approx(1.0)
    assert 0.2 < first.propensities[0] < 0.8  # no evidence yet: both arms plausible
    rng = np.random.default_rng(0)
    for _ in range(400):
        x = rng.normal(size=2)
        model.update("good", x, float(rng.random() < 0.6))
        model.update("bad", x, float(rng.random() < 0.1))
    decision = model.select([1.0, 0.0])
    assert decision.arm == "good" and decision.propensity > 0.95
    assert decision.propensities.min() >= 1.0 / 128 / 2  # floored: every arm stays loggable
    batch = model.select_batch(rng.normal(size=(50, 2)))
    assert (np.array(batch.chosen_arms) == "good").mean() > 0.9
    assert np.allclose(batch.propensities.sum(axis=1), 1.0)


def test_context_free_model_learns_arm_means():
    """With n_features=0 (and the intercept) each arm is a mean-reward estimate: the
    prior counts as its pseudo-impressions, then data takes over."""
    from bandit import CTRPrior

    model = LinUCB(0, alpha=0.0, l2=1e-6)
    model.add_arm("a", prior=CTRPrior(0.02, pseudo_count=100))
    assert model.estimate([])[1][0] == pytest.approx(0.02, rel=1e-4)
    model.update_batch(["a"] * 100, np.zeros((100, 0)), np.r_[np.ones(6), np.zeros(94)])
    assert model.estimate([])[1][0] == pytest.approx((2.0 + 6.0) / 200, rel=1e-4)
    with pytest.raises(BanditError, match="context"):
        model.select([1.0])
