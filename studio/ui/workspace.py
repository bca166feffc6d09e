"""A marketer's working session: one product, an audience, prompts, renders, a campaign.

The web UI is a thin face over this class; every step calls the same studio functions as
the CLI (load_product, Audience, prompt writers, render/finish, the store, the reward
model, the selection service, the simulated world). A workspace lives in one folder; its
renders go into a store there, which the campaign serves from.

With the demo audience (users with the planted ``segment`` column) the workspace has a
hidden-truth world (``studio.simulation``, seeded by the render seed), as ``studio demo``
has: the reward model learns from a simulated *past* of that world, and the Campaign tab
serves simulated impressions in it — the real selection service beside greedy-on-prior,
random, the static creative and the per-cluster oracle. An audience of one's own has no
hidden truth: nothing is scored or simulated, and the UI says so.

Why this module is long: ``Workspace`` is one session's state, and its methods are the
UI's steps in order (product, audience, prompts, render, campaign, export) over that
shared state: the product, the audience, the prompt table, the store and the world of the
last render. Split into mixins, each step would use attributes another file sets and
resets; kept whole, what a step needs and what it invalidates reads in one place.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipelines import load_product, product_from_arrays
from pipelines.engines import load_engine

from ..assets import assets_dir
from ..creatives.records import CreativeRecord
from ..creatives.render import RenderOptions, finish, prepare, render
from ..errors import StudioError
from ..files import write_atomic
from ..inputs.audience import Audience
from ..inputs.catalog import ProductInfo
from ..inputs.guidelines import Guidelines
from ..inputs.tables import load_users
from ..learning.arms import score_and_choose_arms
from ..prompts import make_generator
from ..store import Store
from ..store.pools import prompt_id

#: Simulated past impressions the reward model learns from (uniform policy over the
#: rendered creatives, other users, drifted tastes): under a second for ten creatives.
PAST_IMPRESSIONS = 100_000
#: Users of the simulated past (another draw of the demo population).
PAST_USERS = 5000
#: The policies the Campaign tab shows, in order (``oracle_user`` is left out: no policy
#: with cluster context can reach it, and regret is measured against the cluster oracle).
SHOWN_POLICIES = ("service", "greedy_prior", "random", "static", "oracle_cluster")
NO_WORLD = ("an audience of your own has no planted segments, so there is no simulated "
            "world: creatives are not scored and simulation is off (real campaigns learn "
            "from clicks through /v1/feedback)")


class Workspace:
    """State of one session, kept in ``root``."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.product = None
        self.info: ProductInfo | None = None
        self.users: pd.DataFrame | None = None
        self.audience: Audience | None = None
        self.prompts: pd.DataFrame | None = None
        self.approved: dict[str, bool] = {}
        self.notice: str | None = None  # the engine's fallback notice of the last render
        self.scoring: str | None = None  # how the last render was scored, one line
        self.world = None  # the WorldSession of the last render (demo audience only)
        self.campaign: list = []  # CampaignResult of every "Simulate", in order

    # ------------------------------------------------------------ product
    def load_product(self, image_path, *, mask_path=None, category: str = "generic",
                     title: str = "") -> np.ndarray:
        """Load and validate the product; return a preview with the mask overlaid."""
        if not image_path:
            raise StudioError("upload a product photo first")
        self.product = load_product(image_path, mask=mask_path or None,
                                    name=Path(image_path).stem[:40] or "product")
        self.info = ProductInfo(self.product.name, category or "generic",
                                title.strip() or self.product.name.replace("_", " "))
        return self.overlay()

    def set_mask(self, mask: np.ndarray) -> np.ndarray:
        """Replace the product mask (white = product), e.g. after brushing in the editor."""
        self._need_product()
        mask = np.asarray(mask)
        if mask.ndim == 3:
            mask = mask[..., :3].mean(axis=2) if mask.shape[2] >= 3 else mask[..., 0]
        if mask.shape != self.product.alpha.shape:
            raise StudioError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the product is "
                              f"{self.product.size[0]}x{self.product.size[1]}")
        self.product = product_from_arrays(self.product.rgb, mask >= 128, name=self.product.name,
                                           mask_source="edited")
        return self.overlay()

    def overlay(self) -> np.ndarray:
        """The product with its mask tinted (green = kept pixel-fixed)."""
        self._need_product()
        rgb = self.product.rgb.astype(np.float32)
        tint = np.zeros_like(rgb)
        tint[..., 1] = 255
        mask = self.product.mask[..., None]
        return np.where(mask, 0.6 * rgb + 0.4 * tint, 0.35 * rgb).astype(np.uint8)

    def mask_image(self) -> np.ndarray:
        self._need_product()
        return np.where(self.product.mask, 255, 0).astype(np.uint8)

    # ----------------------------------------------------------- audience
    def fit_audience(self, users_path=None, *, k: int | None = None) -> pd.DataFrame:
        """Cluster an uploaded user table (or the demo audience); return the cluster table."""
        source = users_path or assets_dir() / "demo" / "users.csv"
        self.users = load_users(source)
        self.audience = Audience(k or None).fit(self.users)
        self.prompts = None
        self.world, self.campaign = None, []  # the renders belong to the old audience
        return self.cluster_table()

    def cluster_table(self) -> pd.DataFrame:
        self._need_audience()
        return pd.DataFrame([{"cluster": c.id, "users": c.size, "share": f"{c.share:.0%}",
                              "top interests": ", ".join(c.interests[:4]), "profile": c.profile}
                             for c in self.audience.clusters_])

    # ------------------------------------------------------------ prompts
    def generate_prompts(self, *, generator: str = "template", n: int = 3, seed: int = 0,
                         guidelines_path=None, model: str | None = None,
                         base_url: str | None = None) -> pd.DataFrame:
        self._need_product()
        self._need_audience()
        rules = Guidelines.load(guidelines_path) if guidelines_path else None
        writer = make_generator(generator, guidelines=rules, model=model or None,
                                base_url=base_url or None)
        rows = []
        for cluster in self.audience.clusters_:
            for prompt in writer.generate(self.info, cluster, int(n), seed):
                rows.append({"cluster": cluster.id, "prompt": prompt.text,
                             "source": prompt.source + (" (fallback)" if prompt.fallback else "")})
        self.prompts = pd.DataFrame(rows)
        self.guidelines = rules
        return self.prompts

    def edit_prompts(self, table) -> pd.DataFrame:
        """Take the (edited) prompt table back from the UI."""
        frame = pd.DataFrame(table)
        if frame.empty or not {"cluster", "prompt"} <= set(frame.columns):
            raise StudioError("the prompt table needs cluster and prompt columns")
        frame = frame[frame["prompt"].astype(str).str.strip() != ""].copy()
        frame["cluster"] = pd.to_numeric(frame["cluster"], errors="coerce")
        valid = {c.id for c in self.audience.clusters_} if self.audience else set()
        if frame["cluster"].isna().any() or not set(frame["cluster"].astype(int)) <= valid:
            raise StudioError(f"cluster must be one of {sorted(valid)}")
        frame["cluster"] = frame["cluster"].astype(int)
        if getattr(self, "guidelines", None) is not None:
            frame["prompt"] = [self.guidelines.enforce(str(p)) for p in frame["prompt"]]
        self.prompts = frame
        return frame

    # ------------------------------------------------------------- render
    def render(self, *, formats=("1:1",), engine: str = "auto", size: str | None = None,
               seed: int = 0, progress=None) -> list[dict]:
        """Render every prompt in every format into a fresh store and make every prompt
        an arm. With planted segments, score them with the reward model of a simulated
        past of the world of ``seed`` (``self.scoring`` says how); else leave them
        unscored. A new render starts a new campaign."""
        self._need_product()
        self._need_audience()
        if self.prompts is None or self.prompts.empty:
            raise StudioError("generate (or write) prompts first")
        if not formats:
            raise StudioError("choose at least one format")
        chosen, self.notice = load_engine(engine)
        store = self._fresh_store()
        self.world, self.scoring, self.campaign = None, None, []
        category = self.info.category
        jobs = [(row.cluster, str(row.prompt), fmt) for row in self.prompts.itertuples()
                for fmt in formats]
        notes, pixels = [], []
        for i, (cluster_id, text, fmt) in enumerate(jobs):
            if progress is not None:
                progress(i / len(jobs), desc=f"rendering {i + 1}/{len(jobs)}")
            pid = prompt_id(category, cluster_id, text)
            options = RenderOptions(prompt=text, format=fmt, size=size, seed=seed, anchor="bottom")
            placed = prepare(self.product, options)
            creative = render(placed, options, chosen)[0]
            png, mask_png, manifest = finish(creative, placed, self.product, options, chosen)
            notes.append({"job_key": f"{pid}|{fmt}", "product_id": self.info.name,
                          "prompt_id": pid, "cluster_id": int(cluster_id), "format": fmt,
                          "seed": seed, "image_sha256": store.put_file(png),
                          "mask_sha256": store.put_file(mask_png), "bytes": len(png) + len(mask_png),
                          "manifest": {**manifest, "product_id": self.info.name}})
            pixels.append((np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), placed.mask))
        store.add_prompts({"prompt_id": prompt_id(category, cluster_id, text),
                           "category": category, "cluster_id": cluster_id, "text": text,
                           "negative_prompt": "", "tags": "{}", "source": "ui"}
                          for cluster_id, text in {(n["cluster_id"], n["manifest"]["prompt"])
                                                   for n in notes})
        store.add_creatives(notes)  # may rename a creative whose pixels repeat another's
        records = [CreativeRecord(n["manifest"]["id"], self.info.name, n["format"],
                                  n["manifest"]["prompt"], image, mask)
                   for n, (image, mask) in zip(notes, pixels)]
        model = self._past_reward_model(records, [n["cluster_id"] for n in notes], seed)
        # Every prompt is an arm (top_m covers them all), its prior from the model.
        score_and_choose_arms(store, self.audience, model, top_m=len(self.prompts),
                              replace_arms=True)
        self.approved = {n["manifest"]["id"]: True for n in notes}
        return self.creatives()

    def _past_reward_model(self, records: list[CreativeRecord], cluster_ids: list[int],
                           seed: int):
        """The reward model of a simulated past of ``World(seed)``, in which other users
        (``make_users(PAST_USERS, 10_000 + seed)``) with drifted tastes saw these creatives
        under a uniform policy; sets ``self.world`` and ``self.scoring``. None (and no
        world) for an audience without planted segments: there is no truth to learn from."""
        from ..simulation.session import WorldSession

        if "segment" not in self.users.columns:
            self.scoring = f"not scored: {NO_WORLD}"
            return None
        self.world = WorldSession(seed)
        model = self.world.past_reward_model(records, cluster_ids, self.audience,
                                             impressions=PAST_IMPRESSIONS, past_users=PAST_USERS)
        self.scoring = (f"scored by a reward model trained on {PAST_IMPRESSIONS:,} impressions "
                        f"of a simulated past (world {seed}: other users, drifted tastes); "
                        f"its prior counts as {model.metadata_['prior_impressions']:.0f} "
                        "impressions per arm")
        return model

    def creatives(self) -> list[dict]:
        store = self._store()
        rows = sorted(store.creatives(), key=lambda r: (r["cluster_id"], r["creative_id"]))
        return [{"id": r["creative_id"], "cluster": r["cluster_id"], "format": r["format"],
                 "predicted_ctr": r["reward"], "path": str(store.file_path(r["image_sha256"])),
                 "manifest": r["manifest"],
                 "approved": self.approved.get(r["creative_id"], True)} for r in rows]

    def approve(self, creative_id: str, approved: bool) -> None:
        if creative_id not in self.approved:
            raise StudioError(f"unknown creative {creative_id!r}")
        self.approved[creative_id] = approved

    # ----------------------------------------------------------- campaign
    def simulate(self, impressions: int = 1000, *, seed: int = 0) -> pd.DataFrame:
        """Continue the simulated campaign by ``impressions`` in this render's world and
        return the policy table. Every policy faces the same impressions: the real
        selection service over the workspace store (its events and rewards go into the
        store, so the arm table shows what it learned, and the next call goes on from
        there), greedy-on-prior, random, the static creative and the per-cluster oracle.
        Each call draws a new stream (from ``seed`` and the call's number) and covers the
        next ``impressions / CAMPAIGN_LENGTH`` (``studio.simulation.session``) of the world's campaign time."""
        from ..serving.config import ServingConfig
        from ..serving.service import SelectionService
        from ..simulation.arena import Arena
        from ..simulation.policies import make_policies

        self._need_audience()
        if "segment" not in self.users.columns:
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
        return pd.DataFrame([{"cluster": a["cluster_id"], "prompt": a["prompt"][:70],
                              "prior": _percent(a["prior_ctr"]), "pulls": a["pulls"],
                              "CTR": _percent(a["ctr"]), "mean": _percent(a["mean"]),
                              "bonus": _percent(a["bonus"])} for a in report])

    # ------------------------------------------------------------- export
    def export(self) -> Path:
        """A zip of the approved creatives with their manifests and a CSV."""
        approved = [c for c in self.creatives() if c["approved"]]
        if not approved:
            raise StudioError("no approved creatives to export")
        buffer = io.BytesIO()
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(["creative_id", "cluster_id", "format", "predicted_ctr", "prompt", "file"])
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for c in approved:
                archive.write(c["path"], f"{c['id']}.png")
                archive.writestr(f"{c['id']}.json", json.dumps(c["manifest"], indent=2))
                writer.writerow([c["id"], c["cluster"], c["format"], c["predicted_ctr"],
                                 c["manifest"]["prompt"], f"{c['id']}.png"])
            archive.writestr("creatives.csv", table.getvalue())
        path = self.root / "approved-creatives.zip"
        write_atomic(path, buffer.getvalue())
        return path

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


def _percent(value) -> str | None:
    """A CTR as a percentage with two decimals (None stays None)."""
    return None if value is None else f"{value:.2%}"
