"""The simulated audience world: a hidden truth the studio cannot see.

Until real traffic exists, policies are judged in simulation. A simulation is evidence
only if the studio cannot game it: if the "true" CTR were a function of the studio's own
features (``reward.image_features``, the MiniLM prompt embedding, the template writer's
vocabulary), the reward model would merely recover the simulator's generative form and a
bandit could not be worth more than its prior. So this world reads creatives through
representations the studio never uses, and keeps a part of every creative's appeal that
no feature predicts:

- **Concepts** (``CONCEPTS``): a lexicon of eleven concepts with synonyms, matched as whole
  words in the prompt. It is the world's own reading of a scene, not the template
  writer's slots and phrases (a test checks the two differ).
- **Visuals**: a fixed random projection (drawn per world) of an 8×8 CIE-Lab thumbnail of
  the creative, squashed with tanh — nothing like the studio's 13 colour statistics.
- **Latent appeal** no feature predicts: a random draw per creative *concept* (its
  normalised prompt: renders of one prompt share it, across products) plus a smaller one
  per rendered creative, shared across users; and a latent vector per concept that
  interacts with each segment's (and user's) hidden loadings (taste × appeal).

The true click probability of user *u* for creative *c* at campaign time *t* ∈ [0, 1] in
slot *p* is σ(logit), with

    logit = logit(base_ctr) + β_u + (T_seg(u)(t) + ε_u) · [concepts_c, visuals_c]
            + appeal_c + (M_seg(u)(t) + η_u) · latent_c + format_c − position_decay · (p − 1)

β_u is a user's own click propensity, T and M the segment's tastes and appeal loadings,
ε and η a user's deviations from them. Segment tastes are part plausible (``ANCHORS``:
what a marketer would guess — outdoor people like mountains) and part random per world.

**Drift**: tastes and loadings at the campaign start differ from those of the *past*
period (``past_drift``, the sd of the change), and move linearly during the campaign
(``campaign_drift``, the sd of the change from start to end). The past period has its own
users (another draw of the population). Reward models that warm-start the bandit are
trained on the past; policies are judged on the campaign.

Every draw is seeded by the world's ``seed``; the same seed gives the same world.
``World.describe()`` prints every parameter. Nothing outside ``studio.simulation`` may
import this module (a test checks it): the studio's reward model, bandit, serving and
prompt writing never see the truth.

Why this module is long: the world is one generative model — its configuration,
populations, the concept and visual readings of a creative and the click probability are
together the truth the studio must not see. Kept in one module, the test that nothing
outside ``studio.simulation`` imports it guards all of the truth at once.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd

from ..errors import StudioError

#: The world's concepts and the words that evoke them (whole-word, case-insensitive).
CONCEPTS = {
    "greenery": ("forest", "moss", "mossy", "leaves", "leaf", "plants", "plant", "garden",
                 "greenhouse", "meadow", "fern", "tree", "trees", "woodland", "herbs"),
    "water": ("beach", "river", "riverbank", "lake", "ocean", "sea", "waves", "rain", "pool",
              "shore", "harbour", "harbor", "yacht", "spa"),
    "mountain": ("mountain", "alpine", "trail", "rock", "rocky", "cliff", "summit", "snow",
                 "peak", "campsite", "tent", "gravel", "granite"),
    "warm_light": ("golden", "sunset", "dawn", "candlelight", "candlelit", "sunlight",
                   "sunny", "warm", "campfire", "fire", "glow", "amber"),
    "cool_light": ("overcast", "winter", "moonlight", "crisp", "shade", "diffused", "cool",
                   "blue", "silver", "night"),
    "opulence": ("marble", "gold", "velvet", "champagne", "gala", "silk", "jewel", "crystal",
                 "plinth", "luxury", "high-end", "satin", "mirrored", "hotel"),
    "home": ("kitchen", "living", "home", "family", "blanket", "sofa", "breakfast", "cozy",
             "cosy", "pantry", "bedroom", "playroom"),
    "handmade": ("wood", "wooden", "linen", "ceramic", "terracotta", "kraft", "handmade",
                 "woven", "paper", "clay", "rustic", "wicker"),
    "urban": ("concrete", "city", "street", "gallery", "architecture", "loft", "metro", "neon",
              "rooftop", "studio", "backstage"),
    "play": ("toy", "balloon", "balloons", "kids", "party", "birthday", "cheerful", "confetti",
             "colorful", "colourful", "picnic", "playful"),
    "sparse": ("minimalist", "minimal", "plain", "clean", "monochrome", "white", "simple",
               "catalog", "bare", "empty", "scandinavian"),
}
#: The plausible part of each segment's taste (log-odds per concept present), scaled by
#: ``WorldConfig.anchor_weight``; the rest of a taste is random per world.
ANCHORS = {
    "outdoor": {"mountain": 1.0, "greenery": 0.6, "water": 0.5, "warm_light": 0.3, "opulence": -0.5},
    "minimalist": {"sparse": 1.0, "urban": 0.6, "cool_light": 0.4, "play": -0.6, "handmade": 0.2},
    "luxury": {"opulence": 1.0, "water": 0.3, "warm_light": 0.3, "play": -0.6, "handmade": -0.3},
    "family": {"home": 1.0, "play": 0.8, "warm_light": 0.3, "opulence": -0.4, "sparse": -0.3},
    "eco": {"greenery": 1.0, "handmade": 0.7, "warm_light": 0.2, "opulence": -0.6, "urban": -0.3},
}
SEGMENTS = tuple(ANCHORS)
FORMATS = ("keep", "1:1", "4:5", "9:16", "1.91:1")
PERIODS = ("past", "campaign")
THUMBNAIL = 8  # the world looks at an 8×8 Lab thumbnail


@dataclass(frozen=True)
class WorldConfig:
    """Every parameter of the world (log-odds unless said otherwise).

    base_ctr : click probability of an average user for a creative with no concept, zero
        appeal, in slot 1 (the realised mean CTR lands near it: 0.5–3 %).
    user_bias_sd : spread of users' own click propensity β_u.
    anchor_weight : scale of the plausible part of segment tastes (``ANCHORS``).
    concept_taste_sd : spread of the random part of segment tastes over concepts.
    visual_dims, visual_taste_sd : size of the visual projection, spread of tastes over it.
    appeal_sd : spread of the latent appeal of a creative concept (its prompt).
    creative_appeal_sd : spread of the latent appeal of one rendered creative.
    latent_dims, interaction_sd : size of the latent appeal vector, and the spread of the
        taste × appeal interaction term for a segment.
    individual_sd : spread of a user's tastes and loadings around the segment's.
    format_sd : spread of the per-format effect.
    slots, position_decay : number of ad slots, log-odds lost per slot below the first.
    past_drift : sd of the change of segment tastes and loadings from the past period to
        the campaign start (0 = the past predicts the campaign).
    campaign_drift : sd of their change from the campaign's start to its end (linear).
    """

    base_ctr: float = 0.012
    user_bias_sd: float = 0.4
    anchor_weight: float = 0.3
    concept_taste_sd: float = 0.15
    visual_dims: int = 4
    visual_taste_sd: float = 0.1
    appeal_sd: float = 0.12
    creative_appeal_sd: float = 0.04
    latent_dims: int = 3
    interaction_sd: float = 0.1
    individual_sd: float = 0.1
    format_sd: float = 0.05
    slots: int = 3
    position_decay: float = 0.3
    past_drift: float = 0.25
    campaign_drift: float = 0.08

    def __post_init__(self):
        if not 0 < self.base_ctr < 0.2:
            raise StudioError(f"base_ctr must be in (0, 0.2), got {self.base_ctr}")
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise StudioError(f"{f.name} must be a finite number >= 0, got {value}")
        for name in ("visual_dims", "latent_dims", "slots"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise StudioError(f"{name} must be an integer >= 1, got {getattr(self, name)}")

    def without_drift(self) -> "WorldConfig":
        """The same world with a past that predicts the campaign (no drift at all)."""
        return replace(self, past_drift=0.0, campaign_drift=0.0)


@dataclass
class CreativeSet:
    """What the world reads of a list of creatives (rows in the order given)."""

    ids: list
    features: np.ndarray  # (n, concepts + visual dims): concepts present, then visuals
    appeal: np.ndarray  # (n,)
    latent: np.ndarray  # (n, latent_dims)
    format_effect: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.ids)


class World:
    """A seeded hidden-truth world. See the module docstring for the model."""

    def __init__(self, seed: int = 0, config: WorldConfig | None = None):
        self.seed = int(seed)
        self.config = config or WorldConfig()
        c = self.config
        rng = np.random.default_rng([self.seed, 1])
        n_concepts, d = len(CONCEPTS), len(CONCEPTS) + c.visual_dims
        anchors = np.array([[ANCHORS[s].get(k, 0.0) for k in CONCEPTS] for s in SEGMENTS])
        tastes = np.zeros((len(SEGMENTS), d))
        tastes[:, :n_concepts] = c.anchor_weight * anchors + rng.normal(
            0, c.concept_taste_sd, (len(SEGMENTS), n_concepts))
        tastes[:, n_concepts:] = rng.normal(0, c.visual_taste_sd, (len(SEGMENTS), c.visual_dims))
        loadings = rng.normal(0, c.interaction_sd / np.sqrt(c.latent_dims),
                              (len(SEGMENTS), c.latent_dims))
        #: segment parameters at the campaign start: tastes (S, d) | loadings (S, L)
        self.start_ = np.hstack([tastes, loadings])
        width = self.start_.shape[1]
        self.past_ = self.start_ + rng.normal(0, c.past_drift, (len(SEGMENTS), width))
        self.campaign_change_ = rng.normal(0, c.campaign_drift, (len(SEGMENTS), width))
        self.projection_ = rng.normal(0, 1.0 / np.sqrt(3 * THUMBNAIL ** 2),
                                      (c.visual_dims, 3 * THUMBNAIL ** 2))
        self.format_effects_ = dict(zip(FORMATS, rng.normal(0, c.format_sd, len(FORMATS))))
        self.intercept_ = float(np.log(c.base_ctr / (1 - c.base_ctr)))

    # ---------------------------------------------------------------- creatives
    def read(self, creative_ids, prompts, images, formats) -> CreativeSet:
        """What the world sees of creatives: concepts in the prompt, visuals of the image
        (an RGB array), latent appeal drawn per concept and per creative, format."""
        ids, prompts, formats = list(creative_ids), list(prompts), list(formats)
        if not (len(ids) == len(prompts) == len(images) == len(formats)):
            raise StudioError("creative ids, prompts, images and formats differ in length")
        unknown = sorted(set(formats) - set(FORMATS))
        if unknown:
            raise StudioError(f"unknown format {unknown[0]!r}; the world knows {', '.join(FORMATS)}")
        c = self.config
        concepts = np.array([concept_vector(p) for p in prompts]).reshape(len(ids), len(CONCEPTS))
        thumbs = np.array([lab_thumbnail(im) for im in images]).reshape(len(ids), -1)
        visuals = np.tanh(thumbs @ self.projection_.T)
        concept_draws = np.array([self._draw("concept", _normalise(p), 1 + c.latent_dims)
                                  for p in prompts]).reshape(len(ids), -1)
        creative_draws = np.array([self._draw("creative", str(i), 1)[0] for i in ids])
        return CreativeSet(
            ids=ids, features=np.hstack([concepts, visuals]),
            appeal=c.appeal_sd * concept_draws[:, 0] + c.creative_appeal_sd * creative_draws,
            latent=concept_draws[:, 1:],
            format_effect=np.array([self.format_effects_[f] for f in formats]))

    def _draw(self, kind: str, key: str, size: int) -> np.ndarray:
        """A fixed standard-normal draw per (world, kind, key)."""
        return np.random.default_rng([self.seed, zlib.crc32(f"{kind}|{key}".encode())]).normal(size=size)

    # ----------------------------------------------------------------- people
    def population(self, users: pd.DataFrame, period: str = "campaign") -> "Population":
        """The users of a table (with the planted ``segment`` column) in a period."""
        if period not in PERIODS:
            raise StudioError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
        if "segment" not in users.columns:
            raise StudioError("the world needs users with a planted segment column "
                              "(as in assets/demo/users.csv); an audience of your own has no "
                              "hidden truth to simulate — real campaigns learn from clicks")
        unknown = sorted(set(users["segment"]) - set(SEGMENTS))
        if unknown:
            raise StudioError(f"unknown segment {unknown[0]!r}; the world knows {', '.join(SEGMENTS)}")
        return Population(self, users.reset_index(drop=True), period)

    def describe(self) -> str:
        """Every parameter of this world, and what its segments like, as text."""
        lines = [f"World seed {self.seed}: hidden truth the studio cannot see "
                 "(concept lexicon, Lab-thumbnail projection, latent appeal).",
                 "Parameters (log-odds unless said otherwise):"]
        lines += [f"  {k} = {v}" for k, v in asdict(self.config).items()]
        lines.append("  format effects: " + ", ".join(f"{k} {v:+.3f}"
                                                      for k, v in self.format_effects_.items()))
        names = list(CONCEPTS)
        for s, segment in enumerate(SEGMENTS):
            taste = self.start_[s, :len(names)]
            order = np.argsort(-taste)
            lines.append(f"  {segment}: likes " + ", ".join(f"{names[i]} {taste[i]:+.2f}" for i in order[:3])
                         + "; dislikes " + ", ".join(f"{names[i]} {taste[i]:+.2f}" for i in order[-2:]))
        drift = np.abs(self.past_ - self.start_).mean()
        lines.append(f"  mean |past − campaign start| of segment parameters: {drift:.3f}; "
                     f"mean |campaign change|: {np.abs(self.campaign_change_).mean():.3f}")
        return "\n".join(lines)


class Population:
    """Users of one period with their hidden propensities and tastes."""

    def __init__(self, world: World, users: pd.DataFrame, period: str):
        self.world = world
        self.users = users
        self.period = period
        c = world.config
        self.segment_ = np.array([SEGMENTS.index(s) for s in users["segment"]])
        rng = np.random.default_rng([world.seed, 2, PERIODS.index(period)])
        width = world.start_.shape[1]
        self.bias_ = rng.normal(0, c.user_bias_sd, len(users))
        self.deviation_ = rng.normal(0, c.individual_sd, (len(users), width))

    def __len__(self) -> int:
        return len(self.users)

    def parameters(self, t=0.0) -> np.ndarray:
        """Segment parameters (S, width) at campaign time ``t`` (the past is static)."""
        if self.period == "past":
            return self.world.past_
        return self.world.start_ + float(t) * self.world.campaign_change_

    def ctr(self, users, creatives: CreativeSet, chosen, *, t=0.0, position=1) -> np.ndarray:
        """True click probability. ``users`` (n,) index this population; ``chosen`` (n,)
        or (n, K) index ``creatives``; ``position`` is the slot (1 = top), scalar or (n,)."""
        return _sigmoid(self.logit(users, creatives, chosen, t=t, position=position))

    def logit(self, users, creatives: CreativeSet, chosen, *, t=0.0, position=1) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        chosen = np.asarray(chosen, dtype=np.int64)
        params = self.parameters(t)[self.segment_[users]] + self.deviation_[users]  # (n, width)
        d = creatives.features.shape[1]
        tastes, loadings = params[:, :d], params[:, d:]
        if chosen.ndim == 1:
            value = ((tastes * creatives.features[chosen]).sum(axis=1)
                     + (loadings * creatives.latent[chosen]).sum(axis=1))
        else:
            value = (np.einsum("nd,nkd->nk", tastes, creatives.features[chosen])
                     + np.einsum("nl,nkl->nk", loadings, creatives.latent[chosen]))
        base = self.world.intercept_ + self.bias_[users]
        slot = self.world.config.position_decay * (np.asarray(position, dtype=np.float64) - 1)
        if chosen.ndim > 1:
            base = base[:, None]
            slot = slot.reshape(-1, 1) if slot.ndim else slot
        base = base - slot
        return base + value + creatives.appeal[chosen] + creatives.format_effect[chosen]

    def ctr_matrix(self, creatives: CreativeSet, *, t=0.0, position=1) -> np.ndarray:
        """True CTR of every user (rows) for every creative (columns)."""
        n, m = len(self), len(creatives)
        chosen = np.broadcast_to(np.arange(m), (n, m))
        return self.ctr(np.arange(n), creatives, chosen, t=t, position=position)


def concept_vector(prompt: str) -> np.ndarray:
    """1.0 for each concept (``CONCEPTS``) evoked by a word of the prompt, else 0.0."""
    words = set(re.findall(r"[a-z]+(?:-[a-z]+)?", prompt.lower()))
    return np.array([float(any(w in words for w in synonyms)) for synonyms in CONCEPTS.values()])


def lab_thumbnail(image) -> np.ndarray:
    """An 8×8 CIE-Lab thumbnail of an RGB image, scaled to about [-1, 1], flattened."""
    import cv2
    from PIL import Image

    pixels = np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
                        .resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX), dtype=np.float32)
    lab = cv2.cvtColor(pixels / 255.0, cv2.COLOR_RGB2Lab)
    return np.concatenate([(lab[..., 0].ravel() - 50.0) / 50.0, lab[..., 1].ravel() / 50.0,
                           lab[..., 2].ravel() / 50.0])


def _normalise(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))
