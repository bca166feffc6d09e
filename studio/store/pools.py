"""Repository methods of the creative pools: audience and clusters, products, prompts,
creatives with their scores, arms, and the evolution rounds.

Records go in and come out as plain dicts (a creative's ``manifest`` parsed); every
method that writes does so in one transaction of its own, so a run killed between two
calls leaves a store the next run completes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Iterable

from ..errors import StudioError

#: The columns of a creative row, in the order of the table.
CREATIVE_COLUMNS = ("creative_id", "job_key", "product_id", "prompt_id", "cluster_id", "format",
                    "seed", "image_sha256", "mask_sha256", "bytes", "manifest", "reward",
                    "selected", "blocked")
#: SQL condition on a ``creatives`` row: the safety gate passed it, or a reviewer overrode
#: the block. Only such creatives become arms' creatives and are served.
SERVABLE = ("(blocked = 0 OR EXISTS (SELECT 1 FROM safety_overrides o "
            "WHERE o.creative_id = creatives.creative_id))")


def prompt_id(category: str, cluster_id: int, text: str) -> str:
    """The id of a prompt: a hash of its category, cluster and text (the same prompt
    written twice for one pool is one row)."""
    return hashlib.sha1(f"{category}|{cluster_id}|{text}".encode()).hexdigest()[:16]


def _score(value) -> float | None:
    """A reward score as stored: NaN or None (no model) is NULL."""
    return None if value is None or math.isnan(value) else float(value)


def _creative(row) -> dict:
    record = dict(row)
    record["manifest"] = json.loads(record["manifest"])
    record["servable"] = bool(record["servable"])
    return record


class Pools:
    """Pool methods of ``Store`` (they use its ``transaction`` and ``query``)."""

    # ------------------------------------------------------- audience, products, prompts
    def has_audience(self) -> bool:
        """Whether the store has its fitted audience yet."""
        return bool(self.query("SELECT 1 FROM audience WHERE id = 1"))

    def add_audience(self, audience) -> bool:
        """Write the audience document and its clusters, unless the store has an audience
        already (the first one written is the store's). True when this call wrote it."""
        document = json.dumps(audience.to_document())
        with self.transaction() as tx:
            inserted = tx.execute("INSERT INTO audience (id, document) VALUES (1, ?) "
                                  "ON CONFLICT (id) DO NOTHING",
                                  (document,)).rowcount
            if inserted:
                for c in audience.clusters_:
                    tx.execute("INSERT INTO clusters VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (cluster_id) DO NOTHING",
                               (c.id, c.profile, c.size, json.dumps(c.as_dict())))
        return bool(inserted)

    def add_products(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Add products ``(product_id, category, title, image_sha256)`` idempotently, in
        one transaction; a product whose image differs from the stored one is refused
        (nothing is written)."""
        with self.transaction() as tx:
            for product_id, category, title, sha in rows:
                existing = tx.execute("SELECT image_sha256 FROM products WHERE product_id = ?",
                                      (product_id,)).fetchone()
                if existing and existing[0] != sha:
                    raise StudioError(f"product {product_id!r} changed since the store was "
                                      "built; use a new store or a new product_id")
                tx.execute("INSERT INTO products VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (product_id) DO NOTHING",
                           (product_id, category, title, sha))

    def product_categories(self) -> dict[str, str]:
        """product_id -> category, ordered by product id."""
        return {r["product_id"]: r["category"]
                for r in self.query("SELECT product_id, category FROM products "
                                    "ORDER BY product_id")}

    def add_prompts(self, records: Iterable[dict]) -> None:
        """Add prompts idempotently (a prompt id already stored is kept), in one
        transaction. A record has ``prompt_id, category, cluster_id, text, source`` and
        optionally ``negative_prompt`` (default "") and ``tags`` (a JSON string or an
        object; default "{}")."""
        with self.transaction() as tx:
            for r in records:
                tags = r.get("tags", "{}")
                tx.execute("INSERT INTO prompts VALUES (?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (prompt_id) DO NOTHING",
                           (r["prompt_id"], r["category"], r["cluster_id"], r["text"],
                            r.get("negative_prompt", ""),
                            tags if isinstance(tags, str) else json.dumps(tags), r["source"]))

    def prompt_records(self) -> dict[str, dict]:
        """prompt_id -> the prompt's row (``tags`` as stored: a JSON string)."""
        return {r["prompt_id"]: dict(r) for r in self.query("SELECT * FROM prompts ORDER BY prompt_id")}

    # ------------------------------------------------------------------- creatives
    def add_creatives(self, notes: list[dict]) -> None:
        """Insert rendered creatives (their files already in place) in one transaction,
        which also ends their job leases. A note has the creative's columns (``job_key``,
        ``product_id``, ``prompt_id``, ``cluster_id``, ``format``, ``seed``,
        ``image_sha256``, ``mask_sha256``, ``bytes``) and its ``manifest`` (whose ``id``
        is the creative id; its ``safety`` verdict, when the gate ran, sets ``blocked``).
        A job already in the store is skipped; a creative whose id
        (its pixels) repeats another's is kept under a distinct id, written back into the
        note's manifest."""
        with self.transaction() as tx:
            for note in notes:
                tx.execute("DELETE FROM job_leases WHERE job_key = ?", (note["job_key"],))
                if tx.execute("SELECT 1 FROM creatives WHERE job_key = ?",
                              (note["job_key"],)).fetchone():
                    continue
                creative_id = note["manifest"]["id"]
                if tx.execute("SELECT 1 FROM creatives WHERE creative_id = ?",
                              (creative_id,)).fetchone():
                    # Two jobs rendered the very same pixels: keep both, under distinct ids.
                    creative_id = hashlib.sha1(
                        f"{note['job_key']}|{creative_id}".encode()).hexdigest()[:20]
                    note["manifest"] = {**note["manifest"], "id": creative_id}
                tx.execute(
                    "INSERT INTO creatives (creative_id, job_key, product_id, prompt_id, "
                    "cluster_id, format, seed, image_sha256, mask_sha256, bytes, manifest, "
                    "blocked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (creative_id, note["job_key"], note["product_id"], note["prompt_id"],
                     note["cluster_id"], note["format"], note["seed"], note["image_sha256"],
                     note["mask_sha256"], note["bytes"], json.dumps(note["manifest"]),
                     bool((note["manifest"].get("safety") or {}).get("blocked"))))

    def job_keys(self) -> set[str]:
        """The job keys of every creative in the store (the jobs that are done)."""
        return {r[0] for r in self.query("SELECT job_key FROM creatives")}

    def creatives(self, *, selected_only: bool = False) -> list[dict]:
        """Every creative (or only those chosen for the arms) ordered by creative id, as
        dicts of its columns with the ``manifest`` parsed and ``servable`` (not blocked by
        the safety gate, or overridden)."""
        where = " WHERE selected = 1" if selected_only else ""
        return [_creative(r) for r in self.query(
            f"SELECT *, CASE WHEN {SERVABLE} THEN 1 ELSE 0 END AS servable "
            f"FROM creatives{where} ORDER BY creative_id")]

    # ---------------------------------------------------------------- safety gate
    def blocked_creatives(self) -> list[dict]:
        """Every creative the safety gate blocked, ordered by creative id: ``creative_id``,
        ``product_id``, ``prompt_id``, ``format``, ``reasons`` (from its manifest) and
        ``override`` (``{reviewer, reason, at}``, or None while it is held)."""
        overrides = {r["creative_id"]: {k: r[k] for k in ("reviewer", "reason", "at")}
                     for r in self.query("SELECT * FROM safety_overrides")}
        return [{"creative_id": r["creative_id"], "product_id": r["product_id"],
                 "prompt_id": r["prompt_id"], "format": r["format"],
                 "reasons": (json.loads(r["manifest"]).get("safety") or {}).get("reasons", []),
                 "override": overrides.get(r["creative_id"])}
                for r in self.query("SELECT creative_id, product_id, prompt_id, format, "
                                    "manifest FROM creatives WHERE blocked = 1 "
                                    "ORDER BY creative_id")]

    def override_safety(self, creative_id: str, reviewer: str, reason: str) -> dict:
        """Record a reviewer's override of a blocked creative (who, why, when); it takes
        effect at the next choice of arms (``studio batch``, the UI's render), which may
        then make it an arm's creative. Returns the override."""
        reviewer, reason = str(reviewer).strip(), str(reason).strip()
        if not reviewer:
            raise StudioError("an override needs the reviewer's name")
        if not reason:
            raise StudioError("an override needs a reason")
        with self.transaction() as tx:
            row = tx.execute("SELECT blocked FROM creatives WHERE creative_id = ?",
                             (creative_id,)).fetchone()
            if row is None:
                raise StudioError(f"unknown creative {creative_id!r}")
            if not row[0]:
                raise StudioError(f"creative {creative_id!r} is not blocked; nothing to override")
            if tx.execute("SELECT 1 FROM safety_overrides WHERE creative_id = ?",
                          (creative_id,)).fetchone():
                raise StudioError(f"creative {creative_id!r} is already overridden")
            at = time.time()
            tx.execute("INSERT INTO safety_overrides (creative_id, reviewer, reason, at) "
                       "VALUES (?, ?, ?, ?)", (creative_id, reviewer, reason, at))
        return {"creative_id": creative_id, "reviewer": reviewer, "reason": reason, "at": at}

    def top_creatives(self, category: str, limit: int) -> list[dict]:
        """The best-scored creatives of a product category (scored ones only), best
        first, at most ``limit``."""
        return [_creative(r) for r in self.query(
            f"SELECT creatives.*, CASE WHEN {SERVABLE} THEN 1 ELSE 0 END AS servable "
            "FROM creatives JOIN products p ON p.product_id = creatives.product_id "
            "WHERE p.category = ? AND creatives.reward IS NOT NULL "
            "ORDER BY creatives.reward DESC LIMIT ?", (category, limit))]

    def creative_image_sha(self, creative_id: str) -> str:
        """The sha256 of a servable creative's image file (``file_path`` finds it); a
        creative the safety gate holds is refused, as an unknown one is (the API's 404)."""
        rows = self.query(f"SELECT image_sha256 FROM creatives WHERE creative_id = ? "
                          f"AND {SERVABLE}", (creative_id,))
        if not rows:
            raise StudioError(f"unknown or blocked creative {creative_id!r}")
        return rows[0][0]

    def any_manifest(self) -> dict | None:
        """The manifest of one creative (None when the store has none)."""
        rows = self.query("SELECT manifest FROM creatives ORDER BY creative_id LIMIT 1")
        return json.loads(rows[0][0]) if rows else None

    def creative_formats(self) -> list[str]:
        """The formats the store's creatives were rendered in, sorted."""
        return [r[0] for r in self.query("SELECT DISTINCT format FROM creatives ORDER BY format")]

    def store_bytes(self) -> int:
        """Bytes of the creatives' files (images and masks)."""
        return int(self.query("SELECT COALESCE(SUM(bytes), 0) FROM creatives")[0][0])

    # ------------------------------------------------------------------------ arms
    def set_scores_and_arms(self, scores: dict[str, tuple[float | None, bool]],
                            arms: dict[str, tuple[str, int, float | None]], *,
                            strength: float | None, replace_arms: bool = False) -> None:
        """In one transaction: every creative's reward score (NaN/None: unscored) and
        whether it was selected (``scores``: creative_id -> (score, selected)); the arms
        (``arms``: arm_id -> (category, cluster_id, prior CTR)) added or re-scored with
        prior strength ``strength`` — a retired arm stays retired; with ``replace_arms``
        the active arms become exactly ``arms``."""
        with self.transaction() as tx:
            for creative_id, (score, selected) in scores.items():
                tx.execute("UPDATE creatives SET reward = ?, selected = ? WHERE creative_id = ?",
                           (_score(score), int(selected), creative_id))
            for arm_id, (category, cluster_id, prior) in arms.items():
                tx.execute("INSERT INTO arms (arm_id, category, cluster_id, prior_ctr, "
                           "prior_impressions) VALUES (?, ?, ?, ?, ?) ON CONFLICT(arm_id) DO "
                           "UPDATE SET prior_ctr = excluded.prior_ctr, "
                           "prior_impressions = excluded.prior_impressions",
                           (arm_id, category, cluster_id, prior, strength))
            if replace_arms:
                tx.execute("UPDATE arms SET active = 0")
                tx.executemany("UPDATE arms SET active = 1 WHERE arm_id = ?",
                               [(a,) for a in arms])

    # ---------------------------------------------------------------- evolution
    def last_round(self) -> int:
        """The number of the last recorded evolution round (0: none yet)."""
        return int(self.query("SELECT COALESCE(MAX(round), 0) FROM evolution")[0][0])

    def record_round(self, round_id: int, entries: list[dict], *,
                     creative_scores: dict[str, tuple[float | None, bool]],
                     priors: dict[str, float | None], strength: float | None) -> None:
        """Apply and record one evolution round in one transaction: the new creatives'
        scores (``creative_scores``: job_key -> (score, selected)); per pool ``entry``
        (``category``, ``cluster_id``, ``retired``, ``added``, …) its retired arms
        deactivated, its added arms made active with their prior CTR (``priors``) and
        strength ``strength``, and the entry itself kept as the round's record."""
        with self.transaction() as tx:
            for job_key, (score, selected) in creative_scores.items():
                tx.execute("UPDATE creatives SET reward = ?, selected = ? WHERE job_key = ?",
                           (_score(score), int(selected), job_key))
            for entry in entries:
                for arm in entry["retired"]:
                    tx.execute("UPDATE arms SET active = 0 WHERE arm_id = ?", (arm,))
                for arm in entry["added"]:
                    tx.execute("INSERT INTO arms (arm_id, category, cluster_id, prior_ctr, "
                               "active, prior_impressions) VALUES (?, ?, ?, ?, 1, ?) "
                               "ON CONFLICT(arm_id) DO UPDATE SET active = 1, "
                               "prior_ctr = excluded.prior_ctr, "
                               "prior_impressions = excluded.prior_impressions",
                               (arm, entry["category"], entry["cluster_id"], _score(priors[arm]),
                                strength))
                tx.execute("INSERT INTO evolution (round, created_at, category, cluster_id, "
                           "record) VALUES (?, ?, ?, ?, ?)",
                           (round_id, time.time(), entry["category"], entry["cluster_id"],
                            json.dumps(entry)))

    def rounds(self) -> list[dict]:
        """Every recorded round's pool entries, oldest first (``round`` plus the entry)."""
        return [{"round": r["round"], **json.loads(r["record"])}
                for r in self.query("SELECT round, record FROM evolution ORDER BY round, id")]

    def rollback_rounds(self, to_round: int) -> int:
        """Undo every round after ``to_round`` (0 = back to the batch's pool) in one
        transaction, newest first: added arms retire, retired arms come back, the records
        go. Returns how many pool records were undone."""
        with self.transaction() as tx:
            rows = tx.execute("SELECT id, record FROM evolution WHERE round > ? "
                              "ORDER BY round DESC, id DESC", (to_round,)).fetchall()
            for row in rows:
                entry = json.loads(row["record"])
                for arm in entry["added"]:
                    tx.execute("UPDATE arms SET active = 0 WHERE arm_id = ?", (arm,))
                for arm in entry["retired"]:
                    tx.execute("UPDATE arms SET active = 1 WHERE arm_id = ?", (arm,))
                tx.execute("DELETE FROM evolution WHERE id = ?", (row["id"],))
        return len(rows)
