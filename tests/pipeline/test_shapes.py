"""Dumps shaped like real archives, through the command line with the real model: spam
pages repeating a few texts, dumps of pages too small to judge, and a bug on one page,
which must cost that page only (the regression tests of the crashes users met)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

from narratives.cli import EXIT_PAGE_ERRORS, app

runner = CliRunner()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """The sample's distinct texts (several languages), in file order."""
    from narratives import read_posts

    posts = read_posts(SAMPLE).posts
    return posts.loc[posts["status"] == "ok", "text"].drop_duplicates().tolist()


def write_posts(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def invoke(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def test_pages_repeating_a_few_texts_are_judged(texts, embedder, tmp_path):
    """The issue's crash (Cholesky failed after minutes, nothing written): pages of 50
    posts, each repeating one, two or three texts, some of them in two languages."""
    by_lang = {}
    from narratives.embedding.langid import detect_languages

    for text, lang in zip(texts, detect_languages(texts)[0]):
        by_lang.setdefault(lang, []).append(text)
    english = by_lang["en"]
    other = [t for lang, ts in sorted(by_lang.items()) if lang != "en" for t in ts]
    rows = []
    for p in range(12):
        distinct = [english[p], english[p + 20], other[p % len(other)]][: 1 + p % 3]
        for k in range(50):
            rows.append(
                {
                    "post_id": f"{p}-{k}",
                    "page_id": f"spam{p}",
                    "text": distinct[k % len(distinct)],
                    "created_at": 1_640_000_000 + 3600 * k + p,
                }
            )
    src = write_posts(tmp_path / "spam.jsonl", rows)
    out = tmp_path / "out"
    invoke("score", src, "-o", out)
    pages = pd.read_parquet(out / "pages.parquet")
    assert len(pages) == 12 and (pages["pivot_status"] == "ok").all()
    assert (pages["n_pivots"] == 0).all()
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["page_errors"] == 0 and run["pivots"]["pages_with_errors"] == 0


@pytest.fixture(scope="module")
def small_dump(texts, embedder, tmp_path_factory) -> Path:
    """23 posts on 9 pages of fewer than 8 posts each: no page is judged."""
    rows = []
    for p, size in enumerate([1, 2, 3, 4, 1, 2, 3, 4, 3]):
        for _ in range(size):
            k = len(rows)
            rows.append(
                {
                    "post_id": f"s{k}",
                    "page_id": f"pg{p}",
                    "text": texts[k],
                    "created_at": 1_650_000_000 + 600 * k,
                }
            )
    tmp = tmp_path_factory.mktemp("small")
    out = tmp / "out"
    invoke("score", write_posts(tmp / "small.jsonl", rows), "-o", out)
    return out


def test_every_reader_handles_pages_that_were_not_judged(small_dump):
    """The issue's second crash: narratives report stopped with 'cannot convert float NaN
    to integer' on a dump whose pages all have too few posts. Their n_pivots is null,
    and report, timing, coordination, pivots and the Python API read it."""
    import narratives
    from narratives.report.build import report_data

    pages = pd.read_parquet(small_dump / "pages.parquet")
    assert len(pages) == 9 and pages["n_pivots"].isna().all()
    assert pages["pivot_status"].str.startswith("too few posts").all()
    assert pages["timing_status"].str.startswith("too few posts").all()
    invoke("report", small_dump, "--force")
    assert (small_dump / "report.html").stat().st_size > 0
    table = report_data(small_dump)["table"]
    assert len(table) == 9 and all(row[5] is None for row in table)
    assert "all pages: too few posts (23 < 50)" in invoke("timing", small_dump)
    invoke("coordination", small_dump)
    assert "too few posts 9" in invoke("pivots", small_dump)
    invoke("report", small_dump, "--force")  # with timing and coordination on disk
    result = narratives.load_scored(small_dump)
    assert result.pages["n_pivots"].isna().all() and result.pivots.empty
    assert len(result.posts) == 23


@pytest.mark.page_errors_expected
def test_a_bug_on_one_page_costs_that_page_only(small_dump, texts, tmp_path, monkeypatch, caplog):
    """An unexpected error in one page's pivot detection: the run completes and writes
    every file, the page says what happened, run.json counts it, the log names the page,
    and the exit code says the run completed with page errors."""
    from narratives.pivots.detector import PivotDetector

    rows = [
        {
            "post_id": f"{p}-{k}",
            "page_id": f"page{p}",
            "text": texts[(7 * p + k) % len(texts)],
            "created_at": 1_640_000_000 + 3600 * k,
        }
        for p in range(3)
        for k in range(20)
    ]
    src = write_posts(tmp_path / "in.jsonl", rows)
    detect_page = PivotDetector.detect_page

    def broken(self, timeline):
        if timeline.page_id == "page1":
            raise ZeroDivisionError("float division by zero\nsecond line")
        return detect_page(self, timeline)

    monkeypatch.setattr(PivotDetector, "detect_page", broken)
    out = tmp_path / "out"
    output = invoke("score", src, "-o", out, code=EXIT_PAGE_ERRORS)
    assert "pivot detection failed on 1 page(s) (page1)" in output
    pages = pd.read_parquet(out / "pages.parquet").set_index("page_id")
    assert pages.loc["page1", "pivot_status"] == "error: ZeroDivisionError: float division by zero"
    assert pd.isna(pages.loc["page1", "n_pivots"])
    assert (pages.drop(index="page1")["pivot_status"] == "ok").all()
    assert len(pd.read_parquet(out / "posts.parquet")) == 60
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["page_errors"] == 1
    assert run["page_errors"]["pivots"] == {"pages": 1, "first": ["page1"]}
    assert "'page1'" in caplog.text and "ZeroDivisionError" in caplog.text
    assert invoke("pivots", out, code=EXIT_PAGE_ERRORS)
    monkeypatch.setattr(PivotDetector, "detect_page", detect_page)
    invoke("pivots", out)  # fixed: the page is judged again
    assert pd.read_parquet(out / "pages.parquet")["pivot_status"].eq("ok").all()


@pytest.mark.page_errors_expected
def test_a_bug_in_timing_costs_the_estimate_only(small_dump, tmp_path, monkeypatch):
    from narratives.operators.timing import TimingEstimator

    def broken(self, times):
        raise ValueError("no schedule")

    monkeypatch.setattr(TimingEstimator, "estimate", broken)
    output = invoke("timing", small_dump, "--min-posts", "1", code=EXIT_PAGE_ERRORS)
    assert "operator timing failed on 10 page(s)" in output  # 9 pages and all together
    timing = pd.read_parquet(small_dump / "timing.parquet")
    assert (timing["status"] == "error: ValueError: no schedule").all()
    assert timing["utc_offset_hours"].isna().all() and len(timing) == 10
    n_posts = timing.set_index("scope").loc["all", "n_posts"]
    assert n_posts == 23
    assert "report" in invoke("report", small_dump, "--force")  # the report still draws
