"""A marketer's working session: one product, an audience, prompts, renders, a campaign.

The web UI is a thin face over this class; every step calls the same studio functions as
the CLI (load_product, Audience, prompt writers, render/finish, the store, the reward
model, the selection service, the simulated world). A workspace lives in one folder; its
renders go into a store there, which the campaign serves from.

Every creative is scored by a reward model (``studio.ui.scoring`` says which and why).
With the demo audience (users with the planted ``segment`` column) the workspace also has
a hidden-truth world (``studio.simulation``, seeded by the render seed), as ``studio demo``
has, and the Campaign tab serves simulated impressions in it — the real selection service
beside greedy-on-prior, random, the static creative and the per-cluster oracle. An
audience of one's own has no hidden truth: simulation is off, and the UI says so before
anyone clicks.

Steps depend on each other: a new product makes the prompts and creatives out of date, a
new mask the creatives, a re-fitted audience the prompts and creatives, new prompts the
creatives. ``stale`` keeps what is out of date and why; ``notes`` says it per tab; render
refuses out-of-date prompts. Creatives start *pending*; only approved ones are exported.
Regenerating prompts keeps the rows the user edited unless asked to replace them all.

Why this module is long: ``Workspace`` is one session's state, and its methods are the
UI's steps in order (product, audience, prompts, render, campaign, export) over that
shared state: the product, the audience, the prompt table, the store and the world of the
last render. Split into mixins, each step would use attributes another file sets and
resets; kept whole, what a step needs and what it invalidates reads in one place.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import InputError, load_product, product_from_arrays
from pipelines.engines import load_engine
from pipelines.presets import get_preset

from ..assets import assets_dir
from ..creatives.credentials import Signing
from ..creatives.render import (RenderOptions, finish, prepare, prepare_with_copy_room,
                                render)
from ..errors import StudioError
from ..files import write_atomic
from ..inputs.audience import Audience
from ..inputs.brand import BrandKit
from ..inputs.catalog import ProductInfo
from ..inputs.guidelines import Guidelines
from ..inputs.tables import load_users
from ..learning.arms import score_and_choose_arms
from ..prompts import AdCopy, make_copy_writer, make_generator
from ..store import Store
from ..store.pools import prompt_id
from .images import cutout_preview, editor_value
from .scoring import PAST_IMPRESSIONS, train_scorer
from .text import STATES, ai_disclosure, copy_check, percent

#: The policies the Campaign tab shows, in order (``oracle_user`` is left out: no policy
#: with cluster context can reach it, and regret is measured against the cluster oracle).
SHOWN_POLICIES = ("service", "greedy_prior", "random", "static", "oracle_cluster")
NO_WORLD = ("an audience of your own has no planted segments, so there is no simulated "
            "world to serve impressions in (real campaigns learn from clicks through "
            "/v1/feedback); fit the demo audience to try the simulated campaign")
#: Where each phase of a render ends, as a fraction of the progress bar: rendering every
#: creative, training the reward model, scoring and choosing the arms.
RENDERED, TRAINED = 0.6, 0.9


class Workspace:
    """State of one session, kept in ``root``."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.product = None
        self.info: ProductInfo | None = None
        self.users: pd.DataFrame | None = None
        self.audience: Audience | None = None
        self.audience_source = ""  # "the demo audience" or the uploaded file's name
        self.prompts: pd.DataFrame | None = None
        self.written: set[str] = set()  # prompt texts the writer wrote (others are edits)
        self.guidelines: Guidelines | None = None
        self.brand = BrandKit.default()  # the copy's logo, fonts, colours and banned words
        self.states: dict[str, str] = {}  # creative id -> pending/approved/rejected/replaced
        self.files: dict[str, dict[str, str]] = {}  # creative id -> its files' name -> sha256
        self.stale: dict[str, str] = {}  # "prompts"/"creatives" -> why they are out of date
        self.settings: dict = {}  # engine, size, area, anchor of the last render
        self.engine = None  # (engine, fallback notice) of the last render
        self.model = None  # the reward model that scored the last render
        self.scoring: str | None = None  # which model scored the last render, one line
        self.world = None  # the WorldSession of the last render (demo audience only)
        self.campaign: list = []  # CampaignResult of every "Simulate", in order
        self.loop: list[dict] = []  # one entry per "Evolve the pool" round

    # ------------------------------------------------------------ product
    def load_product(self, image_path, *, mask_path=None, category: str = "generic",
                     title: str = "") -> np.ndarray:
        """Load and validate the product; return its cut-out preview."""
        if not image_path:
            raise StudioError("upload a product photo first")
        product = load_product(image_path, mask=mask_path or None,
                               name=Path(image_path).stem[:40] or "product")
        if self.product is not None:
            self._outdated("the product changed", "prompts", "creatives")
        self.product = product
        self.info = ProductInfo(product.name, category or "generic",
                                title.strip() or product.name.replace("_", " "))
        return self.preview()

    def set_mask(self, mask: np.ndarray) -> np.ndarray:
        """Replace the product mask (True/white = product), e.g. after brushing."""
        self._need_product()
        mask = np.asarray(mask)
        if mask.ndim == 3:
            mask = mask[..., :3].mean(axis=2) if mask.shape[2] >= 3 else mask[..., 0]
        if mask.shape != self.product.alpha.shape:
            raise StudioError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the product is "
                              f"{self.product.size[0]}x{self.product.size[1]}")
        mask = mask if mask.dtype == bool else mask >= 128
        self.product = product_from_arrays(self.product.rgb, mask, name=self.product.name,
                                           mask_source="edited")
        self._outdated("the product's mask changed", "creatives")
        return self.preview()

    def preview(self) -> np.ndarray:
        """The product cut out: kept pixels as they are, a checkerboard where the
        background will be generated, a green outline along the mask."""
        self._need_product()
        return cutout_preview(self.product.rgb, self.product.mask)

    def editor(self) -> dict:
        """The brush editor's value: the photo with the mask as a paintable layer."""
        self._need_product()
        return editor_value(self.product.rgb, self.product.mask)

    # ----------------------------------------------------------- audience
    def fit_audience(self, users_path=None, *, k: int | None = None) -> pd.DataFrame:
        """Cluster an uploaded user table (or, with none, the demo audience); return the
        cluster table. A table that cannot be read is an error: never the demo instead."""
        source = users_path or assets_dir() / "demo" / "users.csv"
        users = load_users(source)
        audience = Audience(k or None).fit(users)
        if self.audience is not None:
            self._outdated("the audience was re-fitted", "prompts", "creatives")
        self.users, self.audience = users, audience
        self.audience_source = Path(users_path).name if users_path else "the demo audience"
        self.world, self.campaign = None, []  # the renders belong to the old audience
        return self.cluster_table()

    def own_audience(self) -> bool:
        """Whether the audience is the user's own (no planted segments)."""
        return self.users is not None and "segment" not in self.users.columns

    def cluster_table(self) -> pd.DataFrame:
        self._need_audience()
        return pd.DataFrame([{"cluster": c.id, "name": c.name, "users": c.size,
                              "share": f"{c.share:.0%}",
                              "top interests": ", ".join(c.interests[:4]), "profile": c.profile}
                             for c in self.audience.clusters_])

    def cluster_names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.audience.clusters_} if self.audience else {}

    # ---------------------------------------------------------- brand kit
    def load_brand_kit(self, path=None) -> str:
        """Use the brand kit at ``path`` — a YAML file, or a zip of a kit folder with its
        logo and fonts (None: the bundled example kit) — for the copy; the creatives
        rendered with another kit are out of date. Returns a one-line summary."""
        if path and Path(path).suffix.lower() == ".zip":
            path = _unpack_kit(Path(path), self.root / "brand-kit")
        self.brand = BrandKit.load(path) if path else BrandKit.default()
        self._outdated("the brand kit changed", "creatives")
        colours = ", ".join(f"{k} #{''.join(f'{c:02X}' for c in v)}"
                            for k, v in self.brand.colours.items())
        return (f"brand kit {self.brand.name!r}: {self.brand.headline_font.name}, {colours}"
                + (f"; banned words: {', '.join(self.brand.banned)}" if self.brand.banned
                   else ""))

    # ------------------------------------------------------------ prompts
    def generate_prompts(self, *, generator: str = "template", n: int = 3, seed: int = 0,
                         guidelines_path=None, model: str | None = None,
                         base_url: str | None = None, current=None,
                         replace_all: bool = False, copy: bool = True) -> pd.DataFrame:
        """Write ``n`` prompts per cluster and (``copy``) a headline and a call to action
        for each, in the brand kit's tone. Rows of ``current`` (the table on screen) that
        the user edited or added are kept, in place of written ones, unless
        ``replace_all`` (or the audience changed since: they were for other clusters)."""
        self._need_product()
        self._need_audience()
        kept = self._edited_rows(current) if not replace_all else []
        rules = Guidelines.load(guidelines_path) if guidelines_path else None
        writer = make_generator(generator, guidelines=rules, model=model or None,
                                base_url=base_url or None)
        copy_writer = make_copy_writer(generator, guidelines=rules, brand=self.brand,
                                       model=model or None,
                                       base_url=base_url or None) if copy else None
        names, rows = self.cluster_names(), []
        for cluster in self.audience.clusters_:
            mine = [r for r in kept if r["cluster"] == cluster.id]
            rows += mine
            written = writer.generate(self.info, cluster, int(n), seed)[:max(0, n - len(mine))]
            copies = copy_writer.write(self.info, cluster, len(written), seed) \
                if copy_writer and written else [None] * len(written)
            for prompt, ad in zip(written, copies):
                rows.append({"cluster": cluster.id, "audience": names[cluster.id],
                             "prompt": prompt.text,
                             "headline": ad.headline if ad else "", "cta": ad.cta if ad else "",
                             "source": prompt.source + (" (fallback)" if prompt.fallback else "")})
        self.written = {r["prompt"] for r in rows if r["source"] != "edited"}
        self.prompts, self.guidelines = pd.DataFrame(rows), rules
        self.stale.pop("prompts", None)
        self._outdated("the prompts changed", "creatives")
        return self.prompts

    def _edited_rows(self, current) -> list[dict]:
        """The rows of the on-screen table that the writer did not write, when the
        table is for the current audience."""
        if current is None or "prompts" in self.stale:
            return []
        frame = pd.DataFrame(current)
        if frame.empty or not {"cluster", "prompt"} <= set(frame.columns):
            return []
        names = self.cluster_names()
        return [{"cluster": int(r["cluster"]), "audience": names[int(r["cluster"])],
                 "prompt": str(r["prompt"]).strip(), "headline": _text(r.get("headline")),
                 "cta": _text(r.get("cta")), "source": "edited"}
                for r in frame.to_dict("records")
                if str(r["prompt"]).strip() and str(r["prompt"]).strip() not in self.written
                and pd.notna(pd.to_numeric(r["cluster"], errors="coerce"))
                and int(r["cluster"]) in names]

    def edit_prompts(self, table) -> list[str]:
        """Take the (edited) prompt table back from the UI; brand rules are enforced on
        every prompt. Returns one line per prompt the rules changed (what changed)."""
        if "prompts" in self.stale:
            raise StudioError(f"the prompts are out of date ({self.stale['prompts']} after "
                              "they were written): regenerate them on the Prompts tab")
        frame = pd.DataFrame(table)
        if frame.empty or not {"cluster", "prompt"} <= set(frame.columns):
            raise StudioError("the prompt table needs cluster and prompt columns")
        frame = frame[frame["prompt"].astype(str).str.strip() != ""].copy()
        frame["cluster"] = pd.to_numeric(frame["cluster"], errors="coerce")
        names = self.cluster_names()
        if frame["cluster"].isna().any() or not set(frame["cluster"].astype(int)) <= set(names):
            raise StudioError(f"cluster must be one of {sorted(names)}")
        frame["cluster"] = frame["cluster"].astype(int)
        frame["audience"] = frame["cluster"].map(names)
        changes = []
        if self.guidelines is not None:
            enforced = []
            for row, text in enumerate(frame["prompt"].astype(str), start=1):
                new = self.guidelines.enforce(text)
                if new != text:
                    changes.append(f"row {row}: {_what_changed(text, new)}")
                enforced.append(new)
            frame["prompt"] = enforced
        for column in ("headline", "cta"):
            frame[column] = [_text(v) for v in frame[column]] if column in frame else ""
        for row, (headline, cta) in enumerate(zip(frame["headline"], frame["cta"]), start=1):
            if headline or cta:  # a bad or banned copy fails here, before any render
                try:
                    ad = AdCopy(headline, cta)
                except StudioError as exc:
                    raise StudioError(f"row {row}: {exc}") from None
                for text in (ad.headline, ad.cta):
                    self.brand.check_copy(text)
        columns = ["cluster", "audience", "prompt", "headline", "cta",
                   *([c for c in ("source",) if c in frame])]
        self.prompts = frame[columns].reset_index(drop=True)
        return changes

    # ------------------------------------------------------------- render
    def render(self, *, presets=("feed-4:5",), engine: str = "auto", size: str | None = None,
               area: float = 0.3, anchor: str = "bottom", seed: int = 0, copy: bool = True,
               progress=None) -> list[dict]:
        """Render every prompt in every preset (at the preset's exact size; ``size``, a
        long side or WxH, renders the preset's format at that size instead) into a fresh
        store, score every creative (``self.scoring`` says with what) and make every prompt
        an arm. With ``copy``, each prompt's headline and CTA are laid over its creatives
        in the brand kit's style (the product placed smaller where they would not fit
        beside it) and read back with OCR. Every creative starts pending. A new render
        starts a new campaign.
        ``progress(fraction, desc)`` hears of every creative and every later phase."""
        self._need_product()
        self._need_audience()
        if self.prompts is None or self.prompts.empty:
            raise StudioError("generate (or write) prompts first")
        if "prompts" in self.stale:
            raise StudioError(f"the prompts are out of date ({self.stale['prompts']} after "
                              "they were written): regenerate them on the Prompts tab")
        if not presets:
            raise StudioError("choose at least one preset")
        for name in presets:
            get_preset(name)
        report = progress or (lambda fraction, desc: None)
        report(0.0, desc="loading the engine")
        self.settings = dict(engine=engine, size=size or None, area=float(area),
                             anchor=anchor or "center",
                             signing=Signing.from_environment())  # STUDIO_SIGNING: signed
        self.engine = load_engine(engine)
        store = self._fresh_store()
        self.world, self.scoring, self.campaign, self.model = None, None, [], None
        self.loop = []
        self.states, self.files = {}, {}
        jobs = [(int(row.cluster), str(row.prompt), name, seed,
                 _copy(row.headline, row.cta) if copy else None)
                for row in self.prompts.itertuples() for name in presets]
        self._render_jobs(store, jobs, report, end=RENDERED)
        report(RENDERED, desc=f"training the reward model on {PAST_IMPRESSIONS:,} simulated "
                              "past impressions")
        records, clusters = self._records(store)
        self.model, self.world, self.scoring = train_scorer(self.users, self.audience, records,
                                                            clusters, seed)
        self._score(store, report, start=TRAINED)
        self.stale.pop("creatives", None)
        return self.creatives()

    def vary(self, creative_id: str, n: int = 2, *, replace: bool = False,
             progress=None) -> list[str]:
        """``n`` new creatives of a creative's prompt and preset with new seeds (pending,
        scored by the render's reward model). With ``replace`` (regenerate), one new one
        takes the creative's place: the old one is set aside (kept in the store, never
        shown or exported). Returns the new ids."""
        creative = self.creative(creative_id)
        if "creatives" in self.stale:
            raise StudioError(f"the creatives are out of date ({self.stale['creatives']}): "
                              "render again before making variations")
        if not 1 <= int(n) <= 8:
            raise StudioError(f"make 1 to 8 variations, got {n}")
        report = progress or (lambda fraction, desc: None)
        store = self._store()
        first = 1 + max(r["seed"] for r in store.creatives())
        preset = creative["preset"]
        written = creative["manifest"].get("copy")
        ad = AdCopy(written["headline"], written["cta"]) if written else None
        jobs = [(creative["cluster"], creative["manifest"]["prompt"], preset, first + i, ad)
                for i in range(1 if replace else int(n))]
        notes = self._render_jobs(store, jobs, report, end=0.8)
        self._score(store, report, start=0.8)
        if replace:
            self.states[creative_id] = "replaced"
        return [note["manifest"]["id"] for note in notes]

    def _options(self, text: str, preset: str, seed: int, ad: AdCopy | None) -> RenderOptions:
        size, place = self.settings["size"], dict(area=self.settings["area"],
                                                  anchor=self.settings["anchor"],
                                                  copy=ad, brand=self.brand if ad else None,
                                                  signing=self.settings["signing"])
        if size:
            return RenderOptions(prompt=text, format=get_preset(preset).format, size=size,
                                 seed=seed, **place)
        return RenderOptions(prompt=text, preset=preset, seed=seed, **place)

    def _render_jobs(self, store: Store, jobs: list[tuple], report, *, end: float) -> list[dict]:
        """Render ``jobs`` (cluster, prompt, preset, seed, copy or None) into ``store``,
        reporting each creative's engine steps over the progress bar up to ``end``; new
        ones pending. A prompt with copy is its own arm (the bandit learns copy × image)."""
        chosen, notice = self.engine
        category, notes, arms = self.info.category, [], {}
        for i, (cluster_id, text, preset, seed, ad) in enumerate(jobs):
            desc = f"rendering creative {i + 1} of {len(jobs)}"
            report(end * i / len(jobs), desc=desc)
            options, left_out = self._options(text, preset, seed, ad), None
            try:
                placed, options = prepare_with_copy_room(self.product, options)
            except InputError as exc:
                if ad is None:
                    raise
                # A quick preview size can be too small for legible copy: the creative is
                # still worth seeing, without it, and the warning says so.
                options, left_out = replace(options, copy=None, brand=None), str(exc)
                placed = prepare(self.product, options)
            ad = options.copy  # what the creative carries (the arm's key includes it)

            def step(done, total, i=i, desc=desc):
                report(end * (i + done / max(total, 1)) / len(jobs), desc=desc)

            creative = render(placed, options, chosen, callback=step)[0]
            finished = finish(creative, placed, self.product, options, chosen, notice=notice)
            files = {name: store.put_file(data) for name, data in finished.files.items()}
            manifest = finished.manifest
            if left_out:
                manifest["warnings"].append(f"rendered without its headline and CTA: "
                                            f"{left_out}")
            key = f"{text}\n{ad.headline} | {ad.cta}" if ad else text
            pid = prompt_id(category, cluster_id, key)
            arms[pid] = (cluster_id, text, {"copy": ad.as_dict()} if ad else {})
            notes.append({"job_key": f"{pid}|{preset}|{seed}", "product_id": self.info.name,
                          "prompt_id": pid, "cluster_id": int(cluster_id),
                          "format": manifest["format"], "seed": seed,
                          "image_sha256": files[manifest["image"]],
                          "mask_sha256": files[manifest["mask"]], "bytes": finished.bytes,
                          "manifest": {**manifest, "product_id": self.info.name}, "files": files})
        store.add_prompts({"prompt_id": pid, "category": category, "cluster_id": cluster_id,
                           "text": text, "negative_prompt": "", "tags": json.dumps(tags),
                           "source": "ui"}
                          for pid, (cluster_id, text, tags) in arms.items())
        store.add_creatives(notes)  # may rename a creative whose pixels repeat another's
        for note in notes:
            self.states[note["manifest"]["id"]] = "pending"
            self.files[note["manifest"]["id"]] = note.pop("files")
        return notes

    def _records(self, store: Store):
        from ..simulation.past import Creatives

        creatives = Creatives.from_store(store)
        return creatives.records, creatives.cluster_ids

    def _score(self, store: Store, report, *, start: float) -> None:
        report(start, desc="scoring every creative for its cluster and choosing the arms")
        # Every prompt is an arm (top_m covers them all), its prior from the model.
        score_and_choose_arms(store, self.audience, self.model,
                              top_m=max(1, len(store.prompt_records())), replace_arms=True)
        report(1.0, desc="done")

    def creatives(self) -> list[dict]:
        """The shown creatives (not those set aside by a regenerate, nor a learning-loop
        candidate that did not become an arm), by cluster, with their cluster's name,
        preset ("loop round N" for an evolved arm's), predicted CTR and approval state —
        "blocked: <why>" while the safety gate holds one (``held``) and no reviewer has
        overridden it."""
        store = self._store()
        names = self.cluster_names()
        rows = sorted(store.creatives(), key=lambda r: (r["cluster_id"], r["prompt_id"],
                                                         r["seed"], r["creative_id"]))
        shown = [r for r in rows if self.states.get(r["creative_id"]) != "replaced"
                 and (r["selected"] or not r["job_key"].startswith("evolve|"))]
        return [{"id": r["creative_id"], "number": i, "cluster": r["cluster_id"],
                 "name": names.get(r["cluster_id"], f"cluster {r['cluster_id']}"),
                 "format": r["format"], "preset": _preset_of(r["job_key"]),
                 "seed": r["seed"], "predicted_ctr": r["reward"],
                 "path": str(store.file_path(r["image_sha256"])),
                 "files": {name: str(store.file_path(sha)) for name, sha in (
                     self.files.get(r["creative_id"]) or {  # an evolved arm's: image and mask
                         r["manifest"]["image"]: r["image_sha256"],
                         r["manifest"]["mask"]: r["mask_sha256"]}).items()},
                 "manifest": r["manifest"], "copy": r["manifest"].get("copy"),
                 "held": not r["servable"],
                 "state": self.states.get(r["creative_id"], "pending") if r["servable"] else
                 "blocked: " + "; ".join(r["manifest"]["safety"]["reasons"])}
                for i, r in enumerate(shown, start=1)]

    def creative_table(self) -> pd.DataFrame:
        """One row per shown creative: its number, id, audience, format, size,
        predicted CTR (a percentage) and approval state."""
        return pd.DataFrame([{"#": c["number"], "id": c["id"], "audience": c["name"],
                              "format": c["format"],
                              "size": "x".join(map(str, c["manifest"]["size"])),
                              "predicted CTR": percent(c["predicted_ctr"]),
                              "headline": c["copy"]["headline"] if c["copy"] else "",
                              "copy read back": copy_check(c["copy"]), "state": c["state"]}
                             for c in self.creatives()])

    def creative(self, creative_id: str) -> dict:
        for c in self.creatives():
            if c["id"] == creative_id:
                return c
        raise StudioError(f"unknown creative {creative_id!r}: pick one of the current "
                          "creatives (Render tab)")

    def manifest(self, creative_id: str | None) -> dict | None:
        """The manifest of a shown creative; None for none or one no longer shown."""
        found = [c for c in self.creatives() if c["id"] == creative_id] if creative_id else []
        return found[0]["manifest"] if found else None

    def notices(self) -> list[str]:
        """What the shown creatives' manifests warn about: the preview notice first (the
        result does not look like the request), then each warning once."""
        found = []
        for c in self.creatives():
            preview = (c["manifest"].get("preview") or {}).get("notice")
            found += ([preview] if preview else []) + list(c["manifest"].get("warnings") or [])
        return list(dict.fromkeys(found))

    def set_state(self, creative_id: str, state: str) -> None:
        """Approve, reject or reset (pending) one creative."""
        if state not in STATES:
            raise StudioError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        creative = self.creative(creative_id)
        if creative["held"] and state == "approved":
            raise StudioError(f"creative {creative['number']} is {creative['state']}; a "
                              "reviewer must override it (with a reason) before approval")
        self.states[creative_id] = state

    def override_safety(self, creative_id: str, reviewer: str, reason: str) -> None:
        """A reviewer lets a blocked creative through (recorded in the store with the
        reason): it becomes pending, can be approved and exported, and joins the arms at
        the next render."""
        self.creative(creative_id)
        self._store().override_safety(creative_id, reviewer, reason)

    def approve_all(self) -> int:
        """Approve every pending creative; return how many."""
        pending = [c["id"] for c in self.creatives() if c["state"] == "pending"]
        self.states.update({i: "approved" for i in pending})
        return len(pending)

    def counts(self) -> dict[str, int]:
        """How many shown creatives are in each state."""
        states = [c["state"] for c in self.creatives()]
        return {s: states.count(s) for s in STATES}

    def compare(self, first: str, second: str) -> pd.DataFrame:
        """Two creatives side by side: what differs and what is the same."""
        a, b = self.creative(first), self.creative(second)
        rows = [("audience", a["name"], b["name"]), ("format", a["format"], b["format"]),
                ("size", "x".join(map(str, a["manifest"]["size"])),
                 "x".join(map(str, b["manifest"]["size"]))),
                ("predicted CTR", percent(a["predicted_ctr"]), percent(b["predicted_ctr"])),
                ("state", a["state"], b["state"]), ("seed", a["seed"], b["seed"]),
                ("prompt", a["manifest"]["prompt"], b["manifest"]["prompt"]),
                ("headline", *(c["copy"]["headline"] if c["copy"] else "" for c in (a, b))),
                ("call to action", *(c["copy"]["cta"] if c["copy"] else "" for c in (a, b))),
                ("copy read back", copy_check(a["copy"]), copy_check(b["copy"]))]
        return pd.DataFrame([{"": k, "A": str(x), "B": str(y)} for k, x, y in rows])

    # ----------------------------------------------------------- staleness
    def _outdated(self, why: str, *steps: str) -> None:
        """Mark the results of ``steps`` that exist as out of date, saying ``why``."""
        for step in steps:
            exists = (self.prompts is not None if step == "prompts"
                      else (self.root / "store" / "store.db").exists())
            if exists:
                self.stale[step] = why

    def notes(self) -> dict[str, str]:
        """Per tab (prompts, render, campaign, export), what is out of date there and
        what to do; empty where all is current."""
        prompts, creatives = self.stale.get("prompts"), self.stale.get("creatives")
        redo = f"⚠️ **Out of date:** {creatives} after these creatives were rendered — " \
               "render again (Render tab)." if creatives else ""
        campaign = redo
        if self.own_audience():
            campaign = (f"ℹ️ **Your own audience ({self.audience_source}):** Simulate is off "
                        f"— {NO_WORLD}. Its creatives are still scored, by the demo reward "
                        "model (the Render tab says which).")
        return {"prompts": f"⚠️ **Out of date:** {prompts} after these prompts were written"
                           " — regenerate them (rendering refuses them until then)."
                           if prompts else "",
                "render": redo, "campaign": campaign, "export": redo}

    # ----------------------------------------------------------- campaign
    def simulate(self, impressions: int = 1000, *, seed: int = 0) -> pd.DataFrame:
        """Continue the simulated campaign by ``impressions`` in this render's world and
        return the policy table. Every policy faces the same impressions: the real
        selection service over the workspace store (its events and rewards go into the
        store, so the arm table shows what it learned, and the next call goes on from
        there), greedy-on-prior, random, the static creative and the per-cluster oracle.
        Each call draws a new stream (from ``seed`` and the call's number) and covers the
        next ``impressions / CAMPAIGN_LENGTH`` (``studio.simulation.session``) of the
        world's campaign time."""
        from ..serving.config import ServingConfig
        from ..serving.service import SelectionService
        from ..simulation.arena import Arena
        from ..simulation.policies import make_policies

        self._need_audience()
        if self.own_audience():
            raise StudioError(f"cannot simulate: {NO_WORLD}")
        if int(impressions) < 1:
            raise StudioError(f"simulate at least one impression, got {impressions}")
        store = self._store()
        if self.world is None:
            raise StudioError("render creatives first (for the current audience)")
        stream = int(np.random.SeedSequence([int(seed), len(self.campaign)]).generate_state(1)[0])
        placements = tuple(sorted({c["format"] for c in self.creatives()}))
        arena = Arena.from_store(store, self.users, placements)
        served = ServingConfig(seed=stream)
        service = SelectionService.open(store, config=served, snapshot_every=1000)
        policies = make_policies(arena, served, seed=stream, service=service,
                                 names=("service", "greedy_prior", "random"))
        done = self.impressions_served()
        result = self.world.campaign(arena, policies, impressions=int(impressions),
                                     seed=stream, done=done)
        service.snapshot()  # the next call's service starts here instead of replaying
        self.campaign.append(result)
        return self.policy_table()

    def evolve_pool(self, *, candidates: int = 4, min_impressions: int = 100,
                    seed: int = 0) -> pd.DataFrame:
        """One round of the learning loop (``studio evolve``) on the workspace store from
        the clicks the campaign has earned so far: arms the clicks condemn retire, the
        winners' children (fresh template prompts where a winner has no slots) are
        rendered, scored by the render's reward model refitted on those clicks, and the
        best take their place (``min_impressions``: what an arm is given before it can be
        the last one retired). Returns the loop table: per round the service's true CTR
        over its impressions, what retired and was added, and why."""
        from ..learning.evolve import EvolveSettings, evolve

        if not self.campaign:
            raise StudioError("simulate some impressions first: a round learns from clicks")
        if self.model is None:
            raise StudioError("render and score creatives first")
        settings = EvolveSettings(candidates=int(candidates), min_arms=1,  # bad values fail here
                                  min_impressions=int(min_impressions))
        start = sum(entry["impressions"] for entry in self.loop)
        served = self.campaign_arrays("value")["service"][start:]
        if not len(served):
            raise StudioError("simulate impressions since the last round first")
        texts = self._store().prompt_texts()
        record = evolve(self._store(), products={self.info.name: self.product}, settings=settings,
                        engine=self.settings["engine"], size=self.settings.get("size"), reward_model=self.model,
                        guidelines=self.guidelines, seed=seed + len(self.loop),
                        echo=lambda message: None)
        texts.update(self._store().prompt_texts())
        names = self.cluster_names()
        changes = [f"cluster {p['cluster_id']} ({names.get(p['cluster_id'], '')}): retired "
                   f"“{texts[a][:60]}” — {p['reasons'][a]}; added “{texts[n][:60]}”"
                   for p in record["pools"] for a, n in zip(p["retired"], p["added"])]
        self.loop.append({"round": len(self.loop) + 1, "impressions": len(served),
                          "true CTR": float(served.mean()), "scorer": record["scorer"],
                          "changes": changes})
        return self.loop_table()

    def loop_table(self) -> pd.DataFrame:
        """One row per learning-loop round: impressions served before it, the service's
        true CTR over them (%), and what the round retired and added, and why."""
        return pd.DataFrame([{
            "round": e["round"], "impressions": e["impressions"],
            "true CTR %": round(100 * e["true CTR"], 3),
            "scored by": f"{e['scorer']} reward model",
            "retired → added (why)": "; ".join(e["changes"]) or
                                    "nothing: no arm is condemned by its clicks yet"}
            for e in self.loop], columns=["round", "impressions", "true CTR %", "scored by",
                                          "retired → added (why)"])

    def impressions_served(self) -> int:
        """Simulated impressions so far (per policy) in this render's campaign."""
        return sum(r.impressions for r in self.campaign)

    def campaign_arrays(self, kind: str = "value") -> dict[str, np.ndarray]:
        """Per shown policy, the per-impression ``value`` (true CTR of what it served),
        ``clicks`` or ``regret`` (vs the cluster oracle) over every call so far."""
        return {p: np.concatenate([getattr(r, kind)[p] for r in self.campaign])
                for p in SHOWN_POLICIES}

    def policy_table(self) -> pd.DataFrame:
        """One row per shown policy: true and observed CTR, lift over greedy-on-prior,
        clicks and regret; CTRs as percentages."""
        from ..simulation.report import DESCRIPTIONS

        if not self.campaign:
            raise StudioError("simulate some impressions first")
        value, clicks = self.campaign_arrays("value"), self.campaign_arrays("clicks")
        regret = self.campaign_arrays("regret")
        baseline = value["greedy_prior"].mean()
        return pd.DataFrame([{
            "policy": p, "true CTR": f"{value[p].mean():.2%}",
            "vs greedy-on-prior": f"{value[p].mean() / baseline - 1:+.1%}",
            "observed CTR": f"{clicks[p].mean():.2%}", "clicks": int(clicks[p].sum()),
            "regret (clicks)": round(float(regret[p].sum()), 1),
            "what it is": DESCRIPTIONS[p]} for p in SHOWN_POLICIES])

    def ctr_curves(self, points: int = 200) -> pd.DataFrame:
        """Cumulative true CTR (in %) of every shown policy at up to ``points``
        impressions, long format (impressions, true CTR %, policy) for a line chart."""
        n = self.impressions_served()
        if not n:
            return pd.DataFrame({"impressions": [], "true CTR %": [], "policy": []})
        at = np.unique(np.linspace(1, n, min(points, n)).round().astype(int))
        frames = [pd.DataFrame({"impressions": at,
                                "true CTR %": 100 * np.cumsum(v)[at - 1] / at, "policy": p})
                  for p, v in self.campaign_arrays("value").items()]
        return pd.concat(frames, ignore_index=True)

    def arm_table(self) -> pd.DataFrame:
        """The selection service's arms: prior, pulls, observed CTR, learned mean and
        exploration bonus at the cluster's centroid (percentages)."""
        from ..serving.service import SelectionService

        report = SelectionService.open(self._store()).arm_report()
        names = self.cluster_names()
        return pd.DataFrame([{"cluster": a["cluster_id"],
                              "audience": names.get(a["cluster_id"], ""),
                              "prompt": a["prompt"][:70],
                              "prior": _percent(a["prior_ctr"]), "pulls": a["pulls"],
                              "CTR": _percent(a["ctr"]), "mean": _percent(a["mean"]),
                              "bonus": _percent(a["bonus"])} for a in report])

    # ------------------------------------------------------------- export
    def export(self) -> tuple[Path, str]:
        """A zip of the approved creatives: each image, its mask and its manifest (every
        file a manifest names is in the zip) and a CSV with readable CTRs. Returns the
        zip and a line saying how many of how many were exported."""
        shown = self.creatives()
        approved = [c for c in shown if c["state"] == "approved"]
        counts = self.counts()
        if not approved:
            raise StudioError(f"no creative is approved yet (0 of {len(shown)}: "
                              f"{counts['pending']} pending, {counts['rejected']} rejected); "
                              "approve creatives on the Render tab first")
        buffer, table = io.BytesIO(), io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["creative_id", "cluster_id", "audience", "format", "size",
                         "predicted_ctr", "prompt", "headline", "cta", "copy_read_back",
                         "ai_generated", "file", "mask"])
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for c in approved:
                manifest = c["manifest"]
                for name, path in c["files"].items():  # the image, its mask, copy layers
                    archive.write(path, name)
                archive.writestr(f"{c['id']}.json", json.dumps(manifest, indent=2))
                writer.writerow([c["id"], c["cluster"], c["name"], c["format"],
                                 "x".join(map(str, manifest["size"])),
                                 percent(c["predicted_ctr"]), manifest["prompt"],
                                 *((c["copy"]["headline"], c["copy"]["cta"])
                                   if c["copy"] else ("", "")), copy_check(c["copy"]),
                                 ai_disclosure(manifest), manifest["image"], manifest["mask"]])
            archive.writestr("creatives.csv", table.getvalue())
        path = self.root / "approved-creatives.zip"
        write_atomic(path, buffer.getvalue())
        return path, (f"exported {len(approved)} of {len(shown)} creatives (the approved "
                      f"ones; {counts['pending']} pending, {counts['rejected']} rejected "
                      "left out)")

    # ----------------------------------------------------------- internals
    def _fresh_store(self) -> Store:
        import shutil

        folder = self.root / "store"
        shutil.rmtree(folder, ignore_errors=True)
        store = Store(folder, create=True)
        store.add_audience(self.audience)
        store.add_products([(self.info.name, self.info.category, self.info.title,
                             self.product.sha256)])
        return store

    def _store(self) -> Store:
        if not (self.root / "store" / "store.db").exists():
            raise StudioError("render creatives first")
        return Store(self.root / "store")

    def _need_product(self) -> None:
        if self.product is None:
            raise StudioError("load a product first (Product tab)")

    def _need_audience(self) -> None:
        if self.audience is None:
            raise StudioError("fit the audience first (Audience tab)")


#: The largest brand kit zip unpacked (its logo and fonts), in bytes once unpacked.
MAX_KIT_BYTES = 50_000_000


def _unpack_kit(archive: Path, folder: Path) -> Path:
    """Unpack a brand kit zip into ``folder`` (emptied first) and return its YAML file
    (the shallowest one). Refused: not a zip, members outside the folder, over
    ``MAX_KIT_BYTES`` unpacked, no YAML file."""
    import shutil

    try:
        with zipfile.ZipFile(archive) as kit:
            members = [m for m in kit.infolist() if not m.is_dir()]
            for member in members:
                parts = Path(member.filename).parts
                if Path(member.filename).is_absolute() or ".." in parts:
                    raise StudioError(f"brand kit {archive.name}: {member.filename!r} points "
                                      "outside the kit")
            if sum(m.file_size for m in members) > MAX_KIT_BYTES:
                raise StudioError(f"brand kit {archive.name} unpacks to more than "
                                  f"{MAX_KIT_BYTES // 1_000_000} MB")
            yamls = sorted((m.filename for m in members
                            if m.filename.lower().endswith((".yaml", ".yml"))),
                           key=lambda name: (len(Path(name).parts), name))
            if not yamls:
                raise StudioError(f"brand kit {archive.name} holds no YAML file (kit.yaml)")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            kit.extractall(folder, members)
    except zipfile.BadZipFile:
        raise StudioError(f"brand kit {archive.name} is not a zip file") from None
    return folder / yamls[0]


def _text(value) -> str:
    """A table cell as text ("" for an empty or missing cell)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else " ".join(str(value).split())


def _copy(headline, cta) -> AdCopy | None:
    """The copy of a prompt row, or None when it has neither headline nor CTA."""
    headline, cta = _text(headline), _text(cta)
    return AdCopy(headline, cta) if headline or cta else None


def _preset_of(job_key: str) -> str:
    """The preset a creative was rendered for, from its job key (an evolved arm's key
    is ``evolve|round|...``: it was rendered at its format in that loop round)."""
    parts = job_key.split("|")
    return f"loop round {parts[1]}" if parts[0] == "evolve" else parts[1]


def _percent(value) -> str | None:
    """A CTR as a percentage with two decimals (None stays None)."""
    return None if value is None else f"{value:.2%}"


def _what_changed(old: str, new: str) -> str:
    """What the brand rules did to a prompt, in words: removed and added text."""
    a, b = old.split(), new.split()
    removed, added = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if tag in ("delete", "replace"):
            removed.append(" ".join(a[i1:i2]))
        if tag in ("insert", "replace"):
            added.append(" ".join(b[j1:j2]))
    parts = ([f"removed {', '.join(repr(r) for r in removed)}"] if removed else []) + \
            ([f"added {', '.join(repr(x) for x in added)}"] if added else [])
    return "; ".join(parts) or "re-punctuated"
