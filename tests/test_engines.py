"""Every engine × mode × format keeps the product bit-identical; seeds, batching,
ControlNet, LCM-LoRA, schedulers, progress and the `auto` fallback."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from conftest import PYTHON, draw_cutout, draw_photo, python_env
from pipelines import CreativeRenderer, FORMATS, place, product_from_arrays
from pipelines.engines import (
    EngineUnavailableError,
    RenderCancelled,
    load_engine,
)

PROMPT = "on a white marble table, soft morning light"


def _products():
    rgba = draw_cutout(64, 64)
    rgb, truth = draw_photo(64, 64)
    return {
        "cutout": product_from_arrays(rgba[..., :3], rgba[..., 3], mask_source="alpha"),
        "photo": product_from_arrays(rgb, truth, mask_source="file"),
    }


CASES = [(fmt, mode) for fmt in ["keep", *FORMATS] for mode in ("inpaint", "outpaint")
         if not (fmt == "keep" and mode == "outpaint")]


@pytest.mark.parametrize("engine_fixture", ["backdrop_engine", "tiny_engine",
                                            "tiny_controlnet_engine"])
@pytest.mark.parametrize("fmt,mode", CASES)
def test_product_region_is_bit_identical(request, engine_fixture, fmt, mode):
    engine = request.getfixturevalue(engine_fixture)
    renderer = CreativeRenderer(engine, mode=mode)
    for name, product in _products().items():
        if fmt == "keep":
            placed = place(product, "keep")
        else:
            placed = place(product, fmt, size=64, area=0.12 if mode == "outpaint" else 0.3)
        creative = renderer(placed, PROMPT, seeds=[3], steps=2)[0]
        assert creative.image.shape == placed.rgb.shape
        assert np.array_equal(creative.image[placed.mask], placed.rgb[placed.mask]), name
        if fmt == "keep":  # the placed layer is the input image itself
            assert np.array_equal(creative.image[product.mask], product.rgb[product.mask])
        # Something was generated outside what is kept.
        generated = ~creative.kept
        assert generated.any()


@pytest.mark.parametrize("engine_fixture", ["backdrop_engine", "tiny_engine"])
def test_same_seed_same_image_different_seed_different_image(request, engine_fixture):
    engine = request.getfixturevalue(engine_fixture)
    placed = place(_products()["cutout"], "1:1", size=64)
    renderer = CreativeRenderer(engine)
    a = renderer(placed, PROMPT, seeds=[7], steps=2)[0].image
    b = renderer(placed, PROMPT, seeds=[7], steps=2)[0].image
    c = renderer(placed, PROMPT, seeds=[8], steps=2)[0].image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_n_images_come_from_one_batched_pipeline_call(tiny_engine, monkeypatch):
    calls = []
    pipe_class = type(tiny_engine.pipe)
    original = pipe_class.__call__

    def counting(self, *args, **kwargs):
        calls.append(kwargs["num_images_per_prompt"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pipe_class, "__call__", counting)
    placed = place(_products()["cutout"], "1:1", size=64)
    creatives = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[10, 11, 12], steps=2)
    assert calls == [3]
    assert [c.seed for c in creatives] == [10, 11, 12]
    images = [c.image for c in creatives]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])
    for creative in creatives:
        assert np.array_equal(creative.image[placed.mask], placed.rgb[placed.mask])


def test_canvas_not_divisible_by_8_is_padded_for_diffusion_and_cropped_back(tiny_engine):
    rgba = draw_cutout(60, 52)
    product = product_from_arrays(rgba[..., :3], rgba[..., 3], mask_source="alpha")
    placed = place(product, "keep")
    creative = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=2)[0]
    assert creative.image.shape == (52, 60, 3)
    assert np.array_equal(creative.image[product.mask], product.rgb[product.mask])


def test_controlnet_engine_uses_the_controlnet_pipeline(tiny_controlnet_engine, tiny_engine):
    info = tiny_controlnet_engine.describe()
    assert info["pipeline"] == "StableDiffusionControlNetInpaintPipeline"
    assert info["controlnet_id"]
    placed = place(_products()["cutout"], "1:1", size=64)
    with_cn = CreativeRenderer(tiny_controlnet_engine)(placed, PROMPT, seeds=[1], steps=2)[0]
    without = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=2)[0]
    assert not np.array_equal(with_cn.image, without.image)
    with pytest.raises(ValueError, match="control_image"):
        tiny_controlnet_engine(placed.rgb, ~placed.mask, PROMPT, seeds=[1], steps=1)


def test_lcm_lora_loads_and_switches_to_the_lcm_scheduler(tiny_engine):
    lcm_engine, _ = load_engine("tiny", lcm=True)
    info = lcm_engine.describe()
    assert info["scheduler"] == "LCMScheduler" and info["lora"]
    assert lcm_engine.default_guidance == 1.5
    placed = place(_products()["cutout"], "1:1", size=64)
    lcm = CreativeRenderer(lcm_engine)(placed, PROMPT, seeds=[1], steps=2)[0]
    plain = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=2)[0]
    assert not np.array_equal(lcm.image, plain.image)
    assert np.array_equal(lcm.image[placed.mask], placed.rgb[placed.mask])


def test_scheduler_choice_is_applied_and_validated(tiny_engine):
    placed = place(_products()["cutout"], "1:1", size=64)
    before = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=2)[0].image
    engine, _ = load_engine("tiny", scheduler="euler")
    CreativeRenderer(engine)(placed, PROMPT, seeds=[1], steps=2)
    assert engine.describe()["scheduler"] == "EulerDiscreteScheduler"
    # The engine without a choice shares the cached pipeline and gets its own back.
    after = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=2)[0].image
    assert tiny_engine.describe()["scheduler"] == "DDIMScheduler"
    assert np.array_equal(before, after)
    with pytest.raises(ValueError, match="unknown scheduler 'fast'"):
        load_engine("tiny", scheduler="fast")
    with pytest.raises(ValueError, match="unknown engine 'dalle'"):
        load_engine("dalle")


def test_progress_callback_sees_every_step_and_can_cancel(tiny_engine):
    placed = place(_products()["cutout"], "1:1", size=64)
    seen = []
    CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=3,
                                  callback=lambda step, total: seen.append((step, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(RenderCancelled):
        CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=3,
                                      callback=lambda step, total: True)
    # The cached pipeline is usable again after a cancel.
    again = CreativeRenderer(tiny_engine)(placed, PROMPT, seeds=[1], steps=2)[0]
    assert np.array_equal(again.image[placed.mask], placed.rgb[placed.mask])


def test_sd_and_auto_load_a_local_pipeline_folder(tiny_engine):
    folder = tiny_engine.model_id
    sd, notice = load_engine("sd", model_id=folder)
    assert sd.name == "sd" and notice is None and sd.pipe is tiny_engine.pipe  # cached
    auto, notice = load_engine("auto", model_id=folder)
    assert auto.name == "sd" and notice is None


def test_sd_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(EngineUnavailableError, match="cannot load"):
        load_engine("sd", model_id=str(tmp_path / "no-such-model"))


@pytest.mark.parametrize("env", [
    {"HF_HUB_OFFLINE": "1"},
    {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"},  # nothing listens there
])
def test_auto_falls_back_to_backdrop_fast_with_one_notice(env):
    code = (
        "import sys, time; t = time.time()\n"
        "from pipelines.engines import load_engine\n"
        "engine, notice = load_engine('auto')\n"
        "print(engine.name); print(notice); print('diffusers' in sys.modules)\n"
        "print(round(time.time() - t, 2))\n"
    )
    started = time.time()
    result = subprocess.run([PYTHON, "-c", code], env=python_env(**env), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    name, notice, imported_diffusers, seconds = result.stdout.strip().splitlines()
    assert name == "backdrop"
    assert notice.startswith("Preview: no diffusion weights on this machine")
    assert "(Why: " in notice and "Errno" not in notice
    assert imported_diffusers == "False"  # nothing heavy loaded to find out
    assert float(seconds) < 5 and time.time() - started < 30
    assert "Traceback" not in result.stderr
