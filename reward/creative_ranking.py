"""Loader for Alibaba's CreativeRanking dataset format (Tianchi dataset 93585).

The public release (about 1.7 M creatives of ~500 k products) is a table with one row per
(creative, day): ``item_id`` (the product), ``image`` (the creative's image file name),
``ds`` (the day, YYYYMMDD), ``pv`` (impressions) and ``clk`` (clicks), plus a folder of
the images. It cannot be downloaded here; to use it, download it from
https://tianchi.aliyun.com/dataset/93585, unpack it, and call::

    log = load_creative_ranking("CreativeRanking/train.csv", images_dir="CreativeRanking/images")

The file may be comma- or tab-separated. Rows are validated (0 <= clk <= pv, pv > 0) and
can be aggregated over days per creative. Pairwise accuracy within ``item_id`` — the
metric CG4CTR and KwaiMind report — is ``reward.pairwise_accuracy`` with
``groups=log.product_id`` and ``creative_ids=log.image``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import RewardError

COLUMNS = ("item_id", "image", "ds", "pv", "clk")


def load_creative_ranking(path, *, images_dir=None, aggregate: bool = False,
                          check_images: bool = False):
    """Read a CreativeRanking table as a DataFrame with columns product_id, image, day,
    impressions, clicks, ctr (and image_path when ``images_dir`` is given)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise RewardError(f"CreativeRanking file {str(path)!r} does not exist")
    try:
        frame = pd.read_csv(path, sep=None, engine="python", dtype={"item_id": str, "image": str,
                                                                    "ds": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RewardError(f"cannot read {str(path)!r}: {exc}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise RewardError(f"{str(path)!r} lacks CreativeRanking columns: {', '.join(missing)} "
                          f"(expected {', '.join(COLUMNS)})")
    if frame.empty:
        raise RewardError(f"{str(path)!r} has no rows")
    for column in ("pv", "clk"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna())[0])
            raise RewardError(f"{column} is not a number in row {row + 1}")
        frame[column] = values
    bad = (frame["pv"] <= 0) | (frame["clk"] < 0) | (frame["clk"] > frame["pv"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise RewardError(f"row {row + 1} has clk={frame['clk'].iloc[row]} and "
                          f"pv={frame['pv'].iloc[row]}: need 0 <= clk <= pv and pv > 0")
    days = pd.to_datetime(frame["ds"], format="%Y%m%d", errors="coerce")
    if days.isna().any():
        row = int(np.flatnonzero(days.isna())[0])
        raise RewardError(f"ds {frame['ds'].iloc[row]!r} in row {row + 1} is not a YYYYMMDD date")
    log = pd.DataFrame({"product_id": frame["item_id"], "image": frame["image"], "day": days,
                        "impressions": frame["pv"].astype(np.int64),
                        "clicks": frame["clk"].astype(np.int64)})
    if aggregate:
        log = (log.groupby(["product_id", "image"], as_index=False, sort=False)
               .agg(day=("day", "max"), impressions=("impressions", "sum"),
                    clicks=("clicks", "sum")))
    log["ctr"] = log["clicks"] / log["impressions"]
    if images_dir is not None:
        images_dir = Path(images_dir)
        log["image_path"] = [str(images_dir / name) for name in log["image"]]
        if check_images:
            absent = [p for p in log["image_path"] if not Path(p).is_file()]
            if absent:
                raise RewardError(f"{len(absent)} images are missing, e.g. {absent[0]!r}")
    return log
