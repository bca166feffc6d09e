"""Repository methods of the serving log: decisions (events), rewards, bandit snapshots,
and what the selection service and the API read to start and to report.

The log's JSON columns (an event's candidate arms and context vector) are encoded and
decoded here: callers pass and get Python lists. Every write runs in one ``transaction``
and is committed when the method returns; database errors keep their type (the selection
service turns storage faults into ``StoreUnavailable``).

Why this module is long: every query over the events and rewards tables — what serving
writes, what replicas replay, what reports and ``studio evolve`` aggregate — lives here,
so that the log's schema and its JSON encoding are read and written in one place.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .pools import SERVABLE


@dataclass(frozen=True)
class LoggedEvent:
    """A served decision, as a reward needs it."""

    event_id: str
    category: str
    arm_id: str
    context: list[float]  # the features the bandit saw
    created_at: float


@dataclass(frozen=True)
class RewardOutcome:
    """What ``record_reward`` did. ``status``: ``applied`` (inserted as ``seq``),
    ``duplicate`` (the same value was recorded before), ``conflict`` (another value,
    ``recorded``, was recorded before), ``unknown`` (no such event) or ``expired`` (the
    event is older than the feedback window). Only ``applied`` wrote anything."""

    status: str
    event: LoggedEvent | None = None
    recorded: float | None = None
    seq: int | None = None


@dataclass(frozen=True)
class LoggedReward:
    """A reward joined with its event, in commit order (``seq``): what a replay applies."""

    seq: int
    reward: float
    category: str
    arm_id: str
    context: list[float]


@dataclass(frozen=True)
class BanditSnapshot:
    """A category's saved bandit: its bytes and the last reward ``seq`` folded into it."""

    category: str
    model: bytes
    reward_seq: int
    saved_at: float


@dataclass(frozen=True)
class ArmStatistics:
    """An arm's served events: how many (``pulls``), how many rewarded, their sum."""

    pulls: int
    rewarded: int
    clicks: float


@dataclass(frozen=True)
class RewardedEvent:
    """A rewarded event as off-policy evaluation reads it."""

    category: str
    arm_id: str
    candidates: list[str]
    context: list[float]
    propensity: float
    reward: float


@dataclass(frozen=True)
class RewardBacklog:
    """Rewards in the log after a position: how many, the oldest's receipt time, the
    last ``seq``."""

    count: int
    oldest_received_at: float | None
    last_seq: int


#: The notification channel a committed reward is announced on (PostgreSQL).
REWARDS_CHANNEL = "studio_rewards"

_EVENT = ("SELECT event_id, category, arm_id, context, created_at FROM events "
          "WHERE event_id = ?")
_EVENT_AND_REWARD = ("SELECT e.event_id, e.category, e.arm_id, e.context, e.created_at, "
                     "r.reward FROM events e LEFT JOIN rewards r ON r.event_id = e.event_id "
                     "WHERE e.event_id = ?")


def _logged_event(row) -> LoggedEvent:
    return LoggedEvent(row["event_id"], row["category"], row["arm_id"],
                       json.loads(row["context"]), row["created_at"])


class _Rollback(Exception):
    """Rolls the readiness probe's transaction back."""


class ServingLog:
    """Serving-log methods of ``Store`` (they use its ``transaction`` and ``query``)."""

    # ------------------------------------------------ what the service loads
    # (products and a creative's image come from ``Pools``: ``product_categories``,
    # ``creative_image_sha``)
    def prompt_texts(self) -> dict[str, str]:
        """``{prompt_id: text}`` of every prompt (an arm's id is its prompt's)."""
        return {r["prompt_id"]: r["text"] for r in self.query("SELECT prompt_id, text FROM prompts "
                                                               "ORDER BY prompt_id")}

    def active_arms(self) -> dict[str, dict]:
        """``{arm_id: row}`` of the arms being served (every column of ``arms``:
        category, cluster_id, prior_ctr, prior_impressions, active)."""
        return {r["arm_id"]: dict(r) for r in self.query("SELECT * FROM arms WHERE active = 1 "
                                                           "ORDER BY arm_id")}

    def arm_priors(self) -> dict[str, dict]:
        """``{arm_id: {"prior_ctr", "prior_impressions"}}`` of every arm, retired ones
        included (the log may name them)."""
        return {r["arm_id"]: {"prior_ctr": r["prior_ctr"],
                              "prior_impressions": r["prior_impressions"]}
                for r in self.query("SELECT arm_id, prior_ctr, prior_impressions FROM arms "
                                    "ORDER BY arm_id")}

    def selected_creatives(self) -> dict[tuple[str, str, str], str]:
        """``{(product_id, prompt_id, format): creative_id}``: selected, ``SERVABLE``, lowest seed."""
        return {(r["product_id"], r["prompt_id"], r["format"]): r["creative_id"]  # last wins
                for r in self.query("SELECT creative_id, product_id, prompt_id, format FROM "
                                    f"creatives WHERE selected = 1 AND {SERVABLE} "
                                    "ORDER BY seed DESC, creative_id DESC")}

    # ------------------------------------------------------ events, rewards
    def log_event(self, *, event_id: str, product_id: str, category: str, cluster_id: int,
                  arm_id: str, creative_id: str, placement: str, candidates: list[str],
                  context: list[float], propensity: float, score: float,
                  created_at: float | None = None) -> None:
        """Record a served decision (committed on return; on PostgreSQL it does not wait
        for the write lock that rewards take)."""
        self.insert("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (event_id, time.time() if created_at is None else created_at, product_id,
                     category, cluster_id, arm_id, creative_id, placement,
                     json.dumps(list(candidates)), json.dumps(list(context)),
                     propensity, score))

    def event(self, event_id: str) -> LoggedEvent | None:
        """A logged event, if it exists."""
        rows = self.query(_EVENT, (event_id,))
        return _logged_event(rows[0]) if rows else None

    def record_reward(self, event_id: str, reward: float, *,
                      window_s: float) -> RewardOutcome:
        """Check and record a reward in one write transaction (committed on return): the
        event must exist, have no other reward and be at most ``window_s`` seconds old.
        Nothing is written unless the outcome is ``applied``."""
        with self.transaction() as tx:
            row = tx.execute(_EVENT_AND_REWARD, (event_id,)).fetchone()
            if row is None:
                return RewardOutcome("unknown")
            event = _logged_event(row)
            if row["reward"] is not None:
                recorded = float(row["reward"])
                status = "duplicate" if recorded == float(reward) else "conflict"
                return RewardOutcome(status, event, recorded)
            if time.time() - event.created_at > window_s:
                return RewardOutcome("expired", event)
            seq = self._insert_reward(tx, event_id, reward)
            self.database.notify(tx, REWARDS_CHANNEL, str(seq))
        return RewardOutcome("applied", event, None, seq)

    def rewards_after(self, seq: int = 0) -> list[LoggedReward]:
        """Rewards with a ``seq`` above ``seq``, joined with their events, in ``seq``
        order: what a restart replays on top of the snapshots."""
        return [LoggedReward(int(r["seq"]), r["reward"], r["category"], r["arm_id"],
                             json.loads(r["context"]))
                for r in self.query(
                    "SELECT r.seq, r.reward, e.category, e.arm_id, e.context FROM rewards r "
                    "JOIN events e ON e.event_id = r.event_id WHERE r.seq > ? ORDER BY r.seq",
                    (seq,))]

    def reward_backlog(self, after_seq: int) -> RewardBacklog:
        """How far the log is past ``after_seq``: rewards after it, the oldest one's
        receipt time, the last ``seq`` (a replica's lag)."""
        row = self.query("SELECT COUNT(*), MIN(received_at), MAX(seq) FROM rewards "
                         "WHERE seq > ?", (after_seq,))[0]
        return RewardBacklog(int(row[0]), row[1], int(row[2]) if row[2] is not None else after_seq)

    def reward_listener(self):
        """Something to ``wait(timeout)`` on for new rewards: PostgreSQL ``LISTEN``
        (returns the newest announced ``seq`` as text when woken, None on timeout), or a
        plain wait where the database cannot notify."""
        return self.database.listener(REWARDS_CHANNEL)

    def rewarded_events(self) -> list[RewardedEvent]:
        """Every rewarded event in time order (then reward ``seq``)."""
        return [RewardedEvent(r["category"], r["arm_id"], json.loads(r["candidates"]),
                              json.loads(r["context"]), r["propensity"], r["reward"])
                for r in self.query(
                    "SELECT e.category, e.arm_id, e.candidates, e.context, e.propensity, "
                    "r.reward FROM events e JOIN rewards r ON r.event_id = e.event_id "
                    "ORDER BY e.created_at, r.seq")]

    def arm_statistics(self) -> dict[str, ArmStatistics]:
        """``{arm_id: ArmStatistics}`` over the (retained) log, for arms served at least once."""
        return {r["arm_id"]: ArmStatistics(int(r["pulls"]), int(r["rewarded"]), r["clicks"] or 0.0)
                for r in self.query(
                    "SELECT e.arm_id, COUNT(*) AS pulls, COUNT(r.seq) AS rewarded, "
                    "SUM(r.reward) AS clicks FROM events e "
                    "LEFT JOIN rewards r ON r.event_id = e.event_id GROUP BY e.arm_id ORDER BY e.arm_id")}

    def creative_clicks(self) -> list[dict]:
        """Rewarded impressions and their reward sum per (cluster, arm, creative) over the
        (retained) log: what a round of ``studio evolve`` learns from."""
        return [{"cluster_id": int(r["cluster_id"]), "arm_id": r["arm_id"],
                 "creative_id": r["creative_id"], "impressions": int(r["impressions"]),
                 "clicks": float(r["clicks"] or 0.0)}
                for r in self.query(
                    "SELECT e.cluster_id, e.arm_id, e.creative_id, COUNT(*) AS impressions, "
                    "SUM(r.reward) AS clicks FROM events e JOIN rewards r "
                    "ON r.event_id = e.event_id GROUP BY e.cluster_id, e.arm_id, e.creative_id "
                    "ORDER BY e.cluster_id, e.arm_id, e.creative_id")]

    # ------------------------------------------------------------ snapshots
    def save_snapshot(self, category: str, model: bytes, reward_seq: int) -> None:
        """Write a category's bandit snapshot, or replace one that folds in no later
        reward (committed on return): replicas that snapshot the same log never move a
        snapshot back behind rewards that retention may already have deleted."""
        with self.transaction() as tx:
            tx.execute("INSERT INTO bandit_snapshots VALUES (?, ?, ?, ?) ON CONFLICT(category) "
                       "DO UPDATE SET model = excluded.model, reward_seq = excluded.reward_seq, "
                       "saved_at = excluded.saved_at "
                       "WHERE excluded.reward_seq >= bandit_snapshots.reward_seq",
                       (category, bytes(model), int(reward_seq), time.time()))

    def snapshots(self) -> dict[str, BanditSnapshot]:
        """``{category: BanditSnapshot}`` of every saved bandit."""
        return {r["category"]: BanditSnapshot(r["category"], bytes(r["model"]),
                                              int(r["reward_seq"]), r["saved_at"])
                for r in self.query("SELECT * FROM bandit_snapshots ORDER BY category")}

    # ------------------------------------------------------------ retention
    def prunable_events(self, cutoff: float, limit: int) -> list[str]:
        """Up to ``limit`` ids of events created before ``cutoff`` that either have no
        reward or whose reward is folded into their category's snapshot. Read outside
        the write lock (WAL readers do not block writers); ``prune_events`` re-checks."""
        return [r[0] for r in self.query(
            "SELECT e.event_id FROM events e LEFT JOIN rewards r ON r.event_id = e.event_id "
            "LEFT JOIN bandit_snapshots s ON s.category = e.category "
            "WHERE e.created_at < ? AND (r.seq IS NULL OR r.seq <= s.reward_seq) LIMIT ?",
            (cutoff, limit))]

    def prune_events(self, event_ids: list[str], cutoff: float) -> int:
        """Delete, in one transaction, those of ``event_ids`` still prunable (see
        ``prunable_events``), with their folded rewards; returns how many events."""
        if not event_ids:
            return 0
        marks = ",".join("?" * len(event_ids))
        folded = ("COALESCE((SELECT s.reward_seq FROM bandit_snapshots s JOIN events e "
                  "ON e.category = s.category WHERE e.event_id = rewards.event_id), 0)")
        with self.transaction() as tx:
            tx.execute(f"DELETE FROM rewards WHERE event_id IN ({marks}) AND seq <= {folded}",
                       event_ids)
            return tx.execute(
                f"DELETE FROM events WHERE event_id IN ({marks}) AND created_at < ? AND NOT "
                "EXISTS (SELECT 1 FROM rewards r WHERE r.event_id = events.event_id)",
                (*event_ids, cutoff)).rowcount

    # ------------------------------------------------------------ readiness
    def probe_write(self, nbytes: int, *, wait_ms: int,
                    category: str = "\x01readiness-probe") -> None:
        """Raise the database error, if any, of a write transaction that allocates
        ``nbytes`` (a snapshot row under a ``category`` no catalog has) and is rolled
        back: fails on a full, size-capped, read-only or query-only store, or a database
        that is down. Waits at most ``wait_ms`` for the write lock (this thread's
        connection; its wait is restored)."""
        conn = self.connection()
        with self.database.lock_wait(conn, wait_ms):
            try:
                with self.transaction() as tx:
                    tx.execute("INSERT INTO bandit_snapshots VALUES (?, ?, -1, 0)",
                               (category, bytes(int(nbytes))))
                    raise _Rollback
            except _Rollback:
                pass

    def rollback_open_transaction(self) -> None:
        """Roll back this thread's transaction if one is open (e.g. after a COMMIT that
        failed), leaving the connection usable; errors of the rollback are ignored."""
        try:
            self._rollback(self.connection())
        except self._errors:
            pass

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _insert_reward(tx, event_id: str, reward: float) -> int:
        return int(tx.execute("INSERT INTO rewards (event_id, reward, received_at) "
                              "VALUES (?, ?, ?) RETURNING seq",
                              (event_id, reward, time.time())).fetchall()[0][0])
