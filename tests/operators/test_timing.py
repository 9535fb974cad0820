"""Operator timing: the UTC offset of a working schedule, its hours and its breaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from narratives.cli import app
from narratives.evaluation.timing import Schedule, evaluate, generate_times
from narratives.operators.timing import (
    TimingConfig,
    TimingEstimator,
    fingerprint,
    page_timing,
    timing_similarity,
    week_histogram,
)

BEIJING_OFFICE = Schedule(
    offset=8.0, start=9.0, end=21.0, lunch=(12.0, 13.5), dinner=(18.0, 19.0), weekend=0.1
)


def _overlap(breaks, window, shift=0.0):
    for item in breaks or []:
        a, b = (int(x[:2]) + int(x[3:]) / 60 + shift for x in item.split("-"))
        if a < window[1] and b > window[0]:
            return True
    return False


def test_a_beijing_shift_with_lunch_and_dinner_is_read_back():
    times = generate_times(BEIJING_OFFICE, 400, np.random.default_rng(1))
    est = TimingEstimator().estimate(times)
    assert est["status"] == "ok" and est["n_posts"] == 400
    assert abs(est["utc_offset_hours"] - 8.0) <= 1.0
    assert est["confidence"] > 0.8
    shift = 8.0 - est["utc_offset_hours"]  # judge the breaks in the true local time
    assert _overlap(est["breaks"], (12.0, 13.5), shift)
    assert _overlap(est["breaks"], (18.0, 19.0), shift)
    start = int(est["work_start"][:2]) + int(est["work_start"][3:]) / 60 + shift
    assert 8.0 <= start <= 10.0


def test_moving_every_post_moves_the_offset():
    times = generate_times(BEIJING_OFFICE, 300, np.random.default_rng(2))
    estimator = TimingEstimator()
    base = estimator.estimate(times)["utc_offset_hours"]
    for hours in (-5, 3, 11):
        moved = estimator.estimate(times - pd.Timedelta(hours=hours))["utc_offset_hours"]
        assert (moved - (base + hours) + 12) % 24 - 12 == pytest.approx(0.0)


def test_few_posts_get_no_estimate_and_say_so():
    times = generate_times(BEIJING_OFFICE, 30, np.random.default_rng(3))
    est = TimingEstimator(TimingConfig(min_posts=50)).estimate(times)
    assert est["utc_offset_hours"] is None and est["confidence"] is None
    assert est["status"] == "too few posts (30 < 50)"
    with pytest.raises(ValueError, match="min_posts"):
        TimingConfig(min_posts=0)


def test_week_histogram_bins_utc_quarter_hours():
    hist = week_histogram(pd.to_datetime(["2022-01-03T00:14:59Z", "2022-01-09T23:45:00Z"]))
    assert hist.shape == (672,) and hist[0] == 1 and hist[671] == 1 and hist.sum() == 2


def test_a_group_of_pages_is_timed_from_its_posts_together():
    """Five pages of one Beijing shift, 40 posts each (too few alone), and two pages of a
    shift in UTC-5: the group's row finds Beijing time from the pooled posts."""
    rng = np.random.default_rng(4)
    rows = [(f"op{i}", t) for i in range(5) for t in generate_times(BEIJING_OFFICE, 40, rng)] + [
        (f"ny{i}", t)
        for i in range(2)
        for t in generate_times(
            Schedule(
                offset=-5.0, start=9.0, end=17.0, lunch=(12.0, 13.0), dinner=None, weekend=0.1
            ),
            40,
            rng,
        )
    ]
    posts = pd.DataFrame(rows, columns=["page_id", "created_at"]).assign(status="ok")
    groups = {**{f"op{i}": "operators" for i in range(5)}, "ny0": "ny", "ny1": "ny"}
    table = page_timing(posts, groups=groups).set_index(["scope", "group"], drop=False)
    assert table.loc[table["scope"] == "page", "utc_offset_hours"].isna().all()
    operators = table.loc[("group", "operators")]
    assert operators["n_posts"] == 200 and abs(operators["utc_offset_hours"] - 8.0) <= 1.0
    ny = table.loc[("group", "ny")]
    assert ny["n_posts"] == 80 and abs(ny["utc_offset_hours"] + 5.0) <= 1.0
    assert table.loc[table["scope"] == "page", "group"].isna().all()
    assert len(page_timing(posts)) == 8  # without groups: the pages and "all"


def test_generated_pages_meet_the_accuracy_target():
    """A small run of the evaluation (the README's has 500 pages per size)."""
    rows = evaluate(sizes=(200,), pages=60, seed=3)["rows"]
    assert rows[0]["offset_within_1h"] >= 0.95
    assert rows[0]["lunch_found"] >= 0.9
    assert rows[0]["false_midday_break"] <= 0.2


def test_timing_pairs_in_blocks_are_each_pages_nearest():
    # 13 pages: shifts at a few hours (so that many fingerprints are identical: ties)
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2023-01-02", tz="UTC")
    frames, times = [], []
    for p in range(13):
        if p >= 8:  # the times of an earlier page: identical fingerprints, exact ties
            at = times[p - 8]
        else:
            hour = [9, 9, 9, 14, 2][p % 5]
            days = rng.integers(0, 60, 60)
            at = start + pd.to_timedelta(days * 24 + hour + rng.uniform(0, 3, 60), unit="h")
        times.append(at)
        frames.append(pd.DataFrame({"page_id": f"p{p:02d}", "created_at": at}))
    posts = pd.concat(frames, ignore_index=True).assign(status="ok")
    pages = sorted(posts["page_id"].unique())
    matrix = np.stack([fingerprint(posts.loc[posts["page_id"] == p, "created_at"]) for p in pages])
    sims = matrix @ matrix.T
    for top in (1, 3):
        expected = set()  # every page's nearest others (ties: the first in id order), >= 0.8
        for i in range(len(pages)):
            near = [j for j in np.argsort(-sims[i].round(12), kind="stable") if j != i][:top]
            expected |= {(pages[i], pages[j]) for j in near if sims[i, j] >= 0.8 and i < j}
        for block in (1, 4, 1024):  # several blocks or one: the same pairs
            got = timing_similarity(posts, min_posts=50, top=top, block=block)
            assert set(zip(got["page_a"], got["page_b"])) == expected, (top, block)
            assert got["similarity"].is_monotonic_decreasing
        assert len(expected) >= 4


def test_sample_pages_and_the_cli(sample_result, tmp_path):
    table = page_timing(sample_result.posts)
    lace = table[table["page_id"] == "lace_boutique"].iloc[0]
    assert abs(lace["utc_offset_hours"] - 8.0) <= 1.0  # the sample posts on Beijing shifts
    small = table[table["n_posts"] < 50]
    assert small["utc_offset_hours"].isna().all() and len(small) > 0
    assert (table["scope"] == "all").sum() == 1
    pages = sample_result.pages.set_index("page_id")
    by_page = table[table["scope"] == "page"].set_index("page_id")
    pd.testing.assert_series_equal(
        pages["utc_offset_hours"], by_page["utc_offset_hours"].reindex(pages.index),
        check_names=False, check_dtype=False,
    )  # fmt: skip

    out = sample_result.save(tmp_path / "scored")
    result = CliRunner().invoke(app, ["timing", str(out), "--min-posts", "60"])
    assert result.exit_code == 0, result.output
    assert "lace_boutique: UTC+" in result.output and "too few posts (50 < 60)" in result.output
    written = pq.read_table(out / "timing.parquet").to_pandas()
    assert set(written["page_id"].dropna()) == set(pages.index)
    assert pq.read_table(out / "timing_pairs.parquet").schema.names == [
        "page_a", "page_b", "similarity",
    ]  # fmt: skip
    few = CliRunner().invoke(app, ["timing", str(out), "--show", "1"])
    n_pages = len(pages)
    assert f"... and {n_pages - 1} more pages (timing.parquet has them all)" in few.output
    assert "all pages: UTC+" in few.output  # the summary rows are always shown
    bad = CliRunner().invoke(app, ["timing", str(tmp_path)])
    assert bad.exit_code == 2 and "run narratives score first" in bad.output

    groups = tmp_path / "groups.csv"
    groups.write_text("page_id,group\nlace_boutique,shop\nstarlight_fans,shop\n")
    result = CliRunner().invoke(app, ["timing", str(out), "--groups", str(groups)])
    assert result.exit_code == 0 and "group shop: UTC+" in result.output, result.output
    shop = pq.read_table(out / "timing.parquet").to_pandas().query("scope == 'group'")
    assert shop["group"].tolist() == ["shop"] and shop["n_posts"].tolist() == [150]
    # without --groups: the coordination network's groups, once coordination has run
    pd.DataFrame(
        {"page_a": ["lace_boutique"], "page_b": ["starlight_fans"], "weight": [2]}
    ).to_parquet(out / "coordination_edges.parquet")
    result = CliRunner().invoke(app, ["timing", str(out)])
    assert "group coordination-1: UTC+" in result.output, result.output
    groups.write_text("page,group\nlace_boutique,shop\n")
    bad = CliRunner().invoke(app, ["timing", str(out), "--groups", str(groups)])
    assert bad.exit_code == 2 and "lacks column(s) ['page_id']" in bad.output
