"""The benchmarks run and end with their JSON line (tiny settings; figures come from
running them in full, see README)."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import PYTHON, REPO, python_env, require


def _last_json(args: list[str], timeout: int = 300) -> dict:
    result = subprocess.run([PYTHON, *args], cwd=REPO, env=python_env(), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_render_overhead_bench():
    out = _last_json(["bench/render_overhead.py", "--size", "64", "--steps", "2",
                      "--rounds", "2"])
    # The studio's render is the pipeline call plus placement and compositing: never
    # much faster than the bare call (it would have skipped it), never a second call.
    assert 0.8 <= out["median_overhead_ratio"] <= 1.6 and out["size"] == 64


def test_bandit_speed_bench_quick():
    out = _last_json(["bench/bandit_speed.py", "--quick", "--seconds", "0.05"])
    row = out["results"]["d64_K100"]
    ratios = out["ratios_d64_K100"]
    # The packed float32 scoring is the point of the library: clearly faster than plain numpy.
    assert ratios["select_vs_numpy"] == pytest.approx(row["ours_select"] / row["numpy_select"], rel=0.01)
    assert ratios["select_vs_numpy"] > 2
    # Each goal is what its ratio says (a peer that is not installed counts as not met).
    for goal, (ratio, threshold) in {"select_20x_mabwiser": ("select_vs_mabwiser", 20),
                                     "select_5x_vw": ("select_vs_vw", 5),
                                     "update_200x_mabwiser": ("update_vs_mabwiser", 200)}.items():
        assert out["goals_met"][goal] is (ratios.get(ratio, 0) >= threshold)


def test_obd_replay_bench():
    from bandit import BanditError
    from bandit.obd import obd_root

    try:
        obd_root()
    except BanditError as exc:
        pytest.skip(f"Open Bandit Dataset sample not installed: {exc}")
    out = _last_json(["bench/obd_replay.py", "--resamples", "1"])
    assert out["rounds"] == 10_000 and set(out["results"]) >= {"random", "greedy", "linucb_a0.5"}
    if out["obp_agree_1e-9"] is not None:
        assert out["obp_agree_1e-9"] is True


def test_audience_prompts_bench():
    out = _last_json(["bench/audience_prompts.py", "--users", "3000", "--prompt-rounds", "1"])
    assert out["demo_ari"] >= 0.8 and out["template_prompts_per_s"] > 0


def test_api_load_bench():
    out = _last_json(["bench/api_load.py", "--seconds", "3", "--rate", "100", "--clients", "2"])
    assert out["requests"] > 50 and out["errors"] == 0 and out["store"] == "sqlite"
    assert out["lost_updates"] == 0 and out["lost_after_restart"] == 0
    assert out["acknowledged"] == out["rewards_in_log"] and out["replica_mismatch"] == 0


def test_api_load_bench_two_replicas_one_killed():
    """Two replicas on a throwaway PostgreSQL cluster, one killed with SIGKILL mid-load
    and restarted: nothing acknowledged is lost, both replicas hold the whole log."""
    from studio.store.throwaway import unavailable

    require("postgres", unavailable() is None, unavailable() or "")
    out = _last_json(["bench/api_load.py", "--replicas", "2", "--kill-after", "3",
                      "--seconds", "6", "--rate", "100", "--clients", "4"])
    assert out["store"] == "postgresql" and out["killed_at_s"] is not None
    assert out["acknowledged"] > 50 and out["lost_updates"] == 0
    assert out["replica_mismatch"] == 0 and out["lost_after_restart"] == 0


def test_evaluation_bench_quick():
    """The evidence bench end to end at toy scale: its figures hang together (oracle on
    top, intervals around their means, regret growing, goals computed from the figures)."""
    out = _last_json(["bench/evaluation.py", "--worlds", "2", "--impressions", "6000",
                      "--past-impressions", "20000", "--size", "64", "--per-cluster", "2",
                      "--top-m", "2", "--ope-chunks", "2", "--jobs", "1",
                      "--out", str(REPO / "bench-out" / "smoke")], timeout=900)
    assert out["worlds"] == 2 and out["impressions"] == 6000
    for ctr in (out["ctr"], out["ctr_no_drift"]):
        assert set(ctr) >= {"served", "greedy_prior", "random", "static", "thompson",
                            "epsilon_greedy", "linucb", "oracle_cluster", "oracle_user"}
        assert all(0.003 <= v <= 0.05 for v in ctr.values())
        assert ctr["oracle_cluster"] >= max(v for k, v in ctr.items() if not k.startswith("oracle"))
    lift = out["lift_vs_greedy_prior"]
    assert lift["ci_low"] <= lift["mean"] <= lift["ci_high"] and lift["worlds"] == 2
    assert lift["mean"] == pytest.approx(out["ctr"]["served"] / out["ctr"]["greedy_prior"] - 1, abs=0.05)
    regret = list(out["regret_at"].values())
    assert regret == sorted(regret) and regret[0] > 0
    assert all(0 <= v <= 1 for v in out["ope_coverage"].values())
    goals = out["goals_met"]
    assert goals["lift_ci_low_above_0_with_drift"] is (lift["ci_low"] > 0)
    assert goals["regret_ratio_at_most_0.5"] is (
        max(out["regret_ratio"], out["regret_ratio_no_drift"]) <= 0.5)
    assert goals["ope_coverage_90_to_98"] is all(0.9 <= v <= 0.98 for v in out["ope_coverage"].values())
    assert goals["pairwise_at_least_0.9_oracle"] is (out["reward_model"]["pairwise_ratio"] >= 0.9)


def test_watermark_survival_bench_quick():
    out = _last_json(["bench/watermark_survival.py", "--sizes", "512", "--prompts", "1"])
    survival = out["survival"]
    assert set(survival) >= {"png", "jpeg85", "half", "half, restored"}
    assert survival["png"]["512"] == 1.0  # an untouched file always decodes
    assert all(0.0 <= rates["512"] <= 1.0 for rates in survival.values())
    assert out["marked"]["512"] + out["skipped"]["512"] == 5


def test_signing_overhead_bench_quick():
    out = _last_json(["bench/signing_overhead.py", "--rounds", "1"])
    assert out["preset"] == "feed-4:5" and out["publish_ms"] > 0
    assert out["median_overhead_ratio"] == pytest.approx(
        (out["sign_ms"] + out["verify_ms"]) / out["publish_ms"], rel=0.05)


def test_loop_bench_quick():
    """The loop bench end to end at toy scale: every variant keeps the fixed pool's arm
    count, round 1 is the same pool on the same stream (difference 0), the intervals hold
    their means, and the goals are computed from the figures."""
    out = _last_json(["bench/loop.py", "--worlds", "2", "--rounds", "2", "--impressions", "3000",
                      "--past-impressions", "20000", "--judge-impressions", "5000",
                      "--conditions", "drift", "--size", "64", "--per-cluster", "2",
                      "--top-m", "2", "--jobs", "1", "--out", str(REPO / "bench-out" / "smoke-loop")],
                     timeout=900)
    variants = out["summary"]["drift"]["variants"]
    assert list(variants) == ["longer rounds only", "+ confident retirement", "+ refit reward model",
                              "+ inheritance and mutation"]
    for v in variants.values():
        assert v["arms_equal"] and len(v["lift_per_round"]) == 2
        assert v["lift_per_round"][0]["mean"] == 0.0  # same pool, same stream
        second = v["lift_per_round"][1]
        assert second["ci_low"] <= second["mean"] <= second["ci_high"]
        assert all(0 < r <= 1.5 for r in v["pairwise_ratio_per_round"])
    assert variants["longer rounds only"]["retired_per_round"][0] > 0  # the old rule always retires
    after = variants["+ inheritance and mutation"]["lift_per_round"][1]
    assert out["goals_met"]["lift_after_3_evolutions_at_least_4pct_ci_above_0"] is (
        after["mean"] >= 0.04 and after["ci_low"] > 0)
