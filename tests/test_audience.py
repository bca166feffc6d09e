"""Audiences: planted segments recovered, assignment, persistence, profiles and names,
reading text tables, and bad tables.

Why this module is long: every way a user table can be wrong needs its own test, and
the loader, the clusters and their descriptions share the fitted demo audience here.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from conftest import REPO
from studio.inputs.audience import Audience
from studio.inputs.clusters import Cluster, name_clusters
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
    for name, content, pattern in [("users.xlsx", b"x", "users.xlsx is not a user table"),
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


# ----------------------------------------------------------- profiles and names
SCIENTIFIC = re.compile(r"\d(\.\d+)?e[+-]?\d", re.IGNORECASE)


def _uploaded_table(n=120):
    """A small uploaded table: gender codes, a yes/no column, incomes in plain units."""
    rng = np.random.default_rng(3)
    half = n // 2
    return pd.DataFrame({
        "user_id": [f"u{i}" for i in range(n)],
        "gender": ["m"] * (half - 8) + ["f"] * 8 + ["f"] * (half - 8) + ["m"] * 8,
        "subscribed": [True] * half + [False] * half,
        "age": np.r_[rng.integers(25, 34, half), rng.integers(45, 60, half)],
        "income": np.r_[rng.normal(56_700, 800, half), rng.normal(91_000, 900, half)],
        "interests": ["running;trail"] * half + ["gardening;baking"] * half})


def _check_names(clusters):
    names = [c.name for c in clusters]
    assert len(set(names)) == len(names), names
    assert all(0 < len(name) <= 40 for name in names), names


def test_demo_profiles_and_names_read_like_people_wrote_them(fitted):
    for cluster in fitted.clusters_:
        assert not SCIENTIFIC.search(cluster.profile), cluster.profile
        assert re.search(r"\(\d+ %\)", cluster.profile), cluster.profile
        assert "average income " in cluster.profile and "income k" not in cluster.profile
    _check_names(fitted.clusters_)
    # Names come from the cluster's interests: the hikers' cluster says so.
    assert any("hiking" in c.name for c in fitted.clusters_)


def test_uploaded_table_profiles_say_men_and_plain_numbers():
    audience = Audience(2).fit(_uploaded_table())
    men = next(c for c in audience.clusters_ if "running" in c.interests)
    assert "mostly men (87 %)" in men.profile, men.profile
    assert "subscribed: mostly yes (100 %)" in men.profile, men.profile
    assert re.search(r"average age \d\d\b", men.profile), men.profile
    assert re.search(r"average income 5\d,\d00\b", men.profile), men.profile
    for cluster in audience.clusters_:
        assert not SCIENTIFIC.search(cluster.profile), cluster.profile
        assert "mostly m " not in cluster.profile and "gender" not in cluster.profile
    assert men.name in ("Men 25–34 · running & trail · low income",
                        "Men 25–34 · trail & running · low income"), men.name
    _check_names(audience.clusters_)


def test_colliding_names_get_a_number_and_stay_short():
    long_tags = [("a very long interest tag indeed", 0.9), ("another long one", 0.8)]
    clusters = [Cluster(i, 10, 0.25, long_tags, {"gender": [("F", 0.9)]}, {"age": 40.0},
                        "", [0.0]) for i in range(4)]
    names = name_clusters(clusters)
    # Too long with the age band: the interest alone is kept (interests come first).
    assert names[0] == "A very long interest tag indeed"
    assert names[1:] == [f"A very long interest tag indeed {n}" for n in (2, 3, 4)]
    full = [Cluster(i, 10, 0.5, [("x" * 40, 0.9)], {}, {}, "", [0.0]) for i in range(2)]
    assert name_clusters(full) == ["X" + "x" * 39, "X" + "x" * 37 + " 2"]
    _check_names([Cluster(i, 1, 0.25, [], {}, {}, "", [0.0], name=n)
                  for i, n in enumerate(names)])


def test_old_cluster_files_without_names_still_load(tmp_path, fitted):
    document = fitted.to_document()
    for cluster in document["clusters"]:
        del cluster["name"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    loaded = Audience.load(old)
    assert [c.name for c in loaded.clusters_] == [c.name for c in fitted.clusters_]
    assert [c.profile for c in loaded.clusters_] == [c.profile for c in fitted.clusters_]
    lone = Cluster.from_dict(document["clusters"][0])
    assert lone.name and len(lone.name) <= 40
    # An old file whose clusters would share a name gets unique names.
    twins = fitted.to_document()
    twins["clusters"] = [dict(twins["clusters"][0], id=i) for i in range(2)]
    for cluster in twins["clusters"]:
        del cluster["name"]
    _check_names(Audience.from_document(twins).clusters_)


# ------------------------------------------------------------- reading text tables
@pytest.mark.parametrize("sep,suffix", [(",", ".csv"), (";", ".csv"), ("\t", ".csv"),
                                        ("\t", ".tsv"), (";", ".txt")])
def test_delimited_tables_are_read_whatever_the_delimiter(tmp_path, demo_users, sep, suffix):
    sample = demo_users.head(200)
    path = tmp_path / f"users{suffix}"
    sample.to_csv(path, sep=sep, index=False)  # cells holding ';' are quoted
    before = path.read_bytes()
    loaded = load_users(path)
    pd.testing.assert_frame_equal(loaded.reset_index(drop=True), sample.reset_index(drop=True),
                                  check_dtype=False)
    assert path.read_bytes() == before


def test_decimal_commas_of_a_semicolon_table_are_numbers(tmp_path, demo_users):
    sample = demo_users.head(100)
    path = tmp_path / "users.csv"
    sample.to_csv(path, sep=";", decimal=",", index=False)
    assert b"66,1" in path.read_bytes()
    loaded = load_users(path)
    assert pd.api.types.is_float_dtype(loaded["income_k"])
    assert np.allclose(loaded["income_k"], sample["income_k"])
    # Both styles in one file: nothing is guessed, the column is refused with an example.
    mixed = path.read_text().replace("66,1", "66.1")
    path.write_text(mixed)
    with pytest.raises(StudioError, match="income_k.*mixes numbers and text"):
        load_users(path)


@pytest.mark.parametrize("name,content", [
    ("users.png", "png"), ("users.csv", "png"), ("users.xlsx", "zip"), ("users.tsv", "nul")])
def test_files_that_are_not_tables_are_refused_by_name(tmp_path, name, content):
    from PIL import Image

    path = tmp_path / name
    if content == "png":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, format="PNG")
    elif content == "zip":
        path.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    else:
        path.write_bytes(b"user_id\tage\n\x00\x01\x02\n")
    before = path.read_bytes()
    with pytest.raises(StudioError, match=re.escape(
            f"{name} is not a user table (CSV, TSV or Parquet)")):
        load_users(path)
    with pytest.raises(StudioError, match="not a user table"):
        Audience(2).fit(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [name]


def test_text_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes("user_id,city\nu1,K\xf6ln\nu2,Z\xfcrich\n".encode("latin-1"))
    with pytest.raises(StudioError, match="not UTF-8 text"):
        load_users(path)


@pytest.mark.parametrize("dates", [
    ["2024-01-03", "2023-12-30", "2024-02-11"],
    ["2024-01-03 10:15:00", "2023-12-30T08:00:00Z", "2024-02-11 23:59"],
    ["03/01/2024", "30/12/2023", "11/02/2024"],
    ["3.1.24", "30.12.23", "11.2.24"],
])
def test_date_columns_in_a_file_are_refused(tmp_path, dates):
    path = tmp_path / "users.csv"
    _table(signup=dates).to_csv(path, index=False)
    with pytest.raises(StudioError, match=r"column 'signup' holds dates \(e\.g\. '.+'\).*"
                                          r"days since signup"):
        load_users(path)


def test_date_objects_are_refused_like_dates(tmp_path):
    import datetime

    path = tmp_path / "users.parquet"
    _table(birthday=[datetime.date(1990, 5, 1)] * 3).to_parquet(path)
    with pytest.raises(StudioError, match="'birthday' holds dates"):
        load_users(path)
    frame = _table(joined=pd.to_datetime(["2024-01-01"] * 3, utc=True))
    with pytest.raises(StudioError, match="'joined' holds dates.*an age"):
        load_users(frame)
    assert "joined" in frame and len(frame) == 3  # the caller's frame is untouched
