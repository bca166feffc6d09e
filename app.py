"""Creative Studio web UI (Gradio Blocks): a thin face over ``studio.ui.workspace``.

    python app.py [--port 7860]

serves on 127.0.0.1 and prints the URL. Tabs follow the flow: Product → Audience →
Prompts → Render → Campaign → Export (and Outfit). Every error shows as one readable line at
the top of the page (no server paths); a result that does not match the request (a preview,
a warning in its manifest) shows a warning banner above it, never "Done" alone. A tab
whose results an upstream change made out of date says so at its top. Nothing here holds
logic of its own (``studio.ui``).

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
from pipelines.placement import ANCHORS  # noqa: E402
from studio.simulation.report import COLOURS  # noqa: E402
from studio.ui.images import mask_from_editor  # noqa: E402
from studio.ui.text import (choice, done, error, formats_of, gallery_items,  # noqa: E402
                            preset_choices, warned)
from studio.ui.workspace import SHOWN_POLICIES, Workspace  # noqa: E402

CAMPAIGN_NOTE = ("Clicks here come from a simulated world whose truth the studio cannot see "
                 "(demo audience only): a demonstration, not evidence — the evidence is "
                 "`bench/evaluation.py`, over many worlds.")


#: Gallery captions wrap instead of being cut ("predicted CTR 3…").
CSS = "#gallery .caption-label { white-space: normal; overflow: visible; }"


def categories() -> list[str]:
    return known_categories()


def _workspace(state: Workspace | None) -> Workspace:
    return state if state is not None else Workspace(tempfile.mkdtemp(prefix="studio-ui-"))


def _notes(ws: Workspace) -> tuple[str, str, str, str]:
    """The out-of-date notes of the Prompts, Render, Campaign and Export tabs."""
    notes = ws.notes()
    return notes["prompts"], notes["render"], notes["campaign"], notes["export"]


def _picks(ws: Workspace, value=None):
    """The creatives' table and the two creative pickers (Render tab, compare)."""
    options = [choice(c) for c in ws.creatives()]
    ids = {v for _, v in options}
    return (ws.creative_table(), gr.update(choices=options, value=value if value in ids else None),
            gr.update(choices=options, value=None))


def guarded(outputs: int):
    """Run a handler; on a studio error, show it (no server paths) and leave every other
    output as it was."""
    def wrap(function):
        @functools.wraps(function)  # keeps the signature: Gradio finds gr.Progress in it
        def handler(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except (*USER_ERRORS, EngineUnavailableError) as exc:
                return (error(exc), *([gr.skip()] * outputs))
        return handler
    return wrap


@guarded(outputs=7)
def load_product(image, mask, category, title, state):
    """Load the product photo (and an optional mask file)."""
    category = check_category(category or "generic")  # it names a vocabulary file
    ws = _workspace(state)
    preview = ws.load_product(image, mask_path=mask, category=category, title=title or "")
    return (done(f"product loaded ({ws.product.mask_source} mask, {ws.product.size[0]}x"
                 f"{ws.product.size[1]})"), preview, ws.editor(), *_notes(ws), ws)


@guarded(outputs=6)
def apply_mask(edited, state):
    """Use the brushed mask layer (painted = product)."""
    ws = _workspace(state)
    preview = ws.set_mask(mask_from_editor(edited))
    return done("mask updated from the brushed layer"), preview, *_notes(ws), ws


@guarded(outputs=6)
def fit_audience(users, k, state):
    """Cluster the uploaded user table, or (none uploaded) the demo audience."""
    ws = _workspace(state)
    table = ws.fit_audience(users, k=int(k) or None)
    own = (" — your own audience: creatives are scored by the demo reward model and "
           "Simulate is off (Campaign tab)" if ws.own_audience() else "")
    stale = " The prompts and creatives are now out of date (see their tabs)." \
        if ws.stale else ""
    return done(f"{len(table)} clusters of {ws.audience_source}{own}.{stale}"), table, \
        *_notes(ws), ws


@guarded(outputs=4)
def load_brand_kit(kit, state):
    """Use an uploaded brand kit for the copy (none: the bundled example kit)."""
    ws = _workspace(state)
    summary = ws.load_brand_kit(kit)
    return done(f"{summary} (used for the headline and CTA of the next render)"), \
        *_notes(ws)[1:], ws


@guarded(outputs=6)
def generate_prompts(generator, n, guidelines, model, base_url, current, replace_all, state,
                     copy=True):
    """Write prompts (and, with ``copy``, a headline and CTA each) for every cluster,
    keeping the rows the user edited unless ``replace_all``."""
    ws = _workspace(state)
    table = ws.generate_prompts(generator=generator, n=int(n), guidelines_path=guidelines,
                                model=model, base_url=base_url, current=current,
                                replace_all=bool(replace_all), copy=bool(copy))
    fallbacks = int(table["source"].str.contains("fallback").sum())
    kept = int((table["source"] == "edited").sum())
    note = (f" ({fallbacks} from the template fallback)" if fallbacks else "") + \
        (f"; kept your {kept} edited prompt(s) — tick 'Replace my edits too' to rewrite "
         "them" if kept else "")
    return done(f"{len(table)} prompts{note}; edit them below before rendering"), table, \
        *_notes(ws), ws


@guarded(outputs=11)
def render_creatives(table, presets, engine, size, state, area=0.3, anchor="bottom",
                     copy=True, progress=gr.Progress()):
    """Render every prompt in the chosen presets (with its headline and CTA laid over
    it, when ``copy``) and score them."""
    check_size(size or None, formats_of(presets) or None)  # bounded, before the engine loads
    ws = _workspace(state)
    changes = ws.edit_prompts(table)
    creatives = ws.render(presets=tuple(presets or ()), engine=engine, size=size or None,
                          area=float(area), anchor=anchor, copy=bool(copy), progress=progress)
    rules = (f" Brand rules changed {len(changes)} prompt(s), shown in the Prompts tab: "
             + "; ".join(changes) + "." if changes else "")
    with_copy = [c for c in creatives if c["copy"]]
    read = sum(c["copy"]["ocr_match"] for c in with_copy)
    copy_line = (f" The copy read back exactly with OCR on {read} of {len(with_copy)}."
                 if with_copy else "")
    message = (f"{len(creatives)} creatives rendered with {engine}, all pending approval; "
               f"{ws.scoring}.{copy_line}{rules}")
    return (warned(message, ws.notices()), gallery_items(creatives), None, *_picks(ws),
            ws.prompts, *_notes(ws), ws)


def pick_from_gallery(state, event: gr.SelectData):
    """The clicked thumbnail becomes the picked creative."""
    return _workspace(state).creatives()[event.index]["id"]


def show_manifest(creative_id, state):
    """The manifest of the picked creative (none picked: nothing)."""
    return _workspace(state).manifest(creative_id)


@guarded(outputs=5)
def set_state(creative_id, new_state, state):
    """Approve, reject or reset one creative; its caption shows the new state."""
    ws = _workspace(state)
    if not creative_id:
        raise StudioError("pick a creative first (click its thumbnail)")
    ws.set_state(creative_id, new_state)
    counts = ws.counts()
    return (done(f"creative {ws.creative(creative_id)['number']} {new_state}; "
                 f"{counts['approved']} approved, {counts['pending']} pending, "
                 f"{counts['rejected']} rejected"),
            gallery_items(ws.creatives()), *_picks(ws, creative_id), ws)


def approve(creative_id, state):
    return set_state(creative_id, "approved", state)


def reject(creative_id, state):
    return set_state(creative_id, "rejected", state)


@guarded(outputs=5)
def override_block(creative_id, reviewer, reason, state):
    """A reviewer lets the picked blocked creative through, with a recorded reason."""
    ws = _workspace(state)
    if not creative_id:
        raise StudioError("pick a creative first (click its thumbnail)")
    ws.override_safety(creative_id, reviewer, reason)
    return (done(f"creative {ws.creative(creative_id)['number']} overridden by "
                 f"{reviewer.strip()}: pending approval; it joins the arms at the next render"),
            gallery_items(ws.creatives()), *_picks(ws, creative_id), ws)


@guarded(outputs=5)
def approve_all(state):
    ws = _workspace(state)
    count = ws.approve_all()
    return (done(f"{count} pending creatives approved; {ws.counts()['approved']} approved "
                 "in all"), gallery_items(ws.creatives()), *_picks(ws), ws)


@guarded(outputs=5)
def vary(creative_id, n, replace, state, progress=gr.Progress()):
    """New seeds of the picked creative: ``n`` variations, or (``replace``) one that
    takes its place."""
    ws = _workspace(state)
    if not creative_id:
        raise StudioError("pick a creative first (click its thumbnail)")
    new = ws.vary(creative_id, int(n), replace=bool(replace), progress=progress)
    what = "regenerated with a new seed" if replace else f"{len(new)} variation(s) added"
    message = f"creative {what}, pending approval"
    return (warned(message, ws.notices()), gallery_items(ws.creatives()),
            *_picks(ws, new[0] if replace else creative_id), ws)


@guarded(outputs=3)
def compare(first, second, state):
    """Two creatives side by side."""
    ws = _workspace(state)
    if not first or not second:
        raise StudioError("pick two creatives to compare")
    return (done("compared"), ws.creative(first)["path"], ws.creative(second)["path"],
            ws.compare(first, second), ws)


@guarded(outputs=4)
def simulate(impressions, state):
    """Continue the simulated campaign: every policy serves the same impressions; the
    selection service learns from its clicks."""
    ws = _workspace(state)
    if impressions is None:
        raise StudioError("enter how many impressions to simulate")
    policies = ws.simulate(int(impressions))
    served = policies.set_index("policy")["true CTR"]
    message = done(f"{ws.impressions_served():,} impressions served so far; true CTR: "
                   f"selection service {served['service']}, greedy-on-prior "
                   f"{served['greedy_prior']}, per-cluster oracle {served['oracle_cluster']}")
    return message, policies, ws.ctr_curves(), ws.arm_table(), ws


@guarded(outputs=3)
def evolve_pool(candidates, min_impressions, state):
    """One round of the learning loop on the clicks so far: condemned arms out, the
    winners' children in (scored by the refitted reward model)."""
    ws = _workspace(state)
    if candidates is None or min_impressions is None:
        raise StudioError("enter the candidates per pool and the impressions an arm is given")
    table = ws.evolve_pool(candidates=int(candidates), min_impressions=int(min_impressions))
    last = ws.loop[-1]
    message = done(f"round {last['round']} of the learning loop: {len(last['changes'])} arms "
                   f"replaced; the service's true CTR over the {last['impressions']:,} "
                   f"impressions before it was {100 * last['true CTR']:.2f}%")
    chart = table[["round", "true CTR %"]].assign(series="selection service")
    return message, table, chart, ws


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
    notice = (manifest.get("preview") or {}).get("notice")
    warnings = [*([notice] if notice else []), *manifest.get("warnings", [])]
    return (warned(f"outfit completed: {manifest['prompt']} ({metrics})", warnings),
            str(folder / manifest["board"]), str(folder / manifest["image"]), ws)


@guarded(outputs=2)
def export(state):
    ws = _workspace(state)
    path, summary = ws.export()
    return done(summary), str(path), ws


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
                preview = gr.Image(label="Kept pixel-fixed: the product as cut out (checkerboard "
                                         "= generated background, green line = mask edge)",
                                   format="png", interactive=False, elem_id="mask-preview")
                editor = gr.ImageEditor(
                    type="numpy", image_mode="RGBA", format="png", elem_id="mask-editor",
                    label="Fix the mask: paint the green layer over the product, erase "
                          "where it is not the product",
                    brush=gr.Brush(colors=["#00c800"], color_mode="fixed"), eraser=gr.Eraser(),
                    layers=gr.LayerOptions(allow_additional_layers=False,
                                           layers=["Product mask"]))
            apply = gr.Button("Use the brushed mask", elem_id="apply-mask")
        with gr.Tab("Audience", elem_id="tab-audience"):
            users = gr.File(label="User table (.csv, .tsv or .parquet with a user_id column); "
                                  "leave empty for the demo audience", elem_id="users-file")
            k = gr.Slider(0, 10, value=0, step=1, label="Clusters (0 = choose by silhouette)")
            fit = gr.Button("Fit clusters", variant="primary", elem_id="fit-audience")
            clusters = gr.Dataframe(label="Clusters", interactive=False, wrap=True,
                                    elem_id="clusters")
        with gr.Tab("Prompts", elem_id="tab-prompts"):
            prompts_note = gr.Markdown("", elem_id="prompts-note")
            with gr.Row():
                generator = gr.Dropdown(["template", "llm", "openai"], value="template",
                                        label="Prompt writer")
                n = gr.Slider(1, 8, value=2, step=1, label="Prompts per cluster",
                              elem_id="prompts-per-cluster")
                guidelines = gr.File(label="Brand guidelines (YAML)", file_types=[".yaml", ".yml"])
            with gr.Row():
                model = gr.Textbox(label="Model (llm: hub id, folder or .gguf file — "
                                         "empty: the bundled SmolLM2-135M-Instruct; "
                                         "openai: model name)")
                base_url = gr.Textbox(label="Base URL (openai-compatible)")
            with gr.Row():
                brand_kit = gr.File(label="Brand kit: a YAML file (colours, tone, banned "
                                          "words) or a zip of its folder (with logo and "
                                          "fonts); empty = the example kit",
                                    file_types=[".yaml", ".yml", ".zip"], elem_id="brand-kit")
                use_kit = gr.Button("Use this brand kit", elem_id="use-brand-kit")
                write_copy = gr.Checkbox(True, label="Write a headline and a call to action "
                                                     "for each prompt", elem_id="write-copy")
            with gr.Row():
                write = gr.Button("Generate prompts", variant="primary",
                                  elem_id="generate-prompts")
                replace_all = gr.Checkbox(False, label="Replace my edits too (otherwise edited "
                                                       "rows are kept)", elem_id="replace-all")
            prompts = gr.Dataframe(label="Prompts, headlines and calls to action (editable; "
                                         "brand rules are applied when you render, and the "
                                         "changes shown)",
                                   interactive=True, wrap=True, elem_id="prompts")
        with gr.Tab("Render", elem_id="tab-render"):
            render_note = gr.Markdown("", elem_id="render-note")
            with gr.Row():
                presets = gr.CheckboxGroup(preset_choices(), value=["feed-4:5"],
                                           label="Platform presets (exact sizes)",
                                           elem_id="presets")
                with gr.Column():
                    engine = gr.Dropdown(list(ENGINE_NAMES), value="auto", label="Engine",
                                         elem_id="engine")
                    size = gr.Textbox(value="", label="Quick preview size (empty = the "
                                                      "preset's exact size)",
                                      info=f"long side or WxH, multiples of 8, at most "
                                           f"{max_side()} px", elem_id="size")
            with gr.Row():
                area = gr.Slider(0.05, 0.8, value=0.3, step=0.05, elem_id="area",
                                 label="Product size (share of the canvas)")
                anchor = gr.Dropdown(list(ANCHORS), value="bottom", label="Product position",
                                     elem_id="anchor")
                overlay = gr.Checkbox(True, label="Lay the headline and CTA over the creatives "
                                                  "(off the product, read back with OCR)",
                                      elem_id="copy-overlay")
            go = gr.Button("Render", variant="primary", elem_id="render")
            gallery = gr.Gallery(label="Creatives (click one to pick it)", columns=5,
                                 object_fit="contain", height="auto", allow_preview=True,
                                 elem_id="gallery")
            table = gr.Dataframe(label="All creatives: predicted CTR and approval state",
                                 interactive=False, wrap=True, elem_id="creatives-table")
            with gr.Row():
                pick = gr.Dropdown([], label="Picked creative", elem_id="creative-pick")
                approve_button = gr.Button("Approve", variant="primary", elem_id="approve")
                reject_button = gr.Button("Reject", elem_id="reject")
                approve_rest = gr.Button("Approve all pending", elem_id="approve-all")
            with gr.Row():
                reviewer = gr.Textbox(label="Reviewer", elem_id="override-reviewer")
                override_reason = gr.Textbox(label="Why the picked blocked creative may be "
                                             "served (recorded)", elem_id="override-reason")
                override_button = gr.Button("Override the safety block",
                                            elem_id="override")
            with gr.Row():
                variations = gr.Slider(1, 8, value=2, step=1, label="Variations")
                vary_button = gr.Button("Make variations (new seeds)", elem_id="vary")
                regenerate = gr.Button("Regenerate (new seed, replaces it)",
                                       elem_id="regenerate")
            manifest = gr.JSON(label="Manifest of the picked creative", elem_id="manifest")
            with gr.Accordion("Compare two creatives", open=False):
                with gr.Row():
                    other = gr.Dropdown([], label="Compare the picked creative with",
                                        elem_id="compare-with")
                    compare_button = gr.Button("Compare", elem_id="compare")
                with gr.Row():
                    left = gr.Image(label="A (picked)", interactive=False)
                    right = gr.Image(label="B", interactive=False)
                differences = gr.Dataframe(label="A and B", interactive=False, wrap=True)
        with gr.Tab("Campaign", elem_id="tab-campaign"):
            gr.Markdown(CAMPAIGN_NOTE, elem_id="campaign-note")
            campaign_note = gr.Markdown("", elem_id="campaign-status")
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
            gr.Markdown("**Learning loop** (CG4CTR): after some impressions, a round retires "
                        "the arms whose clicks condemn them and adds the best-scored children "
                        "of the winners; simulate on to see the evolved pool's CTR.")
            with gr.Row():
                loop_candidates = gr.Number(value=4, precision=0, label="Candidates per pool")
                loop_min = gr.Number(value=100, precision=0,
                                     label="Impressions an arm is given before it can retire")
                evolve_button = gr.Button("Evolve the pool (one round)", elem_id="evolve")
            loop_table = gr.Dataframe(label="Learning loop: per round the service's true CTR "
                                            "before it, what retired and was added, and why",
                                      interactive=False, wrap=True, elem_id="loop-table")
            loop_chart = gr.LinePlot(x="round", y="true CTR %", color="series",
                                     y_title="true CTR before the round (%)",
                                     label="True CTR per loop round", elem_id="loop-chart")
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
            export_note = gr.Markdown("", elem_id="export-note")
            export_button = gr.Button("Export approved creatives", variant="primary",
                                      elem_id="export")
            archive = gr.File(label="Zip of the approved creatives, their masks and manifests, "
                                    "and a CSV", elem_id="archive")

        notes = [prompts_note, render_note, campaign_note, export_note]
        picked = [gallery, table, pick, other, state]
        load.click(load_product, [image, mask, category, title, state],
                   [status, preview, editor, *notes, state], api_name="load_product")
        apply.click(apply_mask, [editor, state], [status, preview, *notes, state],
                    api_name="apply_mask")
        fit.click(fit_audience, [users, k, state], [status, clusters, *notes, state],
                  api_name="fit_audience")
        use_kit.click(load_brand_kit, [brand_kit, state], [status, *notes[1:], state],
                      api_name="brand_kit")
        write.click(generate_prompts, [generator, n, guidelines, model, base_url, prompts,
                                       replace_all, state, write_copy],
                    [status, prompts, *notes, state], api_name="generate_prompts")
        go.click(render_creatives, [prompts, presets, engine, size, state, area, anchor,
                                    overlay],
                 [status, gallery, manifest, table, pick, other, prompts, *notes, state],
                 api_name="render")
        gallery.select(pick_from_gallery, [state], [pick])
        pick.change(show_manifest, [pick, state], [manifest])
        approve_button.click(approve, [pick, state], [status, *picked], api_name="approve")
        reject_button.click(reject, [pick, state], [status, *picked], api_name="reject")
        approve_rest.click(approve_all, [state], [status, *picked], api_name="approve_all")
        override_button.click(override_block, [pick, reviewer, override_reason, state],
                              [status, *picked], api_name="override")
        vary_button.click(vary, [pick, variations, gr.State(False), state], [status, *picked],
                          api_name="vary")
        regenerate.click(vary, [pick, gr.State(1), gr.State(True), state], [status, *picked],
                         api_name="regenerate")
        compare_button.click(compare, [pick, other, state],
                             [status, left, right, differences, state], api_name="compare")
        run.click(simulate, [impressions, state], [status, policies, chart, arms, state],
                  api_name="simulate")
        evolve_button.click(evolve_pool, [loop_candidates, loop_min, state],
                            [status, loop_table, loop_chart, state], api_name="evolve")
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
                   allowed_paths=[tempfile.gettempdir()], css=CSS)


if __name__ == "__main__":
    main()
