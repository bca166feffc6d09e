"""The selection service behind the API: contexts, LinUCB per category, the event log.

An arm is a prompt of a (category, cluster) pool; the creative served is that prompt's
render of the requested product in the requested placement. One LinUCB model per
product category is shared by its products (every impression teaches the arm),
warm-started from the reward model's scores (``arms.prior_ctr``). The context is the
user's encoded features (or the cluster centroid), scaled to unit length, plus the
placement, one-hot.

Durability: every decision and every reward is committed to the store before it is
answered. Bandit state is snapshotted every ``snapshot_every`` rewards; on start the
service loads the snapshot and replays the rewards logged after it — so a crash loses no
update, and the loss window of an unsnapshotted model is zero.

Replicas: the models learn only from the log. A reward is committed with the next
``seq`` (writes are serialised, so rows become visible in ``seq`` order with no gaps);
``catch_up`` applies every reward after the service's position, in order — after its own
feedback, and whenever ``follow`` (a thread the API starts) is woken by PostgreSQL's
``NOTIFY`` or its poll. So any number of services (processes, machines) over one store
end with the same models, and feedback for an event another replica chose works and is
idempotent. ``lag`` says how far a replica is behind the log. A snapshot that fails
after a reward was committed (a full disk) is logged and left pending: it is retried on
the category's next reward and by ``maintain``; the reward itself stands.

Storage faults (a full disk, a read-only store, an I/O error, a lock held too long) are
raised as ``StoreUnavailable`` — nothing was written; the caller may retry — and the
service recovers by itself once writes succeed again. ``readiness`` checks that the store
can be written and that the disk has ``min_free_bytes`` free; below that floor new
selections are refused (``StoreUnavailable``) so that the space left goes to rewards.

Retention (``retention_s``, off by default): ``prune`` deletes, in small batches, events
older than the feedback window plus ``retention_s`` that either never got a reward or
whose reward is folded into the category's snapshot (its ``seq`` <= the snapshot's
``reward_seq``), with those rewards. Nothing a restart's replay needs is deleted; the
learned state is unchanged; counts and per-arm reports then cover the retained log.

Why this module is long: ``SelectionService`` is one object guarding one invariant —
decisions, rewards, snapshots and the replay on start change the models and their
applied sequence numbers under one lock, in commit order, and every write goes through
one storage-fault translation (``_writing``). Its parts (context, selection, feedback,
durability, readiness and retention, reports) share that state; spread over modules or
mixins they would hide which lock and which bookkeeping a change must respect. The
errors it raises are in ``faults``; its configuration in ``config``.
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bandit import LinUCB

from ..errors import StudioError
from ..inputs.clusters import Cluster
from ..inputs.tables import USER_ID, encode, validate_users
from ..inputs.user_features import check_user_features
from ..store import Store
from .config import PLACEMENTS, ServingConfig, arm_prior, model_features, new_model
from .faults import Conflict, NotFound, RewardConflict, StoreUnavailable, storage_fault

log = logging.getLogger("studio.serving")

PROBE_CATEGORY = "\x01readiness-probe"  # never a catalog category (PostgreSQL text takes no NUL)
PROBE_BYTES = 64 * 1024                 # the readiness probe allocates this much
PROBE_WAIT_MS = 2000                    # ... and waits at most this long for the write lock


@dataclass
class Selection:
    event_id: str
    creative_id: str
    arm_id: str
    cluster_id: int
    prompt: str
    score: float
    mean: float
    bonus: float
    propensity: float


class SelectionService:
    """Thread-safe selection and feedback over a store.

    ``SelectionService.open(store, ...)`` builds one: the constructor only checks and
    keeps its settings (no I/O); ``open`` reads the pools and loads the bandits (the
    newest snapshots plus the rewards logged after them).
    """

    @classmethod
    def open(cls, store: Store, **settings) -> "SelectionService":
        """The service over ``store``, loaded (``settings`` as for the constructor)."""
        service = cls(store, **settings)
        service._load()
        return service

    def __init__(self, store: Store, *, config: ServingConfig | None = None,
                 snapshot_every: int = 100, feedback_window_s: float = 7 * 24 * 3600,
                 retention_s: float | None = None, min_free_bytes: int = 0):
        if retention_s is not None and not (np.isfinite(retention_s) and retention_s >= 0):
            raise StudioError(f"retention must be a number of seconds >= 0, got {retention_s}")
        if min_free_bytes < 0:
            raise StudioError(f"min_free_bytes must be >= 0, got {min_free_bytes}")
        self.store = store
        self.config = config or ServingConfig()
        self.snapshot_every = snapshot_every
        self.feedback_window_s = feedback_window_s
        self.retention_s = retention_s
        self.min_free_bytes = int(min_free_bytes)
        self._free = (0.0, 0)  # (checked at, free bytes): the disk floor, checked once a second
        self.models: dict[str, LinUCB] = {}
        self._applied_seq: dict[str, int] = {}
        self._position = 0  # every reward with a seq up to here is applied (or skipped)
        self._since_snapshot: dict[str, int] = {}
        self._snapshot_failed: set[str] = set()
        self._lock = threading.RLock()

    def _load(self) -> None:
        """Read the audience, products, prompts, arms and creatives; load the bandits."""
        store = self.store
        self.audience = store.audience()
        self.clusters: dict[int, Cluster] = {c.id: c for c in self.audience.clusters_}
        self.dim = self.audience.centroids_.shape[1] + len(PLACEMENTS)
        self.products = store.product_categories()
        self.prompts = store.prompt_texts()
        self.arms = store.active_arms()
        self.creatives: dict[tuple, str] = store.selected_creatives()
        self._load_models()

    # ------------------------------------------------------------ decisions
    def context(self, *, user: dict | None = None, cluster_id: int | None = None,
                encoded: np.ndarray | None = None, placement: str = "1:1") -> tuple[np.ndarray, int]:
        """(context vector, cluster id) for a user's features, a user already encoded
        with the audience (``Audience.transform``), or a cluster."""
        if placement not in PLACEMENTS:
            raise StudioError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
        if sum(v is not None for v in (user, cluster_id, encoded)) != 1:
            raise StudioError("give either user features or a cluster_id")
        if user is not None:
            # Only the audience's columns, bounded values (unknown keys are refused,
            # never turned into columns).
            features = check_user_features(user, self.audience.encoding_,
                                           ignore=self.audience.ignore)
            frame = validate_users(pd.DataFrame([{USER_ID: "request", **features}]),
                                   ignore=self.audience.ignore)
            encoded = encode(frame, self.audience.encoding_)[0]
            if not np.isfinite(encoded).all():
                raise StudioError("user: the features are out of range")
        if encoded is not None:
            cluster_id = int(((self.audience.centroids_ - encoded) ** 2).sum(axis=1).argmin())
        else:
            if cluster_id not in self.clusters:
                raise NotFound(f"unknown cluster {cluster_id}; clusters are "
                               f"{', '.join(map(str, sorted(self.clusters)))}")
            encoded = self.audience.centroids_[cluster_id]
        # LinUCB's confidence widths assume bounded contexts: the audience part is scaled
        # to unit length (its direction says who the user is), the placement is one-hot.
        norm = np.linalg.norm(encoded)
        placement_vector = np.zeros(len(PLACEMENTS))
        placement_vector[PLACEMENTS.index(placement)] = 1.0
        return (np.concatenate([encoded / norm if norm > 0 else encoded, placement_vector]),
                int(cluster_id))

    def candidates(self, product_id: str, cluster_id: int, placement: str) -> list[str]:
        """Arms of the product's category pool for the cluster that have a creative of
        this product in this placement."""
        if product_id not in self.products:
            raise NotFound(f"unknown product {product_id!r}")
        category = self.products[product_id]
        return [a for a, arm in self.arms.items()
                if arm["category"] == category and arm["cluster_id"] == cluster_id
                and self.creative_of(product_id, a, placement)]

    def select(self, product_id: str, *, user: dict | None = None, cluster_id: int | None = None,
               encoded: np.ndarray | None = None, placement: str = "1:1") -> Selection:
        if product_id not in self.products:
            raise NotFound(f"unknown product {product_id!r}")
        category = self.products[product_id]
        context, cluster_id = self.context(user=user, cluster_id=cluster_id, encoded=encoded,
                                           placement=placement)
        candidates = self.candidates(product_id, cluster_id, placement)
        if not candidates:
            raise NotFound(f"no creative of {product_id!r} for cluster {cluster_id} in placement "
                           f"{placement}; run `studio batch` with that format")
        self._check_free_space()
        features = model_features(context, self.config)
        decision = self.models[category].select(features, arms=candidates)
        i = decision.index
        selection = Selection(uuid.uuid4().hex, self.creative_of(product_id, decision.arm, placement),
                              decision.arm, cluster_id, self.prompts[decision.arm],
                              float(decision.score[i]), float(decision.expected[i]),
                              float(decision.bonus[i]), decision.propensity)
        with self._writing():
            self.store.log_event(
                event_id=selection.event_id, product_id=product_id, category=category,
                cluster_id=cluster_id, arm_id=selection.arm_id,
                creative_id=selection.creative_id, placement=placement,
                candidates=list(decision.arms), context=features.tolist(),
                propensity=selection.propensity, score=selection.score)
        return selection

    def creative_of(self, product_id: str, arm_id: str, placement: str) -> str | None:
        """The creative serving ``arm_id`` for this product and placement, if any."""
        return self.creatives.get((product_id, arm_id, placement))

    # ------------------------------------------------------------- feedback
    def feedback(self, event_id: str, reward: float) -> str:
        """Record a reward once; returns ``applied`` or ``duplicate`` (the same value
        again). Another value for a rewarded event raises ``RewardConflict``; a storage
        fault raises ``StoreUnavailable`` (nothing recorded). Once the reward is
        committed, the answer is ``applied`` whatever happens to the snapshot after it."""
        # Checked and inserted in one write transaction, committed before the answer
        # (outside the service's lock: the store serialises the writes).
        with self._writing():
            outcome = self.store.record_reward(event_id, reward,
                                               window_s=self.feedback_window_s)
        if outcome.status == "unknown":
            raise NotFound(f"unknown event {event_id!r}")
        if outcome.status == "conflict":
            raise RewardConflict(event_id, outcome.recorded, float(reward))
        if outcome.status == "duplicate":
            return "duplicate"
        if outcome.status == "expired":
            raise Conflict(f"event {event_id} is older than the feedback window "
                           f"({self.feedback_window_s:g} s)")
        # Applied from the log, in commit order with every replica's rewards (this
        # one's is committed, so it is among them): snapshots stay consistent.
        try:
            self.catch_up()
        except Exception as exc:  # committed: the follower or the next feedback applies it
            log.warning("applying the reward log failed (retried): %s", exc)
        return "applied"

    def catch_up(self) -> int:
        """Apply the rewards logged after this service's position, in ``seq`` order;
        returns how many. Storage faults propagate (the position stays)."""
        with self._lock:
            rows = self.store.rewards_after(self._position)
            for row in rows:
                if row.seq > self._applied_seq.get(row.category, 0):
                    self._apply(row.category, row.arm_id, row.context, row.reward, row.seq)
                self._position = row.seq
            return len(rows)

    def follow(self, stop: threading.Event, *, poll_s: float = 0.5) -> None:
        """Keep applying the log until ``stop`` is set: woken at once by PostgreSQL's
        notifications (those of rewards already applied are skipped), else every
        ``poll_s`` seconds. Run it in a thread of its own."""
        listener = self.store.reward_listener()
        try:
            while not stop.is_set():
                announced = listener.wait(poll_s)
                if announced is not None and int(announced) <= self._position:
                    continue  # a reward this replica has applied already (its own)
                try:
                    self.catch_up()
                except Exception as exc:  # a storage fault: keep following
                    log.warning("catching up with the reward log failed: %s", exc)
                    stop.wait(poll_s)
        finally:
            listener.close()
            self.store.close()

    def lag(self) -> dict:
        """How far this replica is behind the log: rewards not applied yet, the age of
        the oldest of them, this replica's position and the log's last ``seq``."""
        backlog = self.store.reward_backlog(self._position)
        age = 0.0 if backlog.oldest_received_at is None else max(
            0.0, time.time() - backlog.oldest_received_at)
        return {"position": self._position, "log_seq": backlog.last_seq,
                "behind": backlog.count, "behind_s": round(age, 3)}

    def _apply(self, category: str, arm_id: str, context, reward: float, seq: int) -> None:
        model = self.models.get(category)
        if model is None or arm_id not in model.arms:
            return  # the arm was retired since; its log stays
        model.update(arm_id, context, reward)
        self._applied_seq[category] = seq
        self._since_snapshot[category] = self._since_snapshot.get(category, 0) + 1
        if self._since_snapshot[category] >= self.snapshot_every:
            self._snapshot_quietly(category)

    # ----------------------------------------------------------- durability
    @contextmanager
    def _writing(self):
        """Turn a storage fault of the writes inside into ``StoreUnavailable``, leaving
        this thread's connection usable (no transaction left open)."""
        try:
            yield
        except StudioError:
            raise
        except Exception as exc:
            fault = storage_fault(exc)
            if fault is None:
                raise
            self.store.rollback_open_transaction()  # e.g. after a COMMIT that failed
            raise StoreUnavailable(f"the store cannot be written now ({fault}); "
                                   "nothing was recorded, retry later") from exc

    def _snapshot_quietly(self, category: str) -> bool:
        """Snapshot after a committed reward: a failure is logged and retried later (on
        the category's next reward, or ``maintain``), never raised — the reward is in
        the log, which a restart replays."""
        with self._lock:
            try:
                self.snapshot(category)
            except Exception as exc:
                if category not in self._snapshot_failed:
                    log.warning("snapshot of %r failed; kept pending (the rewards are in "
                                "the log): %s", category, exc,
                                exc_info=storage_fault(exc) is None)
                self._snapshot_failed.add(category)
                return False
            if category in self._snapshot_failed:
                log.warning("snapshot of %r written after earlier failures", category)
                self._snapshot_failed.discard(category)
            return True

    @property
    def pending_snapshots(self) -> list[str]:
        """Categories with at least ``snapshot_every`` rewards applied since their last
        snapshot (a failed one is retried). Lock-free: readiness must not wait on a
        feedback that waits on the disk."""
        counts = dict(self._since_snapshot)
        return sorted(c for c, n in counts.items() if n >= self.snapshot_every)

    def snapshot(self, category: str | None = None) -> None:
        """Persist bandit state (one category, or all)."""
        with self._lock:
            for name in [category] if category else list(self.models):
                buffer = io.BytesIO()
                self.models[name].save(buffer)
                with self._writing():
                    self.store.save_snapshot(name, buffer.getvalue(), self._applied_seq.get(name, 0))
                self._since_snapshot[name] = 0

    def _load_models(self) -> None:
        categories = sorted({arm["category"] for arm in self.arms.values()})
        snapshots = self.store.snapshots()
        for category in categories:
            if category in snapshots:
                model = LinUCB.load(io.BytesIO(snapshots[category].model))
                seq = snapshots[category].reward_seq
            else:
                # Randomised policies (epsilon-mixed UCB, Thompson sampling) give every
                # candidate a logged propensity > 0: the log supports off-policy evaluation.
                model = new_model(self.dim, self.config)
                seq = 0
            width = len(model_features(np.zeros(self.dim), self.config))
            if model.n_features != width:
                raise StudioError(f"the bandit snapshot of {category!r} has {model.n_features} "
                                  f"features, the service's {self.config.context!r} context "
                                  f"{width}: serve with the context it was trained with")
            for arm_id, arm in sorted(self.arms.items()):  # arms added since the snapshot
                if arm["category"] == category and arm_id not in model.arms:
                    model.add_arm(arm_id, prior=arm_prior(arm["prior_ctr"],
                                                          arm["prior_impressions"], self.config))
            self.models[category] = model
            self._applied_seq[category] = seq
        # Rewards after the oldest snapshot, in commit order; each category skips what
        # its own snapshot already holds (a category without a model ignores its rows).
        self._position = min(self._applied_seq.values(), default=0)
        self.catch_up()

    # --------------------------------------------------- readiness, retention
    def _check_free_space(self) -> None:
        """Refuse new selections while the disk is below the floor (checked at most once
        a second), keeping the space left for rewards of served events."""
        if not self.min_free_bytes:
            return
        checked, free = self._free
        now = time.monotonic()
        if now - checked > 1.0:
            free = shutil.disk_usage(self.store.root).free
            self._free = (now, free)
        if free < self.min_free_bytes:
            raise StoreUnavailable(f"the store's disk has {free:,} bytes free, below the "
                                   f"floor of {self.min_free_bytes:,}; retry later")

    def readiness(self) -> dict:
        """Whether the service can take writes: the store accepts a write transaction
        (a probe that allocates ``PROBE_BYTES`` and is rolled back, so it fails on a full,
        size-capped, read-only or query-only store) and the disk has ``min_free_bytes``."""
        free = shutil.disk_usage(self.store.root).free
        self._free = (time.monotonic(), free)
        problems = []
        if free < self.min_free_bytes:
            problems.append(f"the disk has {free:,} bytes free, below the floor of "
                            f"{self.min_free_bytes:,}")
        writable = True
        try:
            # On this thread's connection (no other request uses it now), waiting at most
            # PROBE_WAIT_MS for the write lock: a probe must answer fast.
            with self._writing():
                self.store.probe_write(PROBE_BYTES, wait_ms=PROBE_WAIT_MS,
                                       category=PROBE_CATEGORY)
        except StoreUnavailable as exc:
            writable = False
            problems.append(f"the store cannot be written: {storage_fault(exc) or exc}")
        return {"ready": not problems, "writable": writable, "disk_free_bytes": free,
                "min_free_bytes": self.min_free_bytes,
                "pending_snapshots": self.pending_snapshots, "problems": problems}

    def maintain(self) -> dict:
        """Periodic work: retry pending snapshots, prune the log (``retention_s``)."""
        written = [c for c in self.pending_snapshots if self._snapshot_quietly(c)]
        pruned = 0
        try:
            pruned = self.prune()
        except StoreUnavailable as exc:
            log.warning("pruning the event log failed (retried later): %s", exc)
        return {"snapshots": written, "pruned": pruned}

    def prune(self, *, batch: int = 500, max_batches: int = 20) -> int:
        """Delete up to ``batch × max_batches`` events past retention (see the module
        docstring), each batch in its own short transaction; returns how many."""
        if self.retention_s is None:
            return 0
        cutoff = time.time() - self.feedback_window_s - self.retention_s
        deleted = 0
        for _ in range(max_batches):
            # The search reads outside the write lock (WAL readers do not block writers);
            # the deletes re-check every condition.
            ids = self.store.prunable_events(cutoff, batch)
            if not ids:
                break
            with self._writing():
                deleted += self.store.prune_events(ids, cutoff)
            if len(ids) < batch:
                break
        return deleted

    # ------------------------------------------------------------- reports
    def cluster_estimate(self, category: str, cluster_id: int, arms) -> tuple:
        """(arms, learned mean, exploration bonus) of ``arms`` at the cluster's centroid
        in the 1:1 placement; no decision is made."""
        centroid, _ = self.context(cluster_id=cluster_id)
        return self.models[category].estimate(model_features(centroid, self.config), arms=arms)

    def arm_report(self) -> list[dict]:
        stats = self.store.arm_statistics()
        rewarded = {a: s.rewarded for a, s in stats.items() if s.rewarded}
        report = []
        for arm_id, arm in sorted(self.arms.items(), key=lambda kv: (kv[1]["category"], kv[1]["cluster_id"])):
            model = self.models[arm["category"]]
            pulls, clicks = (stats[arm_id].pulls, stats[arm_id].clicks) if arm_id in stats else (0, 0.0)
            _, expected, bonus = self.cluster_estimate(arm["category"], arm["cluster_id"], [arm_id])
            report.append({
                "arm_id": arm_id, "category": arm["category"], "cluster_id": arm["cluster_id"],
                "prompt": self.prompts[arm_id], "prior_ctr": arm["prior_ctr"], "pulls": pulls,
                "rewarded": rewarded.get(arm_id, 0), "clicks": clicks,
                "ctr": clicks / rewarded[arm_id] if rewarded.get(arm_id) else None,
                "updates": model.counts()[arm_id], "mean": float(expected[0]),
                "bonus": float(bonus[0])})
        return report
