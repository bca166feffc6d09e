"""Creative Studio web UI (Gradio Blocks): a thin face over ``studio.ui.workspace``.

    python app.py [--port 7860]

serves on 127.0.0.1 and prints the URL. Tabs follow the flow: Product → Audience →
Prompts → Render → Campaign → Export. Every error shows as one readable line at the top of
the page; nothing here holds logic of its own.

Why this module is long: ``build`` lays out every tab of the page in one function: Gradio
wires events to components inside one ``Blocks`` context, so the layout cannot be split
without passing every component around. The handlers above it are short and hold no logic
(they call ``Workspace``).
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from pipelines import check_size, max_side  # noqa: E402
from pipelines.engines import ENGINE_NAMES, EngineUnavailableError  # noqa: E402
from pipelines.fashion import CATEGORIES as FASHION_CATEGORIES  # noqa: E402
from studio.inputs.catalog import categories as known_categories, check_category  # noqa: E402
from studio.errors import USER_ERRORS, StudioError  # noqa: E402
from studio.serving.config import PLACEMENTS  # noqa: E402
from studio.simulation.report import COLOURS  # noqa: E402
from studio.ui.workspace import SHOWN_POLICIES, Workspace  # noqa: E402

FORMATS = list(PLACEMENTS)  # the ad formats, defined once in pipelines.placement
CAMPAIGN_NOTE = ("Clicks here come from a simulated world whose truth the studio cannot see "
                 "(demo audience only): a demonstration, not evidence — the evidence is "
                 "`bench/evaluation.py`, over many worlds.")


def categories() -> list[str]:
    return known_categories()


def _workspace(state: Workspace | None) -> Workspace:
    return state if state is not None else Workspace(tempfile.mkdtemp(prefix="studio-ui-"))


def _ok(message: str) -> str:
    return f"**Done:** {message}"


def _error(exc: Exception) -> str:
    return f"**Error:** {exc}"


def guarded(outputs: int):
    """Run a handler; on a studio error, show it and leave every other output as it was."""
    def wrap(function):
        @functools.wraps(function)  # keeps the signature: Gradio finds gr.Progress in it
        def handler(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except (*USER_ERRORS, EngineUnavailableError) as exc:
                return (_error(exc), *([gr.skip()] * outputs))
        return handler
    return wrap


@guarded(outputs=3)
def load_product(image, mask, category, title, state):
    """Load the product photo (and an optional mask file)."""
    category = check_category(category or "generic")  # it names a vocabulary file
    ws = _workspace(state)
    preview = ws.load_product(image, mask_path=mask, category=category, title=title or "")
    editor = {"background": ws.mask_image(), "layers": [], "composite": ws.mask_image()}
    return (_ok(f"product loaded ({ws.product.mask_source} mask, {ws.product.size[0]}x"
                f"{ws.product.size[1]})"), preview, editor, ws)


@guarded(outputs=2)
def apply_mask(edited, state):
    """Use the brushed mask (white = product)."""
    ws = _workspace(state)
    if not edited or edited.get("composite") is None:
        raise StudioError("paint the mask first")
    return _ok("mask updated"), ws.set_mask(edited["composite"]), ws


@guarded(outputs=2)
def fit_audience(users, k, state):
    """Cluster the uploaded user table, or the demo audience."""
    ws = _workspace(state)
    table = ws.fit_audience(users, k=int(k) or None)
    return _ok(f"{len(table)} clusters"), table, ws


@guarded(outputs=2)
def generate_prompts(generator, n, guidelines, model, base_url, state):
    """Write prompts for every cluster."""
    ws = _workspace(state)
    table = ws.generate_prompts(generator=generator, n=int(n), guidelines_path=guidelines,
                                model=model, base_url=base_url)
    fallbacks = int(table["source"].str.contains("fallback").sum())
    note = f" ({fallbacks} from the template fallback)" if fallbacks else ""
    return _ok(f"{len(table)} prompts{note}; edit them below before rendering"), table, ws


@guarded(outputs=3)
def render_creatives(table, formats, engine, size, state, progress=gr.Progress()):
    """Render every prompt in the chosen formats and score them."""
    check_size(size or None, formats or None)  # bounded, before the engine loads
    ws = _workspace(state)
    ws.edit_prompts(table)
    creatives = ws.render(formats=tuple(formats), engine=engine, size=size or None,
                          progress=progress)
    gallery = [(c["path"], _caption(c)) for c in creatives]
    message = _ok(f"{len(creatives)} creatives rendered with {engine}; {ws.scoring}")
    if ws.notice:
        message += f" — {ws.notice}"
    return message, gallery, None, ws


def _caption(c: dict) -> str:
    ctr = "n/a" if c["predicted_ctr"] is None else f"{c['predicted_ctr']:.2%}"
    return f"cluster {c['cluster']} · {c['format']} · predicted CTR {ctr}"


def show_manifest(state, event: gr.SelectData):
    """The manifest of the clicked creative."""
    ws = _workspace(state)
    creative = ws.creatives()[event.index]
    return creative["manifest"], creative["id"]


@guarded(outputs=1)
def set_approval(creative_id, approved, state):
    ws = _workspace(state)
    if not creative_id:
        raise StudioError("click a creative in the gallery first")
    ws.approve(creative_id, approved)
    return _ok(f"{creative_id} {'approved' if approved else 'rejected'}"), ws


@guarded(outputs=4)
def simulate(impressions, state):
    """Continue the simulated campaign: every policy serves the same impressions; the
    selection service learns from its clicks."""
    ws = _workspace(state)
    if impressions is None:
        raise StudioError("enter how many impressions to simulate")
    policies = ws.simulate(int(impressions))
    served = policies.set_index("policy")["true CTR"]
    message = _ok(f"{ws.impressions_served():,} impressions served so far; true CTR: selection "
                  f"service {served['service']}, greedy-on-prior {served['greedy_prior']}, "
                  f"per-cluster oracle {served['oracle_cluster']}")
    return message, policies, ws.ctr_curves(), ws.arm_table(), ws


@guarded(outputs=3)
def complete_outfit(items, category, history, engine, state):
    """Generate the missing item of an outfit for the history's taste (DiFashion)."""
    from studio.creatives.outfit import run_outfit

    ws = _workspace(state)
    if not items:
        raise StudioError("upload 1-3 fixed items of the outfit")
    manifest = run_outfit([Path(p) for p in items], category,
                          history=[Path(p) for p in history or []],
                          out=ws.root / "outfits", engine=engine, echo=lambda m: None)
    folder = ws.root / "outfits"
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in manifest["metrics"].items() if v is not None)
    return (_ok(f"outfit completed: {manifest['prompt']} ({metrics})"),
            str(folder / manifest["board"]), str(folder / manifest["image"]), ws)


@guarded(outputs=2)
def export(state):
    ws = _workspace(state)
    path = ws.export()
    return _ok(f"exported {path.name}"), str(path), ws


def build() -> gr.Blocks:
    with gr.Blocks(title="Creative Studio") as demo:
        state = gr.State(None)
        gr.Markdown("# Creative Studio\nPersonalised ad creatives with the product kept "
                    "pixel-fixed: product → audience → prompts → render → campaign → export.")
        status = gr.Markdown("Start with a product photo.", elem_id="status")
        with gr.Tab("Product", elem_id="tab-product"):
            with gr.Row():
                image = gr.File(label="Product photo (PNG, JPEG, WebP; transparency = mask)",
                                file_types=[".png", ".jpg", ".jpeg", ".webp"],
                                elem_id="product-image")
                mask = gr.File(label="Mask file (optional, white = product)",
                               file_types=["image"], elem_id="product-mask")
                with gr.Column():
                    category = gr.Dropdown(categories(), value="generic", label="Category",
                                           elem_id="product-category")
                    title = gr.Textbox(label="Title", elem_id="product-title")
                    load = gr.Button("Load product", variant="primary", elem_id="load-product")
            with gr.Row():
                preview = gr.Image(label="Mask preview (green = kept pixel-fixed)",
                                   interactive=False, elem_id="mask-preview")
                editor = gr.ImageEditor(type="numpy", label="Fix the mask with a brush",
                                        brush=gr.Brush(colors=["#ffffff", "#000000"]),
                                        elem_id="mask-editor")
            apply = gr.Button("Use the brushed mask", elem_id="apply-mask")
        with gr.Tab("Audience", elem_id="tab-audience"):
            users = gr.File(label="User table (.csv or .parquet); empty = the demo audience",
                            file_types=[".csv", ".parquet"], elem_id="users-file")
            k = gr.Slider(0, 10, value=0, step=1, label="Clusters (0 = choose by silhouette)")
            fit = gr.Button("Fit clusters", variant="primary", elem_id="fit-audience")
            clusters = gr.Dataframe(label="Clusters", interactive=False, elem_id="clusters")
        with gr.Tab("Prompts", elem_id="tab-prompts"):
            with gr.Row():
                generator = gr.Dropdown(["template", "llm", "openai"], value="template",
                                        label="Prompt writer")
                n = gr.Slider(1, 8, value=2, step=1, label="Prompts per cluster")
                guidelines = gr.File(label="Brand guidelines (YAML)", file_types=[".yaml", ".yml"])
            with gr.Row():
                model = gr.Textbox(label="Model (llm: id or folder; openai: name)")
                base_url = gr.Textbox(label="Base URL (openai-compatible)")
            write = gr.Button("Generate prompts", variant="primary", elem_id="generate-prompts")
            prompts = gr.Dataframe(label="Prompts (editable)", interactive=True,
                                   elem_id="prompts")
        with gr.Tab("Render", elem_id="tab-render"):
            with gr.Row():
                formats = gr.CheckboxGroup(FORMATS, value=["1:1"], label="Formats")
                engine = gr.Dropdown(list(ENGINE_NAMES), value="auto", label="Engine",
                                     elem_id="engine")
                size = gr.Textbox(value="", label="Size (long side or WxH; empty = 512)",
                                  info=f"multiples of 8, at most {max_side()} px")
            go = gr.Button("Render", variant="primary", elem_id="render")
            gallery = gr.Gallery(label="Creatives", columns=5, elem_id="gallery")
            with gr.Row():
                manifest = gr.JSON(label="Manifest of the clicked creative")
                with gr.Column():
                    chosen = gr.Textbox(label="Clicked creative", interactive=False)
                    approve = gr.Button("Approve")
                    reject = gr.Button("Reject")
        with gr.Tab("Campaign", elem_id="tab-campaign"):
            gr.Markdown(CAMPAIGN_NOTE, elem_id="campaign-note")
            with gr.Row():
                impressions = gr.Number(value=500, precision=0, label="Impressions to simulate")
                run = gr.Button("Simulate impressions (continues the campaign)",
                                variant="primary", elem_id="simulate")
            policies = gr.Dataframe(label="Policies on the same impressions (regret: expected "
                                          "clicks lost vs the per-cluster oracle)",
                                    interactive=False, wrap=True, elem_id="policies",
                                    column_widths=["13%", "9%", "13%", "11%", "7%", "11%", "36%"])
            chart = gr.LinePlot(x="impressions", y="true CTR %", color="policy",
                                color_map={p: COLOURS[p] for p in SHOWN_POLICIES},
                                y_title="true CTR so far (%)",
                                label="True CTR so far, per policy (colours as in the "
                                      "studio demo report)", elem_id="ctr-chart")
            arms = gr.Dataframe(label="Arms of the selection service", interactive=False,
                                elem_id="arms")
        with gr.Tab("Outfit", elem_id="tab-outfit"):
            with gr.Row():
                outfit_items = gr.File(label="Fixed items of the outfit (1-3 images)",
                                       file_count="multiple", file_types=["image"],
                                       elem_id="outfit-items")
                outfit_history = gr.File(label="The user's past items of the category",
                                         file_count="multiple", file_types=["image"],
                                         elem_id="outfit-history")
                with gr.Column():
                    outfit_category = gr.Dropdown(list(FASHION_CATEGORIES), value="shoes",
                                                  label="Item to generate")
                    outfit_engine = gr.Dropdown(list(ENGINE_NAMES), value="auto", label="Engine")
                    outfit_go = gr.Button("Complete the outfit", variant="primary",
                                          elem_id="complete-outfit")
            with gr.Row():
                outfit_board = gr.Image(label="Outfit board (fixed items untouched)",
                                        interactive=False)
                outfit_item = gr.Image(label="Generated item", interactive=False)
        with gr.Tab("Export", elem_id="tab-export"):
            export_button = gr.Button("Export approved creatives", variant="primary",
                                      elem_id="export")
            archive = gr.File(label="Zip of creatives, manifests and a CSV", elem_id="archive")

        load.click(load_product, [image, mask, category, title, state],
                   [status, preview, editor, state], api_name="load_product")
        apply.click(apply_mask, [editor, state], [status, preview, state], api_name="apply_mask")
        fit.click(fit_audience, [users, k, state], [status, clusters, state],
                  api_name="fit_audience")
        write.click(generate_prompts, [generator, n, guidelines, model, base_url, state],
                    [status, prompts, state], api_name="generate_prompts")
        go.click(render_creatives, [prompts, formats, engine, size, state],
                 [status, gallery, manifest, state], api_name="render")
        gallery.select(show_manifest, [state], [manifest, chosen])
        approve.click(lambda c, s: set_approval(c, True, s), [chosen, state], [status, state])
        reject.click(lambda c, s: set_approval(c, False, s), [chosen, state], [status, state])
        run.click(simulate, [impressions, state], [status, policies, chart, arms, state],
                  api_name="simulate")
        export_button.click(export, [state], [status, archive, state], api_name="export")
        outfit_go.click(complete_outfit, [outfit_items, outfit_category, outfit_history,
                                          outfit_engine, state],
                        [status, outfit_board, outfit_item, state], api_name="outfit")
    return demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description="Creative Studio web UI")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    args = parser.parse_args()
    port = args.port or free_port()
    print(f"Creative Studio UI: http://127.0.0.1:{port}", flush=True)
    build().launch(server_name="127.0.0.1", server_port=port, show_error=False,
                   allowed_paths=[tempfile.gettempdir()])


if __name__ == "__main__":
    main()
