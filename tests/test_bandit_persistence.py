"""LinUCB model files: damaged bytes, inconsistent values and odd JSON are refused with a
BanditError; θ is recomputed; loaded models decide like the saved ones."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from bandit import POLICIES, BanditError, LinUCB

D = 3


def _model(updates=30, **kwargs) -> LinUCB:
    rng = np.random.default_rng(0)
    model = LinUCB(D, seed=5, **kwargs)
    for arm in ["a", 7]:
        model.add_arm(arm)
    for _ in range(updates):
        model.update(["a", 7][rng.integers(2)], rng.normal(size=D), float(rng.random() < 0.3))
    return model


def _saved(model) -> bytes:
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def _rewrite(data: bytes, meta=None, **arrays) -> io.BytesIO:
    """The saved file ``data`` with ``meta`` (a function of the JSON document) and the
    given arrays replaced."""
    with np.load(io.BytesIO(data)) as archive:
        content = {name: archive[name] for name in archive.files}
    if meta is not None:
        document = meta(json.loads(bytes(content["meta"]).decode()))
        content["meta"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    content.update(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **content)
    buffer.seek(0)
    return buffer


def _decisions(model, seed=1):
    contexts = np.random.default_rng(seed).normal(size=(200, D))
    return [(d.arm, d.score.tobytes(), d.propensities.tobytes())
            for d in (model.select(x) for x in contexts)]


def test_every_damaged_byte_is_refused_with_a_bandit_error_or_loads_a_working_model():
    good = _saved(_model())
    rng = np.random.default_rng(2)
    flips = [(i, good[i] ^ 0xFF) for i in range(len(good))]
    flips += [(int(i), int(v)) for i, v in zip(rng.integers(0, len(good), 3000),
                                               rng.integers(0, 256, 3000))]
    outcomes = {"loaded": 0, "refused": 0}
    for position, value in flips:
        data = bytearray(good)
        data[position] = value
        try:
            model = LinUCB.load(io.BytesIO(bytes(data)))
        except BanditError:
            outcomes["refused"] += 1
        else:  # bytes no check reads (zip timestamps, padding): a consistent model
            outcomes["loaded"] += 1
            model.select(np.zeros(D))
    assert outcomes["refused"] > outcomes["loaded"] > 0


@pytest.mark.parametrize("name,pattern", [("A", "A contains NaN"), ("b", "b contains NaN"),
                                          ("A_inv", "A_inv contains NaN"),
                                          ("theta", "theta contains NaN")])
def test_non_finite_arrays_are_refused(name, pattern):
    good = _saved(_model())
    with np.load(io.BytesIO(good)) as archive:
        array = archive[name].copy()
    array[0].flat[0] = np.nan
    with pytest.raises(BanditError, match=f"damaged LinUCB model file .*{pattern}"):
        LinUCB.load(_rewrite(good, **{name: array}))
    array[0].flat[0] = np.inf
    with pytest.raises(BanditError, match=pattern.replace("NaN", "NaN or inf")):
        LinUCB.load(_rewrite(good, **{name: array}))


def test_inconsistent_arrays_are_refused():
    model = _model()
    good = _saved(model)
    with np.load(io.BytesIO(good)) as archive:
        A, A_inv, counts = archive["A"], archive["A_inv"], archive["counts"]
    skewed = A.copy()
    skewed[0, 0, 1] += 1.0
    cases = [
        ({"A_inv": np.tile(np.eye(D + 1), (2, 1, 1))}, "A_inv is not the inverse of A"),
        ({"A_inv": A_inv * (1 + 1e-4)}, "A_inv is not the inverse of A"),
        ({"A": -A, "A_inv": -A_inv}, "A is not positive definite"),
        ({"A": skewed}, "A is not symmetric"),
        ({"counts": counts - 100}, "counts contains negative counts"),
        ({"since_refresh": np.array([-1, 0])}, "since_refresh contains negative counts"),
        ({"counts": counts.astype(float)}, "counts has dtype float64"),
        ({"A": A.astype(np.complex128)}, "A has dtype complex128"),
        ({"b": np.zeros((2, D))}, r"b has shape \(2, 3\), expected \(2, 4\)"),
    ]
    for arrays, pattern in cases:
        with pytest.raises(BanditError, match=f"damaged LinUCB model file .*{pattern}"):
            LinUCB.load(_rewrite(good, **arrays))


def test_theta_is_recomputed_not_read():
    model = _model()
    good = _saved(model)
    loaded = LinUCB.load(_rewrite(good, theta=np.full((2, D + 1), 5.0)))
    for arm in model.arms:
        params = loaded.arm_parameters(arm)
        assert np.array_equal(params["theta"], params["A_inv"] @ params["b"])
        assert np.array_equal(params["theta"], model.arm_parameters(arm)["theta"])
    assert _decisions(loaded) == _decisions(model)


def _config(**changes):
    def edit(meta):
        meta["config"].update(changes)
        return meta
    return edit


def _set(key, value):
    def edit(meta):
        meta[key] = value
        return meta
    return edit


@pytest.mark.parametrize("edit,pattern", [
    (_set("config", [1, 2]), "config must be an object"),
    (_set("config", None), "config must be an object"),
    (lambda m: {**m, "config": {k: v for k, v in m["config"].items() if k != "alpha"}},
     "config must be an object with"),
    (_config(fit_intercept="yes"), "fit_intercept must be true or false"),
    (_config(n_features="3"), "n_features must be an integer"),
    (_config(n_features=-1), "n_features must be an integer"),
    (_config(n_features=2), r"A has shape \(2, 4, 4\), expected \(2, 3, 3\)"),
    (_config(n_features=10**9), r"A has shape .* expected \(2, 1000000001, 1000000001\)"),
    (_config(alpha="wide"), "alpha must be a finite number"),
    (_config(policy=["ucb"]), "policy must be one of"),
    (_config(seed=1.5), "seed must be an integer"),
    (_set("arms", "a7"), "arms must be a list"),
    (_set("arms", {"a": 7}), "arms must be a list"),
    (_set("arms", ["a", "a"]), "already exists"),
    (_set("arms", ["a", 1.5]), "arm ids must be str or int"),
    (_set("arms", ["a", None]), "arm ids must be str or int"),
    (_set("arms", ["a"]), r"A has shape \(2, 4, 4\), expected \(1, 4, 4\)"),
    (_set("rng_state", "seed"), "random generator state"),
    (_set("rng_state", None), "random generator state"),
    (lambda m: {**m, "rng_state": {**m["rng_state"], "bit_generator": "MT19937"}},
     "random generator state"),
    (lambda m: {**m, "rng_state": {**m["rng_state"], "state": {"state": -1, "inc": 1}}},
     "random generator state"),
    (lambda m: {**m, "rng_state": {**m["rng_state"], "state": "x"}}, "random generator state"),
])
def test_odd_json_documents_are_refused(edit, pattern):
    good = _saved(_model())
    with pytest.raises(BanditError, match=f"damaged LinUCB model file .*{pattern}"):
        LinUCB.load(_rewrite(good, meta=edit))


@pytest.mark.parametrize("document", [[1, 2], "linucb", 3, None])
def test_json_that_is_not_an_object_is_not_a_model_file(document):
    with pytest.raises(BanditError, match="not a LinUCB model file"):
        LinUCB.load(_rewrite(_saved(_model()), meta=lambda _: document))


def test_a_long_sherman_morrison_run_loads_and_decides_identically(tmp_path):
    # 1e5 rank-1 updates without an exact re-inversion, on badly scaled contexts
    # (cond(A) ~ 1e8): the stored inverse must pass the consistency check.
    model = LinUCB(D, refresh_every=10**9, seed=3)
    model.add_arm("a")
    rng = np.random.default_rng(4)
    contexts = rng.normal(size=(100_000, D)) * np.array([100.0, 1.0, 0.01])
    rewards = (rng.random(100_000) < 0.05).astype(float)
    for x, r in zip(contexts, rewards):
        model.update("a", x, r)
    path = tmp_path / "long.npz"
    model.save(path)
    loaded = LinUCB.load(path)
    assert loaded.counts() == {"a": 100_000}
    assert _decisions(loaded) == _decisions(model)
    assert [p.name for p in tmp_path.iterdir()] == ["long.npz"]


@pytest.mark.skipif("thompson" not in POLICIES, reason="this LinUCB has no Thompson policy")
def test_thompson_settings_survive_a_round_trip():
    model = _model(policy="thompson", thompson_draws=17)
    loaded = LinUCB.load(io.BytesIO(_saved(model)))
    assert loaded.thompson_draws == 17
    assert _decisions(loaded) == _decisions(model)
