"""The Open Bandit Dataset (Saito et al., 2021; ZOZOTOWN fashion e-commerce).

The small sample that ships inside the ``obp`` package (``obp/dataset/obd/{random,bts}/
{all,men,women}/``, 10,000 rounds each) is read straight from its CSV files — obp itself
is not imported (it pins old dependencies). Context = one-hot user features (aligned over
the random and bts logs of a campaign, so both have the same columns) plus the user–item
affinity columns; actions = items; reward = click; propensity = the logging policy's
``propensity_score``; position = the slot the item was shown in (ZOZOTOWN shows three;
1-based in the CSV, 0-based in the log, as in obp's own loader) — a policy that depends
on the slot is evaluated with an (n, K, n_positions) action distribution. The data is for
research use: it is read from the installed package and never copied into this
repository.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .errors import BanditError
from .evaluation import BanditLog

BEHAVIOR_POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
USER_FEATURES = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")


def obd_root(data_path: str | Path | None = None) -> Path:
    """The ``obd`` folder: ``data_path`` or the one inside the installed obp package."""
    if data_path is not None:
        root = Path(data_path)
    else:
        spec = importlib.util.find_spec("obp")  # locates the package without importing it
        if spec is None or spec.origin is None:
            raise BanditError(
                "the Open Bandit Dataset sample was not found: install it with "
                "`pip install --no-deps --ignore-requires-python obp==0.5.7`, or pass data_path")
        root = Path(spec.origin).parent / "dataset" / "obd"
    if not root.is_dir():
        raise BanditError(f"Open Bandit Dataset folder {str(root)!r} does not exist")
    return root


def load_obd(behavior_policy: str = "random", campaign: str = "all", *,
             data_path: str | Path | None = None, affinity: bool = True,
             position: int | None = None) -> BanditLog:
    """Load one log of the dataset as a ``BanditLog`` with each round's slot in
    ``positions`` (0-based); ``position`` (1-based, as in the CSV) keeps one slot only."""
    import pandas as pd

    if behavior_policy not in BEHAVIOR_POLICIES:
        raise BanditError(f"behavior_policy must be one of {BEHAVIOR_POLICIES}, got {behavior_policy!r}")
    if campaign not in CAMPAIGNS:
        raise BanditError(f"campaign must be one of {CAMPAIGNS}, got {campaign!r}")
    root = obd_root(data_path)
    frame = _read(root, behavior_policy, campaign)
    slots = frame["position"].to_numpy()
    if not np.issubdtype(slots.dtype, np.integer) or slots.min() < 1:
        raise BanditError(f"the position column of {behavior_policy}/{campaign} must hold "
                          f"integers >= 1")
    n_positions = int(slots.max())
    if position is not None:
        frame = frame[frame["position"] == position]
        if frame.empty:
            raise BanditError(f"no rounds at position {position}")
    items = pd.read_csv(root / behavior_policy / campaign / "item_context.csv", index_col=0)
    n_actions = int(items["item_id"].max()) + 1
    categories = user_feature_categories(campaign, data_path=root)
    columns = [np.asarray(frame[name].astype(str).map({c: i for i, c in enumerate(categories[name])}))
               for name in USER_FEATURES]
    blocks = [np.eye(len(categories[name]))[index] for name, index in zip(USER_FEATURES, columns)]
    if affinity:
        affinity_columns = [f"user-item_affinity_{i}" for i in range(n_actions)]
        blocks.append(frame[affinity_columns].to_numpy(dtype=np.float64))
    contexts = np.hstack(blocks)
    return BanditLog(contexts, frame["item_id"].to_numpy(np.int64),
                     frame["click"].to_numpy(np.float64),
                     frame["propensity_score"].to_numpy(np.float64), n_actions,
                     tuple(range(n_actions)), frame["position"].to_numpy(np.int64) - 1,
                     n_positions)


def user_feature_categories(campaign: str = "all", *, data_path: str | Path | None = None) -> dict:
    """Sorted category values of each user feature over both logs of ``campaign``."""
    root = obd_root(data_path)
    values: dict[str, set] = {name: set() for name in USER_FEATURES}
    for policy in BEHAVIOR_POLICIES:
        if (root / policy / campaign / f"{campaign}.csv").exists():
            frame = _read(root, policy, campaign)
            for name in USER_FEATURES:
                values[name].update(frame[name].astype(str))
    return {name: sorted(v) for name, v in values.items()}


def _read(root: Path, policy: str, campaign: str):
    import pandas as pd

    path = root / policy / campaign / f"{campaign}.csv"
    if not path.exists():
        raise BanditError(f"Open Bandit Dataset file {str(path)!r} does not exist")
    return pd.read_csv(path, index_col=0)
