"""Audiences: planted segments recovered, assignment, persistence, and bad tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from conftest import REPO
from studio.inputs.audience import Audience
from studio.inputs.tables import load_users
from studio.cli import app
from studio.errors import StudioError

DEMO = REPO / "assets" / "demo" / "users.csv"


@pytest.fixture(scope="module")
def demo_users():
    return load_users(DEMO)


@pytest.fixture(scope="module")
def fitted(demo_users):
    return Audience().fit(demo_users)


def test_clusters_recover_the_planted_segments(demo_users, fitted):
    assert fitted.k_ == 5  # chosen by silhouette over 2..10
    assert max(fitted.silhouette_, key=fitted.silhouette_.get) == 5
    assert adjusted_rand_score(demo_users["segment"], fitted.labels_) >= 0.8
    assert sum(c.size for c in fitted.clusters_) == len(demo_users)
    # Each cluster's top interests come from one planted segment.
    for cluster in fitted.clusters_:
        members = demo_users["segment"][fitted.labels_ == cluster.id]
        majority = members.value_counts().index[0]
        segment_tags = set(demo_users.loc[demo_users["segment"] == majority, "interests"]
                           .str.split(";").explode().value_counts().index[:12])
        assert set(cluster.interests[:3]) <= segment_tags
        assert cluster.profile.startswith(f"Cluster {cluster.id}: ") and "into" in cluster.profile


def test_segment_column_is_ignored(demo_users):
    shuffled = demo_users.assign(segment=np.random.default_rng(0).permutation(demo_users["segment"]))
    a = Audience(5).fit(demo_users)
    b = Audience(5).fit(shuffled)
    assert (a.labels_ == b.labels_).all()


def test_new_users_go_to_the_nearest_centroid_and_save_load_keeps_it(tmp_path, demo_users, fitted):
    assert (fitted.assign(demo_users) == fitted.labels_).all()
    path = tmp_path / "clusters.json"
    fitted.save(path)
    loaded = Audience.load(path)
    assert [c.as_dict() for c in loaded.clusters_] == [c.as_dict() for c in fitted.clusters_]
    newcomers = pd.DataFrame({
        "user_id": ["n1", "n2"], "age": [30, 45], "income_k": [40.0, None],
        "sessions_per_week": [2.0, 3.0], "device": ["mobile", "smart-tv"],
        "region": ["north", "south"], "interests": ["hiking;camping", "Jewelry | Champagne"]})
    ids = loaded.assign(newcomers)
    assert (ids == fitted.assign(newcomers)).all()
    assert loaded.cluster(int(ids[0])).interests[0] in {"hiking", "camping", "mountains"}
    assert loaded.cluster(int(ids[1])).interests[0] in {"fine dining", "jewelry", "fashion week"}


def test_minilm_interest_encoding(demo_users):
    sample = demo_users.sample(800, random_state=0)
    audience = Audience(5, interest_encoding="minilm").fit(sample)
    assert adjusted_rand_score(sample["segment"], audience.labels_) >= 0.8
    assert (audience.assign(sample) == audience.labels_).all()


def test_parquet_tables_load(tmp_path, demo_users):
    path = tmp_path / "users.parquet"
    demo_users.head(300).to_parquet(path)
    assert len(load_users(path)) == 300


def _table(**columns):
    base = {"user_id": ["a", "b", "c"], "age": [20, 30, 40], "interests": ["x;y", "y", ""]}
    base.update(columns)
    return pd.DataFrame({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize("frame,pattern", [
    (pd.DataFrame({"user_id": []}), "empty"),
    (_table(user_id=None), "no 'user_id' column"),
    (_table(user_id=["a", None, "c"]), "missing in row 2"),
    (_table(user_id=["a", "b", "a"]), "duplicate user_ids: 'a'"),
    (_table(interests=[1, 2, 3]), "interests must be text"),
    (_table(age=[20, "thirty", 40]), "mixes numbers and text"),
    (_table(age=["20", "30", "40"]), "numbers stored as text"),
    (_table(signup=pd.to_datetime(["2024-01-01"] * 3)), "holds dates"),
])
def test_bad_tables_fail_clearly(frame, pattern):
    with pytest.raises(StudioError, match=pattern):
        load_users(frame)


def test_identifier_columns_and_files(tmp_path):
    many = pd.DataFrame({"user_id": [f"u{i}" for i in range(200)],
                         "email": [f"{i}@x.org" for i in range(200)], "age": range(200)})
    with pytest.raises(StudioError, match="looks like an identifier"):
        load_users(many)
    for name, content, pattern in [("users.xlsx", b"x", "use a .csv or .parquet"),
                                   ("broken.parquet", b"not parquet", "cannot read"),
                                   ("missing.csv", None, "does not exist")]:
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(StudioError, match=pattern):
            load_users(path)


def test_bad_settings_and_files_fail_clearly(tmp_path, demo_users):
    with pytest.raises(StudioError, match="more than the 3 users"):
        Audience(5).fit(_table())
    with pytest.raises(StudioError, match="interest_encoding"):
        Audience(interest_encoding="tfidf").fit(demo_users)
    with pytest.raises(StudioError, match="k_range"):
        Audience(k_range=(1, 4)).fit(demo_users)
    with pytest.raises(StudioError, match="not fitted"):
        Audience().assign(demo_users)
    damaged = tmp_path / "c.json"
    damaged.write_text("{not json")
    with pytest.raises(StudioError, match="not a clusters file"):
        Audience.load(damaged)
    damaged.write_text(json.dumps({"format": "creative-studio/audience", "version": 99}))
    with pytest.raises(StudioError, match="version 99"):
        Audience.load(damaged)


def test_cli_fit_and_show(tmp_path):
    runner = CliRunner()
    out, assignments = tmp_path / "clusters.json", tmp_path / "assign.csv"
    result = runner.invoke(app, ["audience", "fit", str(DEMO), "--out", str(out),
                                 "--assignments", str(assignments), "--k", "5"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(assignments, dtype={"user_id": str})
    assert list(table.columns) == ["user_id", "cluster_id"] and len(table) == 5000
    assert set(table["cluster_id"]) == set(range(5))
    shown = runner.invoke(app, ["audience", "show", str(out)])
    assert shown.exit_code == 0 and shown.output.count("users") >= 5
    bad = runner.invoke(app, ["audience", "fit", str(tmp_path / "none.csv"), "--out", str(out)])
    assert bad.exit_code == 2 and "does not exist" in bad.stderr
