"""Where creatives, audiences and the reward model meet: feature tables of published
creatives, contexts of users and clusters, training on impression logs, scoring.

Creatives come as ``CreativeRecord`` (``creatives.records``: a folder of what ``studio
render`` publishes, or a store's rows). Impression logs are CSV files with ``creative_id``,
``click`` (0/1) — or ``clicks`` and ``impressions`` — and either ``user_id`` (the user's
encoded features are the context) or ``cluster_id`` (the cluster's centroid is).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from reward import CTRModel, FeatureCache, text_features

from ..creatives.records import CreativeRecord
from ..errors import StudioError
from ..files import MAX_DATA_BYTES, read_bytes
from ..inputs.audience import Audience
from ..inputs.tables import load_users


def store_records(store, rows: list[dict]) -> list[CreativeRecord]:
    """``CreativeRecord``s (with their pixels and masks) of a store's creative rows."""
    from PIL import Image

    return [CreativeRecord(r["creative_id"], r["product_id"], r["format"], r["manifest"]["prompt"],
                           np.asarray(Image.open(store.file_path(r["image_sha256"])).convert("RGB")),
                           np.asarray(Image.open(store.file_path(r["mask_sha256"]))) > 127)
            for r in rows]


def creative_tables(records: list[CreativeRecord], *, clip: str | None = None,
                    cache: FeatureCache | None = None):
    """(image features (m, 13), semantic features) of creatives, in order. The semantic
    block is the prompt's MiniLM embedding, followed by the CLIP image embedding when a
    CLIP model id or folder is given."""
    cache = cache or FeatureCache()
    image = cache.images([r.image for r in records], [r.mask for r in records])
    semantic = text_features([r.prompt for r in records])
    if clip:
        from reward.clip import ClipImageEmbedder

        semantic = np.hstack([semantic, ClipImageEmbedder(clip)([r.image for r in records])])
    return image, semantic


def log_contexts(log: pd.DataFrame, audience: Audience, users: pd.DataFrame | None) -> np.ndarray:
    """Context rows of an impression log: the user's encoding, or the cluster centroid."""
    if "user_id" in log.columns:
        if users is None:
            raise StudioError("the log has user_id: pass the user table (--users)")
        encoded = audience.transform(users)
        position = pd.Series(np.arange(len(users)), index=users["user_id"].astype(str))
        ids = log["user_id"].astype(str)
        missing = ids[~ids.isin(position.index)]
        if len(missing):
            raise StudioError(f"user {missing.iloc[0]!r} of the log is not in the user table")
        return encoded[position[ids].to_numpy()]
    if "cluster_id" in log.columns:
        centroids = audience.centroids_
        ids = log["cluster_id"].to_numpy()
        if ids.min() < 0 or ids.max() >= len(centroids):
            raise StudioError(f"cluster ids must be in 0..{len(centroids) - 1}")
        return centroids[ids]
    raise StudioError("the log needs a user_id or a cluster_id column")


def read_log(path) -> pd.DataFrame:
    path = Path(path)
    data = io.BytesIO(read_bytes(path, "log", MAX_DATA_BYTES))
    try:
        log = pd.read_csv(data, dtype={"user_id": str, "creative_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StudioError(f"cannot read log {str(path)!r}: {exc}") from None
    needed = {"creative_id"} | ({"clicks", "impressions"} if "clicks" in log else {"click"})
    missing = needed - set(log.columns)
    if missing:
        raise StudioError(f"log {str(path)!r} lacks columns: {', '.join(sorted(missing))}")
    if log.empty:
        raise StudioError(f"log {str(path)!r} is empty")
    return log


def train_reward_model(log: pd.DataFrame, records: list[CreativeRecord], audience: Audience,
                       users: pd.DataFrame | None = None, *, clip: str | None = None,
                       **params) -> CTRModel:
    """Fit a CTRModel on an impression log of the given creatives."""
    index = {r.creative_id: i for i, r in enumerate(records)}
    unknown = sorted(set(log["creative_id"]) - set(index))
    if unknown:
        raise StudioError(f"creative {unknown[0]!r} of the log is not in the creative folder")
    image, text = creative_tables(records, clip=clip)
    context = log_contexts(log, audience, users)
    creative = log["creative_id"].map(index).to_numpy(np.int64)
    model = CTRModel(**params)
    if "clicks" in log:
        model.fit(context, image, text, log["clicks"], log["impressions"], creative=creative)
    else:
        model.fit(context, image, text, log["click"], creative=creative)
    model.metadata_ = {"clip": clip}
    return model


def score_for_clusters(model: CTRModel, records: list[CreativeRecord],
                       audience: Audience) -> pd.DataFrame:
    """Predicted CTR of every creative for every cluster (context = the centroid)."""
    image, text = creative_tables(records, clip=getattr(model, "metadata_", {}).get("clip"))
    k, m = len(audience.clusters_), len(records)
    context = np.repeat(audience.centroids_, m, axis=0)
    creative = np.tile(np.arange(m), k)
    ctr = model.predict_ctr(context, image, text, creative=creative)
    return pd.DataFrame({
        "cluster_id": np.repeat([c.id for c in audience.clusters_], m),
        "creative_id": [records[i].creative_id for i in creative],
        "product_id": [records[i].product_id for i in creative],
        "format": [records[i].format for i in creative],
        "predicted_ctr": ctr,
    })


def load_audience_and_users(clusters, users=None) -> tuple[Audience, pd.DataFrame | None]:
    audience = Audience.load(clusters)
    table = load_users(users, ignore=audience.ignore) if users is not None else None
    return audience, table
