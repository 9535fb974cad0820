"""Operator timing: the UTC offset of a working schedule, its hours and its breaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from narratives.cli import app
from narratives.timing import TimingConfig, TimingEstimator, page_timing, week_histogram
from narratives.timing_eval import Schedule, evaluate, generate_times

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


def test_generated_pages_meet_the_accuracy_target():
    """A small run of the evaluation (the README's has 500 pages per size)."""
    rows = evaluate(sizes=(200,), pages=60, seed=3)["rows"]
    assert rows[0]["offset_within_1h"] >= 0.95
    assert rows[0]["lunch_found"] >= 0.9
    assert rows[0]["false_midday_break"] <= 0.2


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
    bad = CliRunner().invoke(app, ["timing", str(tmp_path)])
    assert bad.exit_code == 2 and "run narratives score first" in bad.output
