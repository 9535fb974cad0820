"""The HTML report: its data, its escaping, and what headless Chromium makes of it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import chromium, chromium_path, visit
from conftest import SAMPLE
from typer.testing import CliRunner

from narratives.cli import app
from narratives.report.build import ReportConfig, build_report, report_data, write_report
from narratives.report.render import script_json

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_dir(sample_result, tmp_path_factory) -> Path:
    return sample_result.save(tmp_path_factory.mktemp("scored") / "sample")


def _browser_or_skip() -> None:
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("playwright", reason="playwright comes with the dev extra (.[dev])")


# Payloads planted in post text, page names and post ids: each would set window.__pwned
# (or the title) if the report ever let it run.
PAYLOADS = [
    "<script>window.__pwned='script';document.title='pwned'</script>",
    "</script><script>window.__pwned='close'</script>",
    "<img src=x onerror=\"window.__pwned='img'\">",
    "<a href=\"javascript:window.__pwned='link'\">click me</a>",
    "<svg onload=\"window.__pwned='svg'\"></svg><!--",
    "line\u2028separator\u2029and &amp; entity",
]
EVIL_PAGE = "<img src=x onerror=\"window.__pwned='page'\">lace</script><b>"


def test_script_json_cannot_close_its_element():
    value = {"text": "</script><!-- <script>x</script> & \u2028 \u2029 ]]>", "n": [1, 2.5, None]}
    out = script_json(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in out
    assert json.loads(out) == value


def test_report_data_matches_the_scored_tables(sample_dir, sample_result):
    data = report_data(sample_dir)
    posts = sample_result.posts
    counts = data["counts"]
    assert counts["posts"] == len(posts) == counts["ok"] + counts["rejected"]
    assert counts["rejected"] == int((posts["status"] == "rejected").sum())
    assert sum(n for _, n in data["rejections"]) == counts["rejected"]
    assert counts["pivots"] == len(sample_result.pivots) == len(data["pivots"])
    assert counts["pages"] == len(data["table"]) == data["table_total"]
    # pages are ranked by their largest pivot: every pivoted page before any other
    pivots = [row[5] for row in data["table"]]
    assert pivots == sorted(pivots, key=lambda n: n == 0)
    magnitudes = [row[6] for row in data["table"] if row[6] is not None]
    assert magnitudes == sorted(magnitudes, reverse=True)
    # every drawn page: one point per timed post, and the drift jumps at a pivot
    assert len(data["pages"]) == data["drawn_total"] == counts["pages"]
    drawn_posts = sum(p["n"] for p in data["pages"])
    timed = posts[(posts["status"] == "ok") & posts["created_at"].notna()]
    assert drawn_posts == len(timed)
    for page in data["pages"]:
        assert len(page["t"]) == len(page["drift"]) == len(page["lang"]) == page["shown"]
        assert page["t"] == sorted(page["t"])
        for b in page["breaks"]:
            before, after = np.mean(page["drift"][:b]), np.mean(page["drift"][b:])
            assert after > before + 0.03, page["page_id"]
    lace = next(p for p in data["pages"] if p["page_id"] == "lace_boutique")
    assert [r["n"] for r in lace["regimes"]] == [40, 40]
    before, after = (dict((k, s) for k, _, s in r["mix"]) for r in lace["regimes"])
    assert sum(after.values()) > sum(before.values())  # the pivot is to narratives
    assert [side["label"].split()[0] for side in lace["examples"]] == ["before", "after"]
    assert all(len(side["posts"]) == 3 for side in lace["examples"])
    assert data["mix"]["bucket"] == "week"
    assert sum(lang["posts"] for lang in data["mix"]["languages"]) == len(timed)


def test_report_shows_the_timing_narratives_timing_wrote(sample_dir, tmp_path):
    """Once narratives timing has run, the report shows its estimates (made with the
    user's settings) for all pages, each page and each coordination group, not estimates
    of its own with the defaults."""
    import shutil

    from narratives.operators.coordination import CoordinationConfig, write_coordination
    from narratives.operators.timing import TimingConfig, write_timing

    scored = tmp_path / "scored"
    shutil.copytree(sample_dir, scored)
    default = report_data(scored)
    assert default["timing"]["utc_offset_hours"] is not None  # 375 posts: enough
    write_coordination(scored, CoordinationConfig(window_minutes=100_000, threshold=0.9))
    write_timing(scored, TimingConfig(min_posts=10_000))
    data = report_data(scored)
    shown = [data["timing"], *(p["timing"] for p in data["pages"])]
    shown += [g["timing"] for g in data["coordination"]["groups"]]
    assert len(data["coordination"]["groups"]) >= 1
    for timing in shown:
        assert timing["utc_offset_hours"] is None
        assert timing["status"].startswith("too few posts") and "< 10000" in timing["status"]
        assert len(timing["hours"]) == 7 and sum(map(sum, timing["hours"])) > 0
    assert data["timing"]["n_posts"] == default["timing"]["n_posts"]


def test_long_timelines_are_sampled_with_the_pivots_kept(sample_dir):
    data = report_data(sample_dir, config=ReportConfig(max_points=12, max_pages=2))
    assert len(data["pages"]) == 2 and data["drawn_total"] == 2
    assert len(data["table"]) == data["table_total"] == data["counts"]["pages"]
    for page in data["pages"]:
        assert page["shown"] <= 12 + 2 * len(page["pivots"]) < page["n"]
        for b, pivot in zip(page["breaks"], page["pivots"]):
            assert page["t"][b][:16] == pivot["at"]  # the first post of the new regime
    with pytest.raises(ValueError, match="max_points"):
        ReportConfig(max_points=0)


def test_report_is_deterministic_and_self_contained(sample_dir):
    first, second = build_report(sample_dir), build_report(sample_dir)
    assert first == second
    assert len(re.findall(r"<script\b", first)) == 3
    # the markup outside the scripts names no address (the browser test watches requests)
    markup = re.sub(r"<script\b.*?</script>", "", first, flags=re.S)
    assert not re.search(r"(src|href)\s*=|url\(|https?:", markup)
    assert "Content-Security-Policy" in first and "default-src 'none'" in first
    assert "@import" not in first


def test_cli_report_and_score_report(sample_dir, embedder, tmp_path):
    scored = tmp_path / "scored"
    shutil.copytree(sample_dir, scored)
    result = runner.invoke(app, ["report", str(scored)])
    assert result.exit_code == 0, result.output
    assert (scored / "report.html").stat().st_size > 1_000_000  # plotly is inside
    again = runner.invoke(app, ["report", str(scored)])
    assert again.exit_code == 2 and "--force" in again.output
    other = tmp_path / "r.html"
    assert runner.invoke(app, ["report", str(scored), "-o", str(other)]).exit_code == 0
    assert other.read_text("utf-8") == (scored / "report.html").read_text("utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = runner.invoke(app, ["report", str(empty)])
    assert bad.exit_code == 2 and "posts.parquet" in bad.output

    src = tmp_path / "in.jsonl"
    src.write_text(
        "".join(line for line in SAMPLE.read_text("utf-8").splitlines(True)[:40]), "utf-8"
    )
    out = tmp_path / "out"
    scored_run = runner.invoke(app, ["score", str(src), "-o", str(out), "--report"])
    assert scored_run.exit_code == 0, scored_run.output
    assert (out / "report.html").is_file() and "report " in scored_run.output


def _hostile_input(path: Path) -> Path:
    """The sample's lace_boutique page (which pivots) renamed to a payload, with payloads in
    its post ids and texts; cafe_sol (no pivot: its first and last three posts are shown)
    with one payload in each of those six; and rows that are rejected."""
    from narratives import read_posts

    posts = read_posts(SAMPLE).posts
    cafe = posts[(posts["page_id"] == "cafe_sol") & (posts["status"] == "ok")]
    cafe = cafe.sort_values(["created_at", "source_row"])["post_id"].tolist()
    shown = dict(zip(cafe[:3] + cafe[-3:], PAYLOADS))
    lines = SAMPLE.read_text("utf-8").splitlines()
    pages = ('"page_id": "lace_boutique"', '"page_id": "cafe_sol"')
    keep = [json.loads(line) for line in lines if any(p in line for p in pages)]
    for i, r in enumerate(keep):
        if r["page_id"] == "lace_boutique":
            r["page_id"] = EVIL_PAGE
            r["post_id"] = f"{PAYLOADS[i % len(PAYLOADS)]}-{i}"
            r["text"] = f"{r['text']} {PAYLOADS[i % len(PAYLOADS)]}"
        elif r["post_id"] in shown:
            r["text"] = f"{r['text']} {shown[r['post_id']]}"
    assert len(shown) == len(PAYLOADS)
    keep.append({"post_id": "<b>bad</b>", "page_id": EVIL_PAGE, "text": PAYLOADS[0],
                 "created_at": "<script>window.__pwned='time'</script>"})  # fmt: skip
    lines = [json.dumps(r, ensure_ascii=False) for r in keep]
    lines.append('{"text": "<script>window.__pwned=\'json\'</script>')  # not JSON: rejected
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def hostile_dir(embedder, tmp_path_factory) -> Path:
    from narratives import score

    base = tmp_path_factory.mktemp("hostile")
    from narratives.operators.coordination import CoordinationConfig, write_coordination

    result = score(_hostile_input(base / "in.jsonl"), embedder=embedder, progress=False)
    assert (result.pivots["page_id"] == EVIL_PAGE).any()  # so its examples are drawn
    scored = result.save(base / "scored")
    # every post linked to every other page's within a year: the coordination section
    # (pairs, the group's timing, clusters with their posts) shows the payloads too
    everything = CoordinationConfig(window_minutes=525_600, threshold=-1.0, min_weight=1)
    _, edges = write_coordination(scored, everything)
    assert EVIL_PAGE in set(edges["page_a"]) | set(edges["page_b"])
    return scored


@pytest.mark.browser
@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_hostile_text_shows_literally_and_runs_nothing(hostile_dir, tmp_path, csp):
    _browser_or_skip()
    page = write_report(hostile_dir, tmp_path / "r.html", csp=csp)
    html = page.read_text("utf-8")
    assert len(re.findall(r"<script\b", html, flags=re.I)) == 3
    payload = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html)
    assert payload is not None
    assert EVIL_PAGE in [p["page_id"] for p in json.loads(payload.group(1))["pages"]]
    assert "\u2028" not in payload.group(1) and "<" not in payload.group(1)
    with chromium() as browser:
        seen = visit(browser, page, tmp_path / "shot.png")
    state = seen.state
    assert state["pwned"] is None and seen.title == "narratives report"
    assert state["scripts"] == 3 and state["images"] == 0
    assert all(re.fullmatch(r"#page-\d+", href) for href in state["links"])
    assert not seen.page_errors and not seen.console_errors
    text = state["text"]
    for payload in PAYLOADS:  # as text, exactly (cafe_sol's examples carry each of them)
        assert payload in text, payload
    assert EVIL_PAGE in text
    assert "Group coordination-1: 2 pages" in text  # the coordination section was drawn
    assert any(EVIL_PAGE in title for title in state["chart_titles"])  # Plotly's own text
    assert state["drawn"] == state["charts"] and state["failed"] == "0"


@pytest.mark.browser
def test_sample_report_draws_offline_in_chromium(sample_dir, tmp_path):
    _browser_or_skip()
    page = write_report(sample_dir, tmp_path / "report.html")
    data = report_data(sample_dir)
    with chromium() as browser:
        seen = visit(browser, page, tmp_path / "shot.png")
    assert seen.requests == [page.resolve().as_uri()]  # the file itself, nothing else
    assert not seen.console_errors and not seen.page_errors
    expected = (
        (1 if data["pivots"] else 0)
        + 2  # narrative mix over time, posting hours of all pages
        + 2 * len(data["pages"])  # timeline and posting hours
        + sum(1 for p in data["pages"] if any(r["mix"] for r in p["regimes"]))
    )
    assert int(seen.state["charts"]) == int(seen.state["drawn"]) == expected
    assert len(seen.charts) == expected
    for chart in seen.charts:
        assert chart["width"] > 300 and chart["height"] > 100, chart
        assert chart["marks"] > 0, chart
    timelines = [c for c in seen.charts if "timeline-chart" in c["cls"]]
    assert [c["marks"] > 10 for c in timelines] == [True] * len(data["pages"])
    shot = (tmp_path / "shot.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
    # the table sorts and filters in the page
    with chromium() as browser:
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(page.resolve().as_uri())
        tab.wait_for_function("document.body.dataset.drawn !== undefined")
        tab.fill("#page-filter", "journal")
        rows = "#page-table tbody tr:not([hidden]) td:first-child"
        visible = tab.eval_on_selector_all(rows, "els => els.map(e => e.textContent)")
        assert visible == ["le_journal_local"]
        tab.fill("#page-filter", "")
        tab.click("#page-table th:nth-child(2)")  # posts, largest first
        posts = tab.eval_on_selector_all(
            "#page-table tbody tr td:nth-child(2)", "els => els.map(e => Number(e.textContent))"
        )
        assert posts == sorted(posts, reverse=True) and len(posts) == len(data["table"])
        context.close()


def test_report_refuses_to_overwrite_and_reads_old_folders(sample_dir, tmp_path):
    out = tmp_path / "r.html"
    write_report(sample_dir, out)
    with pytest.raises(Exception, match="--force"):
        write_report(sample_dir, out)
    write_report(sample_dir, out, force=True)
    stripped = tmp_path / "old"
    shutil.copytree(sample_dir, stripped)
    posts = pd.read_parquet(stripped / "posts.parquet").drop(columns=["narratives"])
    posts.to_parquet(stripped / "posts.parquet")
    with pytest.raises(ValueError, match="lacks narratives"):
        report_data(stripped)
