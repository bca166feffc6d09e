"""The benchmarks run and end with their JSON line (tiny settings; figures come from
running them in full, see README)."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import PYTHON, REPO, python_env


def _last_json(args: list[str], timeout: int = 300) -> dict:
    result = subprocess.run([PYTHON, *args], cwd=REPO, env=python_env(), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_render_overhead_bench():
    out = _last_json(["bench/render_overhead.py", "--size", "64", "--steps", "2",
                      "--rounds", "2"])
    assert out["median_overhead_ratio"] > 0.5 and out["size"] == 64


def test_bandit_speed_bench_quick():
    out = _last_json(["bench/bandit_speed.py", "--quick", "--seconds", "0.05"])
    row = out["results"]["d64_K100"]
    assert row["ours_select"] > 0 and row["ours_update"] > 0 and row["numpy_select"] > 0
    assert set(out["goals_met"]) == {"select_20x_mabwiser", "select_5x_vw",
                                      "update_200x_mabwiser"}


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


def test_reward_quality_bench():
    out = _last_json(["bench/reward_quality.py", "--impressions", "20000", "--prompts", "1"])
    for key in ("auc", "oracle_auc", "ece", "pairwise_acc", "oracle_pairwise_acc", "impressions"):
        assert key in out
    assert out["auc"] > out["constant_auc"] and out["impressions"] == 20000


def test_api_load_bench():
    out = _last_json(["bench/api_load.py", "--seconds", "3", "--rate", "100", "--clients", "2"])
    assert out["requests"] > 50 and out["errors"] == 0
    assert out["lost_updates"] == 0 and out["lost_after_restart"] == 0


def test_loop_bench():
    out = _last_json(["bench/loop.py", "--seeds", "1", "--rounds", "2", "--impressions", "300",
                      "--size", "64"], timeout=600)
    for key in ("fixed_ctr", "evolving_ctr", "diff_ci_low", "diff_ci_high", "rounds", "seeds"):
        assert key in out
    assert out["rounds"] == 2 and len(out["per_round"]) == 2
    assert out["per_round"][0]["diff"] == 0.0  # both pools are the same before evolving
