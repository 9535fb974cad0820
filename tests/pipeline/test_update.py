"""narratives update: new posts added to a scored folder give what one run over
everything gives; a killed update leaves the folder as it was or is finished with
--resume; the change log says what each update found."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE
from typer.testing import CliRunner

import narratives
import narratives.report.build
from narratives.cli import app
from narratives.errors import InputError, OutputError
from narratives.scored import read_parquet

runner = CliRunner()
TABLES = ("posts", "pivots", "pages", "coordination", "coordination_edges", "timing",
          "timing_pairs")  # fmt: skip


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _operators(out: Path) -> None:
    narratives.write_coordination(out)
    narratives.write_timing(out)


def _batches(lines: list[str], tmp: Path) -> tuple[Path, list[Path]]:
    """The first 70% of ``lines`` and the rest in 10 batches, each file named like the
    whole (a record without an id is named FILE:ROW)."""
    head = int(len(lines) * 0.7)
    rest = lines[head:]
    cuts = np.linspace(0, len(rest), 11).round().astype(int)
    first = _write(tmp / "head" / "posts.jsonl", lines[:head])
    return first, [
        _write(tmp / f"day{i:02d}" / "posts.jsonl", rest[a:b])
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]


def _same_tables(whole: Path, updated: Path) -> None:
    for name in TABLES:
        a, b = read_parquet(whole / f"{name}.parquet"), read_parquet(updated / f"{name}.parquet")
        assert a.num_rows == b.num_rows, name
        differ = [c for c in a.column_names if not a.column(c).equals(b.column(c))]
        assert not differ, f"{name}: {differ}"
    if (updated / "vectors.f32").exists():  # appended to by each update
        assert (whole / "vectors.f32").read_bytes() == (updated / "vectors.f32").read_bytes()
    run_a, run_b = (json.loads((p / "run.json").read_text()) for p in (whole, updated))
    assert run_a["counts"] == run_b["counts"]
    assert run_a["narrative_posts"] == run_b["narrative_posts"]  # what shares are of
    for key in ("pages", "pages_too_few_posts", "pages_with_errors", "pivots", "config"):
        assert run_a["pivots"][key] == run_b["pivots"][key], key


def _all_then_daily(lines: list[str], tmp: Path, options: dict) -> tuple[Path, Path, list]:
    whole = tmp / "whole"
    narratives.score(_write(tmp / "all" / "posts.jsonl", lines), output=whole, **options)
    _operators(whole)
    first, batches = _batches(lines, tmp)
    updated = tmp / "updated"
    narratives.score(first, output=updated, **options)
    _operators(updated)
    entries = [
        narratives.update(updated, batch, embedder=options["embedder"],
                          tagger=options["tagger"], progress=False)
        for batch in batches
    ]  # fmt: skip
    return whole, updated, entries


@pytest.fixture(scope="module")
def options(embedder, tagger):
    return {"embedder": embedder, "tagger": tagger, "progress": False}


def test_the_sample_at_once_and_in_daily_updates_is_the_same(options, tmp_path):
    whole, updated, entries = _all_then_daily(_lines(SAMPLE), tmp_path, options)
    _same_tables(whole, updated)
    assert [e["update"] for e in entries] == list(range(1, 11))
    assert sorted(p.name for p in (updated / "updates").iterdir()) == [
        f"{i:04d}.json" for i in range(1, 11)
    ]
    # the rows of each update follow on from the last
    rows = [e["rows"] for e in entries]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(rows))
    assert rows[-1][1] == pq.read_metadata(whole / "posts.parquet").num_rows
    assert narratives.change_log(updated, since=8) == entries[8:]


def _harness_rows(texts: list[str]) -> list[dict]:
    """About 700 posts in time order shaped like an archive: pages that pivot from one
    language to another, a spam page repeating two texts, one-post pages, a campaign
    posting one text on five pages within minutes (and its translation), posts without a
    page or a time, empty texts, and ids given twice (in one day, and days apart)."""
    en = [t for t in texts if t.isascii()]
    other = [t for t in texts if not t.isascii()]
    start = 1_700_000_000
    rows: list[dict] = []
    for day in range(30):
        base = start + day * 86_400
        for p in range(8):  # pivoting pages: English, then (from day 12 + 2p) not
            pool = other if day >= 12 + 2 * p else en
            for k in range(2):
                rows.append({"post_id": f"pv{p}-{day}-{k}", "page_id": f"pivot{p}",
                             "text": pool[(p * 7 + day * 2 + k) % len(pool)],
                             "created_at": base + 3600 * (9 + p) + 600 * k})  # fmt: skip
        rows.append({"post_id": f"spam-{day}", "page_id": "spam",
                     "text": en[day % 2], "created_at": base + 3600 * 14})  # fmt: skip
        rows.append({"post_id": f"one-{day}", "page_id": f"single{day}",
                     "text": en[(day * 3) % len(en)], "created_at": base + 3600 * 15})  # fmt: skip
        if day % 3 == 0:  # a campaign: one text on five pages within minutes
            for c in range(5):
                rows.append({"post_id": f"cmp-{day}-{c}", "page_id": f"camp{c}",
                             "text": en[(day + 5) % len(en)],
                             "created_at": base + 3600 * 20 + 60 * c})  # fmt: skip
        rows.append({"post_id": f"nopage-{day}", "text": other[day % len(other)],
                     "created_at": base + 3600 * 16})  # fmt: skip
        if day % 5 == 0:
            rows.append({"post_id": f"untimed-{day}", "page_id": "pivot0", "text": en[day]})
            rows.append({"post_id": f"empty-{day}", "page_id": "spam", "text": "  ",
                         "created_at": base + 3600 * 17})  # fmt: skip
        if day in (4, 21):  # an id given again: the same day, and 17 days later
            rows.append({"post_id": "pv0-4-0", "page_id": "pivot0", "text": en[1],
                         "created_at": base + 3600 * 18})  # fmt: skip
    # in time order, as a day's pull comes (an untimed post where its day's posts are)
    day_of = [r.get("created_at", start + int(r["post_id"].split("-")[1]) * 86_400)
              for r in rows]  # fmt: skip
    return [rows[i] for i in np.argsort(day_of, kind="stable")]


def test_a_harness_dump_at_once_and_in_daily_updates_is_the_same(options, tmp_path):
    posts = narratives.read_posts(SAMPLE).posts
    texts = posts.loc[posts["status"] == "ok", "text"].drop_duplicates().tolist()
    rows = _harness_rows(texts)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
    lines.insert(len(lines) // 2, "{not json\n")  # a broken line in the middle
    whole, updated, entries = _all_then_daily(lines, tmp_path, options)
    _same_tables(whole, updated)
    got = read_parquet(updated / "posts.parquet").to_pandas()
    repeated = got[got["error"].fillna("").str.contains("duplicate post_id")]
    assert len(repeated) == 2 and repeated["error"].str.contains("source_row").all()
    pivots = pd.read_parquet(updated / "pivots.parquet")
    assert {f"pivot{p}" for p in range(8)} <= set(pivots["page_id"])
    clusters = pd.read_parquet(updated / "coordination.parquet")
    assert clusters["cluster_id"].nunique() >= 8
    # the updates found the pivots as they came, and said so
    found = [p for e in entries for key in ("new", "moved") for p in e["pivots"][key]]
    assert {p["page_id"] for p in found} >= {f"pivot{p}" for p in range(5, 8)}
    grown = [e["coordination"] for e in entries]
    assert sum(len(c["clusters_new"]) for c in grown) >= 2
    # each update searched only its window (none of its posts is older than the folder's)
    assert all(c["searched"].startswith("posts from") for c in grown), grown


def test_an_update_refuses_other_settings_and_names_them(options, embedder, tmp_path):
    out = tmp_path / "out"
    lines = _lines(SAMPLE)
    narratives.score(_write(tmp_path / "a.jsonl", lines[:300]), output=out, **options)
    new = _write(tmp_path / "b.jsonl", lines[300:])
    with pytest.raises(InputError, match="tz is 'Asia/Shanghai' here and None there"):
        narratives.update(out, new, embedder=embedder, tz="Asia/Shanghai")
    with pytest.raises(InputError, match="min_posts"):
        narratives.update(
            out, new, embedder=embedder, pivot_config=narratives.PivotConfig(min_posts=5)
        )
    with pytest.raises(InputError, match="columns"):
        narratives.update(out, new, {"text": "body"}, embedder=embedder)
    assert not (out / "updates").exists() and not (out / ".update").exists()
    # the same posts again: every one is rejected as a duplicate, nothing else changes
    narratives.update(out, new, embedder=embedder, progress=False)
    entry = narratives.update(out, new, embedder=embedder, progress=False)
    assert entry["counts"]["ok"] == 0 and entry["pages_touched"] == 0
    posts = read_parquet(out / "posts.parquet").to_pandas()
    assert len(posts) == len(lines) + len(lines[300:])
    assert posts["error"].iloc[len(lines) :].str.contains("duplicate post_id").all()


def test_an_update_identifies_languages_as_the_folder_was(options, embedder, tmp_path):
    out = tmp_path / "out"
    lines = _lines(SAMPLE)
    narratives.score(
        _write(tmp_path / "a.jsonl", lines[:300]), output=out, languages="zh,en", **options
    )
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["languages"] == ["en", "zh"]
    assert run["settings"]["langid"].endswith(":en,zh")
    posts = read_parquet(out / "posts.parquet").to_pandas()
    assert set(posts.loc[posts["status"] == "ok", "lang"]) <= {"en", "zh", "und"}
    new = _write(tmp_path / "b.jsonl", lines[300:])
    with pytest.raises(InputError, match=r"languages is \['en', 'ru'\] here and \['en', 'zh'\]"):
        narratives.update(out, new, embedder=embedder, languages="ru,en")
    entry = narratives.update(out, new, embedder=embedder, progress=False)  # the folder's
    assert entry["counts"]["ok"] > 0
    posts = read_parquet(out / "posts.parquet").to_pandas()
    assert set(posts.loc[posts["status"] == "ok", "lang"]) <= {"en", "zh", "und"}
    # a folder whose languages another identifier found (langdetect, before) is refused:
    # its pages would show language pivots at the update
    run = json.loads((out / "run.json").read_text())
    del run["settings"]["langid"]
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(InputError, match=r"langdetect.*score all the posts again"):
        narratives.update(out, new, embedder=embedder)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".update" not in p.parts
    }


def test_a_killed_update_leaves_the_folder_or_is_finished_with_resume(options, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    lines = _lines(SAMPLE)
    first = _write(tmp_path / "a.jsonl", lines[:280])
    new = _write(tmp_path / "b.jsonl", lines[280:])
    reference = tmp_path / "reference"
    narratives.score(first, output=reference, **options)
    _operators(reference)
    narratives.update(reference, new, embedder=options["embedder"], progress=False)

    out = tmp_path / "out"
    narratives.score(first, output=out, **options)
    _operators(out)
    before = _digest(out)

    from narratives.pipeline import scorer

    real_call = scorer.PostScorer.__call__

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    # 1. killed while scoring: the folder is as it was, and readable
    monkeypatch.setattr(scorer.PostScorer, "__call__", killed)
    with pytest.raises(KeyboardInterrupt):
        narratives.update(out, new, embedder=options["embedder"], progress=False)
    monkeypatch.setattr(scorer.PostScorer, "__call__", real_call)
    assert _digest(out) == before
    narratives.load_scored(out)
    with pytest.raises(OutputError, match="--resume"):
        narratives.update(out, new, embedder=options["embedder"], progress=False)
    other = _write(tmp_path / "c.jsonl", lines[280:300])
    with pytest.raises(OutputError, match="differ"):
        narratives.update(out, other, embedder=options["embedder"], resume=True)

    # 2. killed half-way through moving the files in: readers refuse, --resume finishes
    real_replace = os.replace
    moved = []

    def dies_at_the_third_move(src, dst):
        if (out / ".update" / "commit.json").is_file():  # moving in
            moved.append(dst)
            if len(moved) == 3:
                raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_at_the_third_move)
    with pytest.raises(KeyboardInterrupt):
        narratives.update(out, new, embedder=options["embedder"], progress=False, resume=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (out / ".update" / "commit.json").is_file() and len(moved) == 3
    with pytest.raises(InputError, match="--resume"):
        narratives.load_scored(out)
    with pytest.raises(OutputError, match="--resume"):
        narratives.update(out, new, embedder=options["embedder"], progress=False)
    entry = narratives.update(out, new, embedder=options["embedder"], resume=True)
    assert entry["update"] == 1 and not (out / ".update").exists()
    assert (out / "vectors.f32").stat().st_size == (reference / "vectors.f32").stat().st_size
    _same_tables(reference, out)
    with pytest.raises(OutputError, match="nothing to resume"):
        narratives.update(out, new, embedder=options["embedder"], resume=True)


def test_update_and_changes_on_the_command_line(tmp_path, embedder):
    lines = _lines(SAMPLE)
    out = tmp_path / "out"
    first = _write(tmp_path / "a.jsonl", lines[:300])
    result = runner.invoke(app, ["score", str(first), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("posts", "pages"):  # tables as the Ray engine writes them: parts
        (out / name).mkdir()
        os.replace(out / f"{name}.parquet", out / name / "part-00000.parquet")
    run = json.loads((out / "run.json").read_text())
    counted = run.pop("narrative_posts")  # the Ray engine does not count them
    (out / "run.json").write_text(json.dumps(run))
    no_text = _write(tmp_path / "no_text.csv", ["post_id,zzz\n", "x1,hello\n"])
    result = runner.invoke(app, ["update", str(out), str(no_text)])
    assert result.exit_code == 2 and "text" in result.output
    assert not (out / ".update").exists() and not (out / "updates").exists()
    empty = _write(tmp_path / "empty.jsonl", [])
    bad = _write(tmp_path / "bad.jsonl", ["{broken\n", '{"text": ""}\n'])
    new = _write(tmp_path / "b.jsonl", lines[300:])
    for path in (empty, bad, new):
        result = runner.invoke(app, ["update", str(out), str(path), "--report"])
        assert result.exit_code == 0, result.output
    assert "update 3" in result.output and "pages touched" in result.output
    result = runner.invoke(app, ["update", str(out), str(new), "--tz", "Europe/Paris"])
    assert result.exit_code == 2 and "tz is 'Europe/Paris'" in result.output
    result = runner.invoke(app, ["changes", str(out), "--since", "1", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)
    assert [e["update"] for e in entries] == [2, 3]
    assert entries[0]["counts"] == {"read": 2, "ok": 0, "rejected": 2, "warned": 0,
                                    "tagged": 0}  # fmt: skip
    result = runner.invoke(app, ["changes", str(out), "--since", "next week"])
    assert result.exit_code == 2 and "--since" in result.output
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["read"] == len(lines) + 2 and run["updates"] == 3
    parts = sorted(p.name for p in (out / "posts").iterdir())
    assert parts == [f"part-{i:05d}.parquet" for i in range(4)]
    assert (out / "pages.parquet").is_file() and not (out / "pages").exists()
    assert len(narratives.load_scored(out).posts) == len(lines) + 2
    # counted over the folder at the first update, then added to: as over all posts
    scored = narratives.load_scored(out).posts
    ok = scored[scored["status"] == "ok"]
    tally: dict[str, int] = {}
    for tags in ok["narratives"]:
        for entry in tags:
            if "." not in entry["id"]:
                tally[entry["id"]] = tally.get(entry["id"], 0) + 1
    assert run["narrative_posts"] == {"posts": len(ok), "counts": dict(sorted(tally.items()))}
    assert counted["posts"] < len(ok)
    since = narratives.report.build.report_data(out)["since_update"]
    assert since["update"] == 3 and since["counts"]["read"] == len(lines) - 300
    assert "since-update" in (out / "report.html").read_text(encoding="utf-8")


def test_posts_older_than_the_folder_are_added_as_if_they_came_in_that_order(options, tmp_path):
    """A backfill: the earlier half of the harness added to a folder of the later half
    gives what one run over the same records in that order gives (coordination is then
    searched again whole, and says so)."""
    posts = narratives.read_posts(SAMPLE).posts
    texts = posts.loc[posts["status"] == "ok", "text"].drop_duplicates().tolist()
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in _harness_rows(texts)]
    half = len(lines) // 2
    later, earlier = lines[half:], lines[:half]
    whole = tmp_path / "whole"
    narratives.score(_write(tmp_path / "all" / "posts.jsonl", later + earlier), output=whole,
                     **options)  # fmt: skip
    _operators(whole)
    updated = tmp_path / "updated"
    narratives.score(_write(tmp_path / "later" / "posts.jsonl", later), output=updated, **options)
    _operators(updated)
    (updated / "vectors.f32").unlink()  # as the Ray engine writes a folder: read from posts
    entry = narratives.update(updated, _write(tmp_path / "earlier" / "posts.jsonl", earlier),
                              embedder=options["embedder"], tagger=options["tagger"])  # fmt: skip
    assert entry["coordination"]["searched"].startswith("everything searched again")
    _same_tables(whole, updated)
    assert not (updated / "vectors.f32").exists()
