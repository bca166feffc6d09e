"""Synthetic user populations with planted taste segments (the demo audience and the
simulated world's other audiences).

Five planted taste segments — outdoor, minimalist, luxury, family, eco — differ in their
interest tags first, and somewhat in age, income, device and region. Each user mostly
carries tags of their own segment plus an occasional tag of another. The ``segment``
column keeps the planted truth: fitting ignores it; tests use it to check that the
clustering recovers the segments, and the simulated world (``world.py``) gives each
segment its hidden tastes. ``assets/demo/make_users.py`` writes the bundled table
(seed 7); the world's *past* period draws another population with another seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Per segment: share of users, tag → probability, age (mean, sd), income k€ (mean, sd),
#: device and region distributions.
SEGMENTS = {
    "outdoor": dict(
        share=0.22, age=(33, 9), income=(48, 14),
        tags={"hiking": 0.65, "camping": 0.5, "trail running": 0.4, "climbing": 0.3,
              "mountains": 0.45, "cycling": 0.3, "kayaking": 0.2, "national parks": 0.3,
              "skiing": 0.25, "fishing": 0.15},
        device={"mobile": 0.7, "desktop": 0.2, "tablet": 0.1},
        region={"north": 0.35, "south": 0.15, "east": 0.2, "west": 0.3}),
    "minimalist": dict(
        share=0.2, age=(30, 6), income=(58, 15),
        tags={"interior design": 0.55, "architecture": 0.5, "scandinavian design": 0.4,
              "typography": 0.3, "ceramics": 0.3, "photography": 0.35, "modern art": 0.3,
              "tidy living": 0.3, "specialty coffee": 0.3},
        device={"mobile": 0.45, "desktop": 0.45, "tablet": 0.1},
        region={"north": 0.2, "south": 0.2, "east": 0.35, "west": 0.25}),
    "luxury": dict(
        share=0.16, age=(42, 10), income=(110, 30),
        tags={"fine dining": 0.5, "fashion week": 0.4, "cocktails": 0.4, "opera": 0.2,
              "jewelry": 0.45, "champagne": 0.35, "yachting": 0.15, "haute couture": 0.3,
              "gala evenings": 0.3},
        device={"mobile": 0.5, "desktop": 0.3, "tablet": 0.2},
        region={"north": 0.15, "south": 0.35, "east": 0.2, "west": 0.3}),
    "family": dict(
        share=0.22, age=(37, 6), income=(55, 12),
        tags={"parenting": 0.6, "board games": 0.4, "theme parks": 0.35, "baking": 0.4,
              "cartoons": 0.3, "birthday parties": 0.3, "pets": 0.3, "crafts": 0.3,
              "picnics": 0.3},
        device={"mobile": 0.6, "desktop": 0.15, "tablet": 0.25},
        region={"north": 0.25, "south": 0.3, "east": 0.25, "west": 0.2}),
    "eco": dict(
        share=0.2, age=(27, 7), income=(38, 10),
        tags={"sustainability": 0.6, "zero waste": 0.4, "gardening": 0.45, "vegan food": 0.4,
              "upcycling": 0.3, "farmers markets": 0.35, "yoga": 0.3, "plant care": 0.35,
              "thrifting": 0.3},
        device={"mobile": 0.75, "desktop": 0.15, "tablet": 0.1},
        region={"north": 0.3, "south": 0.2, "east": 0.2, "west": 0.3}),
}


def make_users(n: int = 5000, seed: int = 7) -> pd.DataFrame:
    """A user table with the studio's schema plus the planted ``segment``."""
    rng = np.random.default_rng(seed)
    names = list(SEGMENTS)
    shares = np.array([SEGMENTS[s]["share"] for s in names])
    segments = rng.choice(names, size=n, p=shares / shares.sum())
    rows = []
    for i, segment in enumerate(segments):
        spec = SEGMENTS[segment]
        tags = [t for t, p in spec["tags"].items() if rng.random() < p]
        if len(tags) < 2:  # everyone has at least two of their segment's interests
            pool = [t for t in spec["tags"] if t not in tags]
            tags += list(rng.choice(pool, size=2 - len(tags), replace=False))
        if rng.random() < 0.3:  # an interest from another segment
            other = SEGMENTS[rng.choice([s for s in names if s != segment])]
            tags.append(str(rng.choice(list(other["tags"]))))
        rng.shuffle(tags)
        rows.append({
            "user_id": f"u{i + 1:06d}",
            "age": int(np.clip(rng.normal(*spec["age"]), 18, 80)),
            "income_k": round(float(np.clip(rng.normal(*spec["income"]), 12, 400)), 1),
            "sessions_per_week": round(float(rng.gamma(2.0, 1.5)), 1),
            "device": rng.choice(list(spec["device"]), p=list(spec["device"].values())),
            "region": rng.choice(list(spec["region"]), p=list(spec["region"].values())),
            "interests": ";".join(dict.fromkeys(tags)),
            "segment": segment,
        })
    return pd.DataFrame(rows)
