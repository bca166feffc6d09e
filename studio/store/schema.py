"""The store's schema: migrations applied in order (``Store`` records how far a store is).

Append a migration to change the schema; never edit or reorder one that has shipped.
"""

from __future__ import annotations

#: Schema migrations, applied in order; the version table records how far a store is.
MIGRATIONS = [
    """
    CREATE TABLE products (
        product_id TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        title TEXT NOT NULL,
        image_sha256 TEXT NOT NULL
    );
    CREATE TABLE audience (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        document TEXT NOT NULL
    );
    CREATE TABLE clusters (
        cluster_id INTEGER PRIMARY KEY,
        profile TEXT NOT NULL,
        size INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE prompts (
        prompt_id TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL REFERENCES clusters(cluster_id),
        text TEXT NOT NULL,
        negative_prompt TEXT NOT NULL,
        tags TEXT NOT NULL,
        source TEXT NOT NULL
    );
    CREATE TABLE creatives (
        creative_id TEXT PRIMARY KEY,
        job_key TEXT NOT NULL UNIQUE,
        product_id TEXT NOT NULL REFERENCES products(product_id),
        prompt_id TEXT NOT NULL REFERENCES prompts(prompt_id),
        cluster_id INTEGER NOT NULL REFERENCES clusters(cluster_id),
        format TEXT NOT NULL,
        seed INTEGER NOT NULL,
        image_sha256 TEXT NOT NULL,
        mask_sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        reward REAL,
        selected INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX creatives_by_product ON creatives(product_id, cluster_id);
    CREATE TABLE arms (
        arm_id TEXT PRIMARY KEY REFERENCES prompts(prompt_id),
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL REFERENCES clusters(cluster_id),
        prior_ctr REAL,
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE bandit_snapshots (
        category TEXT PRIMARY KEY,
        model BLOB NOT NULL,
        reward_seq INTEGER NOT NULL,
        saved_at REAL NOT NULL
    );
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        product_id TEXT NOT NULL,
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL,
        arm_id TEXT NOT NULL,
        creative_id TEXT NOT NULL,
        placement TEXT NOT NULL,
        candidates TEXT NOT NULL,
        context TEXT NOT NULL,
        propensity REAL NOT NULL,
        score REAL NOT NULL
    );
    CREATE TABLE rewards (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE REFERENCES events(event_id),
        reward REAL NOT NULL,
        received_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE evolution (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        round INTEGER NOT NULL,
        created_at REAL NOT NULL,
        category TEXT NOT NULL,
        cluster_id INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    """,
    # How many impressions an arm's prior CTR counts for (calibrated from the reward
    # model's error on held-out creatives; NULL = the service's default).
    """
    ALTER TABLE arms ADD COLUMN prior_impressions REAL;
    """,
    # Job leases: who renders which batch job, until when (see ``Store.claim_job``).
    """
    CREATE TABLE job_leases (
        job_key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    # Settings of the store itself: where a PostgreSQL store keeps its files ("folder").
    """
    CREATE TABLE store_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # The safety gate: whether a creative was blocked (its manifest's "safety" says why),
    # and the reviewers' overrides that make a blocked creative servable again.
    """
    ALTER TABLE creatives ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE safety_overrides (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        creative_id TEXT NOT NULL REFERENCES creatives(creative_id),
        reviewer TEXT NOT NULL,
        reason TEXT NOT NULL,
        at REAL NOT NULL
    );
    """,
]


def statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
