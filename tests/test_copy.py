"""Ad copy: the layout step (safe zones, product untouched, contrast, the separate layer),
OCR read-back, the brand kit file, and the copy writers (template, llm, openai)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from pipelines.errors import InputError
from pipelines.ocr import read_back, read_text
from pipelines.overlay import (SAFE_ZONES, TextStyle, compose_copy, contrast_ratio, keep_out,
                               over, safe_rect)
from studio.errors import StudioError
from studio.inputs.audience import Audience
from studio.inputs.brand import BrandKit
from studio.inputs.catalog import ProductInfo
from studio.inputs.clusters import Cluster
from studio.inputs.guidelines import Guidelines
from studio.inputs.tables import load_users
from studio.prompts import (CTA_MAX, HEADLINE_MAX, AdCopy, TemplateCopyWriter, make_copy_writer,
                            parse_copy)
from test_prompts import FakeChatServer
from tiny_llm import build_tiny_llm

FONTS = REPO / "assets" / "brand" / "fonts"
HEADLINE = "Trail-ready mugs for campfire mornings"
CTA = "Shop now"
SIZES = {"1:1": (1080, 1080), "4:5": (1080, 1350), "9:16": (1080, 1920), "1.91:1": (1200, 628)}
MUG = ProductInfo("mug", "kitchenware", "blue enamel mug")


def style(logo: bool = True) -> TextStyle:
    mark = None
    if logo:
        mark = np.zeros((40, 120, 4), np.uint8)
        mark[..., 0], mark[..., 3] = 200, 255
    return TextStyle(FONTS / "LiberationSans-Bold.ttf", FONTS / "LiberationSans-Regular.ttf",
                     ((31, 58, 95), (255, 255, 255), (0, 0, 0)), (224, 122, 46), mark)


def background(kind: str, width: int, height: int) -> np.ndarray:
    if kind == "white":
        return np.full((height, width, 3), 255, np.uint8)
    if kind == "black":
        return np.zeros((height, width, 3), np.uint8)
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def product_mask(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return ((xx - width / 2) / (width * 0.2)) ** 2 + ((yy - height * 0.58) / (height * 0.2)) ** 2 < 1


# ------------------------------------------------------------------ layout
@pytest.mark.parametrize("fmt", [*SAFE_ZONES, "keep"])
@pytest.mark.parametrize("kind", ["white", "black", "noise"])
def test_copy_stays_in_the_safe_zone_off_the_product_and_legible(fmt, kind):
    width, height = (w // 2 for w in SIZES.get(fmt, (800, 600)))
    image, mask = background(kind, width, height), product_mask(width, height)
    layout = compose_copy(image, mask, format=fmt, style=style(), headline=HEADLINE, cta=CTA)
    x0, y0, x1, y1 = safe_rect(fmt, width, height)
    blocked = keep_out(mask)
    assert set(layout.boxes) == {"logo", "headline", "cta"}
    for name, (bx0, by0, bx1, by1) in layout.boxes.items():
        assert x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1, (name, layout.boxes[name])
        assert not blocked[by0:by1, bx0:bx1].any(), name
    assert np.array_equal(layout.image[mask], image[mask])  # product pixels unchanged
    assert (layout.layer[..., 3][blocked] == 0).all()
    assert set(layout.contrast) == {"headline", "cta"}
    assert all(ratio >= 4.5 for ratio in layout.contrast.values()), layout.contrast
    # A plain background needs no scrim; uniform noise does.
    assert layout.scrim["headline"] is (kind == "noise") and layout.scrim["cta"] is False
    # The layer alone, composited over the background, is the image.
    assert np.abs(over(image, layout.layer).astype(int) - layout.image).max() <= 1
    assert json.loads(json.dumps(layout.as_dict()))["boxes"]["cta"] == list(layout.boxes["cta"])


def test_9_16_keeps_the_story_interface_free():
    top, bottom, _, _ = SAFE_ZONES["9:16"]
    assert top >= 0.14 and bottom >= 0.20
    layout = compose_copy(background("white", 540, 960), product_mask(540, 960), format="9:16",
                          style=style(), headline=HEADLINE, cta=CTA)
    assert min(b[1] for b in layout.boxes.values()) >= 0.14 * 960
    assert max(b[3] for b in layout.boxes.values()) <= 0.80 * 960


def test_text_colour_is_the_brand_colour_when_it_contrasts():
    image = background("white", 540, 540)
    layout = compose_copy(image, product_mask(540, 540), format="1:1", style=style(False),
                          headline=HEADLINE, cta=None)
    x0, y0, x1, y1 = layout.boxes["headline"]
    ink = layout.image[y0:y1, x0:x1].reshape(-1, 3)
    darkest = ink[np.argmin(ink.sum(axis=1))]
    assert tuple(darkest) == (31, 58, 95)
    assert layout.contrast["headline"] == pytest.approx(float(contrast_ratio((31, 58, 95), (255,) * 3)), rel=1e-3)
    assert set(layout.boxes) == {"headline"}


def test_copy_goes_to_the_side_with_room():
    width, height = 960, 500
    mask = np.zeros((height, width), bool)
    mask[40:460, 40:420] = True  # the product fills the left: the copy goes right
    layout = compose_copy(background("white", width, height), mask, format="1.91:1",
                          style=style(), headline=HEADLINE, cta=CTA)
    assert all(box[0] >= 420 for box in layout.boxes.values())


@pytest.mark.parametrize("headline,mask_area,pattern", [
    (" ".join(["Extraordinarily long headline words"] * 4), 0.3, "does not fit beside the product"),
    (HEADLINE, 0.93, "does not fit beside the product"),
])
def test_copy_that_cannot_fit_fails_clearly(headline, mask_area, pattern):
    width = height = 540
    mask = np.zeros((height, width), bool)
    side = round(width * mask_area ** 0.5)
    start = (width - side) // 2
    mask[start:start + side, start:start + side] = True
    with pytest.raises(InputError, match=pattern):
        compose_copy(background("white", width, height), mask, format="1:1", style=style(),
                     headline=headline, cta=CTA)


@pytest.mark.parametrize("change,pattern", [
    ({"image": np.zeros((10, 10), np.uint8)}, "HxWx3 uint8"),
    ({"product_mask": np.zeros((10, 10), bool)}, "product_mask is 10x10 but the image is 100x100"),
    ({"product_mask": np.zeros((100, 100), np.uint8)}, "boolean array"),
    ({"format": "16:9"}, "unknown format '16:9'"),
    ({"headline": "  "}, "headline is empty"),
    ({"headline": "two\nlines"}, "must be one line"),
    ({"cta": 5}, "cta must be text"),
    ({"headline": None, "cta": None, "style": style(False)}, "nothing to lay out"),
    ({"style": TextStyle(Path("/nonexistent.ttf"), FONTS / "LiberationSans-Regular.ttf",
                         ((0, 0, 0),), (255, 0, 0))}, "cannot open font"),
])
def test_bad_layout_input_fails_clearly(change, pattern):
    args = {"image": background("white", 100, 100), "product_mask": np.zeros((100, 100), bool),
            "format": "1:1", "style": style(), "headline": "Hi", "cta": "Go"}
    args.update(change)
    image, mask = args.pop("image"), args.pop("product_mask")
    with pytest.raises(InputError, match=pattern):
        compose_copy(image, mask, **args)


@pytest.mark.parametrize("kwargs,pattern", [
    ({"text_colours": ()}, "at least one text colour"),
    ({"accent": (300, 0, 0)}, "integers 0..255"),
    ({"logo": np.zeros((4, 4, 3), np.uint8)}, "HxWx4 RGBA"),
])
def test_bad_text_style_fails_clearly(kwargs, pattern):
    args = {"headline_font": FONTS / "LiberationSans-Bold.ttf",
            "body_font": FONTS / "LiberationSans-Regular.ttf", "text_colours": ((0, 0, 0),),
            "accent": (255, 0, 0), **kwargs}
    with pytest.raises(InputError, match=pattern):
        TextStyle(**args)


# ------------------------------------------------------------------ OCR
@pytest.mark.parametrize("fmt,kind", [("1:1", "noise"), ("4:5", "white"), ("9:16", "black"),
                                      ("1.91:1", "noise")])
def test_rendered_copy_reads_back_exactly(fmt, kind):
    width, height = SIZES[fmt]
    layout = compose_copy(background(kind, width, height), product_mask(width, height),
                          format=fmt, style=BrandKit.default().text_style(),
                          headline=HEADLINE, cta=CTA)
    read_text(layout.image, layout.boxes["cta"])  # the engine is loaded once per process
    started = time.perf_counter()
    result = read_back(layout.image, layout.boxes, {"headline": HEADLINE, "cta": CTA})
    elapsed = time.perf_counter() - started
    assert result["ocr_match"] is True, result
    assert result["read"] == {"headline": HEADLINE, "cta": CTA}
    assert all(c > 0.9 for c in result["confidence"].values())
    assert elapsed < 2.0  # ~0.1 s on a 2-core machine; generous for shared CI


def test_wrong_expected_text_does_not_match():
    width, height = SIZES["1:1"]
    layout = compose_copy(background("white", width, height), product_mask(width, height),
                          format="1:1", style=style(), headline=HEADLINE, cta=CTA)
    result = read_back(layout.image, layout.boxes, {"headline": HEADLINE.lower(), "cta": CTA})
    assert result["ocr_match"] is False and result["read"]["headline"] == HEADLINE
    with pytest.raises(InputError, match="no layout box for price"):
        read_back(layout.image, layout.boxes, {"price": "9.99"})
    with pytest.raises(InputError, match="outside the 1080x1080 image"):
        read_text(layout.image, (0, 0, 2000, 10))


# ------------------------------------------------------------------ brand kit
def test_default_brand_kit_loads_and_checks_copy():
    kit = BrandKit.default()
    assert kit.colours["primary"] == (31, 58, 95) and "cheap" in kit.banned
    text_style = kit.text_style()
    assert text_style.text_colours[0] == kit.colours["primary"]
    assert text_style.logo.ndim == 3 and text_style.logo.shape[2] == 4
    assert json.loads(json.dumps(kit.as_dict()))["colours"]["accent"] == "#E07A2E"
    kit.check_copy("Cheaper than you think? No: honest.")  # a whole word only
    with pytest.raises(StudioError, match="banned word 'cheap'"):
        kit.check_copy("A CHEAP mug, for now")


def _kit(tmp_path, text: str) -> Path:
    fonts = tmp_path / "fonts"
    fonts.mkdir(exist_ok=True)
    for name in ("LiberationSans-Bold.ttf", "LiberationSans-Regular.ttf"):
        (fonts / name).write_bytes((FONTS / name).read_bytes())
    (tmp_path / "notafont.ttf").write_text("hello")
    (tmp_path / "logo.png").write_bytes(b"not a png")
    path = tmp_path / "kit.yaml"
    path.write_text(text)
    return path


GOOD = """name: Test
headline_font: fonts/LiberationSans-Bold.ttf
body_font: fonts/LiberationSans-Regular.ttf
colours:
  primary: "#112233"
  accent: "#FF8800"
"""


@pytest.mark.parametrize("text,pattern", [
    ("name: [unclosed\n", "not valid YAML"),
    (GOOD + "slogan: hi\n", "unknown keys slogan"),
    ("name: Test\n", "lacks colours"),
    (GOOD.replace('"#112233"', '"#12345"'), "colour primary is '#12345'"),
    (GOOD.replace('"#112233"', "#112233"), "colour primary is None"),
    (GOOD.replace('accent: "#FF8800"', 'other: "#FF8800"'), "colours lack accent"),
    (GOOD.replace("fonts/LiberationSans-Bold.ttf", "fonts/missing.ttf"), "headline_font .* does not exist"),
    (GOOD.replace("fonts/LiberationSans-Bold.ttf", "notafont.ttf"), "cannot be opened"),
    (GOOD + "logo: missing.png\n", "logo .* does not exist"),
    (GOOD + "logo: logo.png\n", "not a readable PNG"),
    (GOOD + "banned: [1]\n", "banned must be a list of words"),
])
def test_bad_brand_kit_fails_clearly(tmp_path, text, pattern):
    with pytest.raises(StudioError, match=pattern):
        BrandKit.load(_kit(tmp_path, text))


def test_brand_kit_paths_are_relative_to_the_file_and_a_missing_file_is_named(tmp_path):
    kit = BrandKit.load(_kit(tmp_path, GOOD))
    assert kit.headline_font == (tmp_path / "fonts" / "LiberationSans-Bold.ttf").resolve()
    assert kit.logo is None and kit.text_style().logo is None
    with pytest.raises(StudioError, match="does not exist"):
        BrandKit.load(tmp_path / "none.yaml")


# ------------------------------------------------------------------ copy writers
@pytest.fixture(scope="module")
def clusters():
    return Audience(5).fit(load_users(REPO / "assets" / "demo" / "users.csv")).clusters_


def test_template_copy_is_deterministic_per_seed_and_differs_between_clusters(clusters):
    writer = make_copy_writer("template", brand=BrandKit.default())
    a = writer.write(MUG, clusters[0], 4, seed=1)
    assert a == writer.write(MUG, clusters[0], 4, seed=1)
    assert a != writer.write(MUG, clusters[0], 4, seed=2)
    assert len({c.headline for c in a}) == 4
    per_cluster = {c.id: tuple(writer.write(MUG, c, 3, seed=0)) for c in clusters}
    assert len(set(per_cluster.values())) == len(clusters)
    assert any(i in " ".join(c.headline for c in per_cluster[0]).lower()
               for i in clusters[0].interests[:4])
    for copies in per_cluster.values():
        for copy in copies:
            assert 0 < len(copy.headline) <= HEADLINE_MAX and 0 < len(copy.cta) <= CTA_MAX
            assert copy.fallback is None and copy.as_dict()["headline"] == copy.headline


def test_template_copy_never_uses_banned_words(clusters):
    rules = Guidelines.from_dict({"banned_words": ["lovers", "ready"]})
    brand = BrandKit.default()  # bans cheap, discount, guaranteed
    writer = TemplateCopyWriter(rules, brand)
    for cluster in clusters:
        for copy in writer.write(MUG, cluster, 8, seed=3):
            text = f"{copy.headline} {copy.cta}".lower()
            assert not any(w in text.split() for w in ("lovers", "ready", "cheap"))
            brand.check_copy(copy.headline)


def test_parse_copy_accepts_json_or_lines_and_rejects_the_rest():
    rules = Guidelines.from_dict({"banned_words": ["cheap"]})
    good = 'Here: {"copies": ["Camp coffee, done right | Shop now", "Made for trails | Get yours"]}'
    assert parse_copy(good, 2, rules) == (
        [AdCopy("Camp coffee, done right", "Shop now"), AdCopy("Made for trails", "Get yours")], None)
    assert parse_copy("Made for trails | Get yours\nnoise", 1, rules)[0] == [
        AdCopy("Made for trails", "Get yours")]
    for answer, reason in [("nothing useful", "no 'HEADLINE | CTA'"),
                           ('{"copies": ["A cheap mug | Buy"]}', "banned word 'cheap'"),
                           ('{"copies": ["' + "x" * 50 + ' | Buy"]}', "over 40"),
                           ('{"copies": ["Nice mug | Go to http://x.io"]}', "not plain copy"),
                           ('{"copies": ["no separator here"]}', "is not 'HEADLINE | CTA'"),
                           ('{"copies": [" | Buy"]}', "empty headline")]:
        copies, why = parse_copy(answer, 1, rules)
        assert copies == [] and reason in why, (answer, why)


@pytest.fixture
def chat_server():
    server = FakeChatServer()
    yield server
    server.close()


def test_openai_copy_writer_uses_valid_answers_and_falls_back(chat_server, clusters, caplog):
    brand = BrandKit.default()
    chat_server.script = [(200, json.dumps({"copies": [
        "Coffee that climbs with you | Shop now", "Your campsite ritual | Get yours"]}), 0)]
    writer = make_copy_writer("openai", brand=brand, base_url=chat_server.url, model="m",
                              retries=1, backoff=0.0)
    copies = writer.write(MUG, clusters[0], 2, seed=4)
    assert copies == [AdCopy("Coffee that climbs with you", "Shop now"),
                      AdCopy("Your campsite ritual", "Get yours")]
    body = chat_server.requests[0]["body"]
    assert body["seed"] == 4 and "cheap" in body["messages"][0]["content"]
    assert '"Northwind Goods"' in body["messages"][1]["content"]
    # Banned or over-long answers twice: the template fills in and says why.
    chat_server.script = [(200, json.dumps({"copies": ["A cheap mug | Buy"]}), 0),
                          (200, json.dumps({"copies": ["y" * 60 + " | Buy"]}), 0)]
    with caplog.at_level(logging.WARNING, logger="studio.prompts"):
        copies = writer.write(MUG, clusters[0], 2, seed=0)
    expected = TemplateCopyWriter(brand=brand).write(MUG, clusters[0], 2, seed=0)
    assert [(c.headline, c.cta) for c in copies] == [(c.headline, c.cta) for c in expected]
    assert all(c.fallback.startswith("openai:") and "over 40" in c.fallback for c in copies)
    assert "copy writer fell back to the template" in caplog.text


def test_llm_copy_writer_runs_the_tiny_model_and_falls_back(tmp_path, clusters):
    writer = make_copy_writer("llm", model=str(build_tiny_llm(tmp_path / "tiny")), retries=0,
                              max_new_tokens=16)
    copies = writer.write(MUG, clusters[1], 2, seed=0)
    assert len(copies) == 2 and all(c.fallback and c.fallback.startswith("llm:") for c in copies)


def test_make_copy_writer_validates_its_options():
    with pytest.raises(StudioError, match="needs --base-url and --model"):
        make_copy_writer("openai", model="m")
    with pytest.raises(StudioError, match="unknown copy writer 'gpt'"):
        make_copy_writer("gpt")
    with pytest.raises(StudioError, match="takes no options"):
        make_copy_writer("template", retries=2)
    with pytest.raises(StudioError, match="n must be an integer"):
        TemplateCopyWriter().write(MUG, Cluster(0, 1, 1.0, [], {}, {}, "", [0.0]), 0)


def test_a_kit_without_fonts_uses_the_bundled_family(tmp_path):
    path = tmp_path / "kit.yaml"
    path.write_text('name: Plain\ncolours:\n  primary: "#222222"\n  accent: "#FFCC00"\n')
    kit = BrandKit.load(path)
    assert kit.headline_font.name == "LiberationSans-Bold.ttf" and kit.headline_font.is_file()
    assert kit.body_font.name == "LiberationSans-Regular.ttf" and kit.logo is None
