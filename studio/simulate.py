"""A seeded audience simulator: users who react to what is in the pixels and the prompt.

Until real traffic arrives, the reward model and the bandit are trained and judged on
simulated clicks. Every user of a table with planted taste segments (the demo audience's
``segment`` column) gets latent tastes over interpretable creative attributes:

- measured from the rendered image (``reward.image_features``): warmth, brightness,
  colourfulness, clutter, product area;
- read from the prompt: which kind of scene it sets (outdoor, home/family, luxury,
  minimal/design, eco/natural), by keywords.

A user's taste is their segment's taste plus individual noise. The true CTR of a user
for a creative is σ(bias + taste · attributes + format effect + position effect + a fixed
idiosyncratic term per (user, creative)); a click is a Bernoulli draw of it. The
simulator exposes true CTRs for oracle metrics and regret.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reward import IMAGE_FEATURES, image_features

from .errors import StudioError

ATTRIBUTES = ("warmth", "brightness", "colourfulness", "clutter", "product_area",
              "scene_outdoor", "scene_home", "scene_luxury", "scene_minimal", "scene_eco")
#: Image attributes are centred and scaled to "typical deviations" before tastes apply.
_IMAGE_SCALE = {"warmth": (0.05, 0.15), "brightness": (0.6, 0.2), "colourfulness": (0.25, 0.2),
                "clutter": (0.05, 0.05), "product_area": (0.15, 0.1)}
SCENE_WORDS = {
    "scene_outdoor": ("mountain", "trail", "forest", "campsite", "campfire", "river", "alpine",
                      "snow", "beach", "mossy", "rock", "lake", "gravel", "sand", "tent"),
    "scene_home": ("kitchen", "family", "kids", "playroom", "picnic", "birthday", "toy",
                   "balloons", "blanket", "park", "cheerful"),
    "scene_luxury": ("luxury", "hotel", "yacht", "gala", "candlelit", "fashion", "velvet",
                     "black marble", "gold", "champagne", "high-end", "mirrored", "lounge"),
    "scene_minimal": ("minimalist", "studio", "concrete", "gallery", "scandinavian",
                      "architecture", "monochrome", "catalog", "glass shelf", "ceramic", "coffee"),
    "scene_eco": ("greenhouse", "plants", "farmers market", "zero-waste", "recycled", "kraft",
                  "garden", "yoga", "terracotta", "sage", "leaves", "documentary"),
}
#: Log-odds per typical deviation of each attribute, by planted segment.
SEGMENT_TASTES = {
    "outdoor": {"scene_outdoor": 1.6, "warmth": 0.6, "brightness": 0.5, "clutter": 0.3},
    "minimalist": {"scene_minimal": 1.6, "clutter": -0.8, "colourfulness": -0.8, "brightness": 0.4},
    "luxury": {"scene_luxury": 1.6, "brightness": -0.9, "warmth": 0.3, "product_area": 0.6},
    "family": {"scene_home": 1.6, "colourfulness": 0.9, "brightness": 0.6},
    "eco": {"scene_eco": 1.6, "warmth": 0.5, "colourfulness": -0.3},
}
FORMAT_EFFECT = {"keep": 0.0, "1:1": 0.0, "4:5": 0.1, "9:16": 0.15, "1.91:1": -0.1}
POSITION_EFFECT = 0.25  # log-odds lost per slot below the first


def creative_attributes(image: np.ndarray, product_mask: np.ndarray, prompt: str) -> np.ndarray:
    """The simulator's attribute vector of a creative (order of ``ATTRIBUTES``)."""
    features = dict(zip(IMAGE_FEATURES, image_features(image, product_mask)))
    values = [(features[name] - centre) / scale for name, (centre, scale) in _IMAGE_SCALE.items()]
    text = prompt.lower()
    values += [float(any(word in text for word in words)) for words in SCENE_WORDS.values()]
    return np.array(values, dtype=np.float64)


@dataclass
class SimulatedCreative:
    """What the simulator needs of a creative."""

    creative_id: str
    product_id: str
    format: str
    attributes: np.ndarray


class AudienceSimulator:
    """Latent tastes for every user of ``users`` (needs a ``segment`` column).

    ``bias`` is the base log-odds (−5.0: about 3 % CTR overall on the demo pool); ``taste_noise`` the per-user spread
    around the segment's taste; ``idiosyncrasy`` the spread of the fixed per
    (user, creative) term.
    """

    def __init__(self, users: pd.DataFrame, *, seed: int = 0, bias: float = -5.0,
                 taste_noise: float = 0.15, idiosyncrasy: float = 0.1):
        if "segment" not in users.columns or "user_id" not in users.columns:
            raise StudioError("the simulator needs a user table with user_id and segment "
                              "columns (the planted truth, as in assets/demo/users.csv)")
        unknown = sorted(set(users["segment"]) - set(SEGMENT_TASTES))
        if unknown:
            raise StudioError(f"unknown segments {', '.join(map(str, unknown))}; the simulator "
                              f"knows {', '.join(SEGMENT_TASTES)}")
        self.users = users.reset_index(drop=True)
        self.seed = seed
        self.bias = bias
        self.idiosyncrasy = idiosyncrasy
        rng = np.random.default_rng(seed)
        self.segment_tastes = np.array([[SEGMENT_TASTES[s].get(a, 0.0) for a in ATTRIBUTES]
                                        for s in self.users["segment"]])
        self.tastes = self.segment_tastes + rng.normal(0.0, taste_noise, self.segment_tastes.shape)

    def true_ctr(self, user_index, creatives: list[SimulatedCreative], creative_index,
                 position=None) -> np.ndarray:
        """True click probability of each (user, creative[, position]) row."""
        users = np.asarray(user_index, dtype=np.int64)
        chosen = np.asarray(creative_index, dtype=np.int64)
        logit = self._logit(self.tastes[users], creatives, chosen, position)
        ids = np.array([c.creative_id for c in creatives])[chosen]
        logit += self.idiosyncrasy * _hashed_normal(users, ids, self.seed)
        return 1.0 / (1.0 + np.exp(-logit))

    def segment_ctr(self, user_index, creatives: list[SimulatedCreative], creative_index,
                    position=None) -> np.ndarray:
        """CTR from the user's *segment* taste only (no individual noise): the best any
        model can do from what is observable about a user."""
        users = np.asarray(user_index, dtype=np.int64)
        chosen = np.asarray(creative_index, dtype=np.int64)
        logit = self._logit(self.segment_tastes[users], creatives, chosen, position)
        return 1.0 / (1.0 + np.exp(-logit))

    def _logit(self, tastes, creatives, chosen, position) -> np.ndarray:
        attributes = np.stack([c.attributes for c in creatives])[chosen]
        formats = np.array([FORMAT_EFFECT.get(c.format, 0.0) for c in creatives])[chosen]
        logit = self.bias + (tastes * attributes).sum(axis=1) + formats
        if position is not None:
            logit -= POSITION_EFFECT * (np.asarray(position) - 1)
        return logit

    def simulate(self, creatives: list[SimulatedCreative], n_impressions: int, *,
                 seed: int = 0, choose=None) -> pd.DataFrame:
        """A log of ``n_impressions``: a uniformly random user sees a creative of a
        uniformly random product — chosen uniformly among that product's creatives, or
        by ``choose(user_index, candidate_indices, rng) -> index`` — and clicks or not."""
        if not creatives:
            raise StudioError("no creatives to simulate")
        if n_impressions < 1:
            raise StudioError(f"n_impressions must be >= 1, got {n_impressions}")
        rng = np.random.default_rng(seed)
        by_product: dict[str, list[int]] = {}
        for i, c in enumerate(creatives):
            by_product.setdefault(c.product_id, []).append(i)
        products = list(by_product)
        users = rng.integers(0, len(self.users), n_impressions)
        product_pick = rng.integers(0, len(products), n_impressions)
        if choose is None:
            offsets = rng.random(n_impressions)
            chosen = np.array([by_product[products[p]][int(o * len(by_product[products[p]]))]
                               for p, o in zip(product_pick, offsets)])
        else:
            chosen = np.array([choose(int(u), by_product[products[p]], rng)
                               for u, p in zip(users, product_pick)])
        ctr = self.true_ctr(users, creatives, chosen)
        clicks = (rng.random(n_impressions) < ctr).astype(np.int64)
        return pd.DataFrame({
            "impression": np.arange(n_impressions),
            "user_index": users,
            "user_id": self.users["user_id"].to_numpy()[users],
            "creative_index": chosen,
            "creative_id": [creatives[i].creative_id for i in chosen],
            "product_id": [creatives[i].product_id for i in chosen],
            "format": [creatives[i].format for i in chosen],
            "true_ctr": ctr,
            "click": clicks,
        })


def _hashed_normal(users: np.ndarray, ids: np.ndarray, seed: int) -> np.ndarray:
    """A fixed standard-normal draw per (user, creative id, seed)."""
    keys = np.array([zlib.crc32(f"{seed}|{u}|{c}".encode()) for u, c in zip(users, ids)],
                    dtype=np.uint64)
    u1 = (keys % 100_003 + 0.5) / 100_003
    u2 = ((keys // 100_003) % 100_019 + 0.5) / 100_019
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
