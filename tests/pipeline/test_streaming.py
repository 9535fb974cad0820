"""The run into a folder, a chunk at a time: the same files as the tables made in memory,
however the posts are chunked and however the pages are parted on disk."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

import narratives
from narratives.pipeline import spill
from narratives.pipeline.score import score_into
from narratives.scored import posts_table

TABLES = ("posts", "pivots", "pages")


def _ugly_dump(path):
    """Pages of one post, a page that repeats one text then pivots, posts without a page
    or a time, ids repeated across chunks, a broken line."""
    rows = []
    for i in range(60):  # one page, spam then politics
        text = "Follow back for follow back! 🔥" if i < 30 else f"Xinjiang is stable and happy {i}"
        rows.append({"post_id": f"r{i}", "page_id": "repeater", "text": text,
                     "created_at": f"2023-01-{1 + i // 3:02d}T0{i % 3}:00:00Z"})  # fmt: skip
    for i in range(25):
        rows.append({"post_id": f"one{i}", "page_id": f"lonely{i}", "text": f"hello {i}",
                     "created_at": "2023-02-01T10:00:00Z"})  # fmt: skip
    rows.append({"post_id": "r3", "page_id": "repeater", "text": "again", "created_at": "2023-03"})
    rows.append({"post_id": "nopage", "text": "no page here", "created_at": "2023-03-01"})
    rows.append({"post_id": "notime", "page_id": "lonely1", "text": "no time here"})
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(40, "{broken")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("source", ["sample", "ugly"])
def test_folder_run_writes_the_tables_made_in_memory(
    embedder, tagger, tmp_path, monkeypatch, source
):
    path = SAMPLE if source == "sample" else _ugly_dump(tmp_path / "ugly.jsonl")
    options = {"embedder": embedder, "tagger": tagger, "progress": False, "chunk_size": 37}
    in_memory = narratives.score(path, **options)
    expected = in_memory.save(tmp_path / "memory")

    monkeypatch.setattr(spill, "PART_POSTS", 40)  # several parts, pages split among them
    run = score_into(path, tmp_path / "folder", **options)
    assert run["counts"] == json.loads((expected / "run.json").read_text())["counts"]
    assert not (tmp_path / "folder" / ".partial").exists()
    for name in TABLES:
        want = pq.read_table(expected / f"{name}.parquet")
        got = pq.read_table(tmp_path / "folder" / f"{name}.parquet")
        assert got.equals(want), name
    # posts.parquet is the same file, byte for byte
    posts = "posts.parquet"
    assert (tmp_path / "folder" / posts).read_bytes() == (expected / posts).read_bytes()
    if source == "ugly":
        assert (
            run["counts"]["pivots"] >= 1 and run["counts"]["rejected"] == 3
        )  # broken, repeated id, no time


def test_pages_are_parted_whole(tmp_path):
    import numpy as np
    import pandas as pd

    posts = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(300)],
            "page_id": [f"page{i % 37}" if i % 50 else None for i in range(300)],
            "created_at": pd.Timestamp("2023-01-01", tz="UTC"),
            "source_row": np.arange(300),
            "status": ["ok" if i % 7 else "rejected" for i in range(300)],
            "lang": "en",
            "narratives": [[] for _ in range(300)],
        }
    )
    parted = spill.PageSpill(tmp_path / "spill", 5, 3)
    for start in range(0, 300, 64):
        part = posts.iloc[start : start + 64].assign(
            text="x", error=None, warning=None, lang_score=1.0, topic="news", topic_score=1.0,
            top_narrative=None, top_score=None,
        )  # fmt: skip
        table = posts_table(part, np.zeros((len(part), 4)), np.ones((len(part), 3)))
        parted.add(table, start)
    seen: dict[str, int] = {}
    total = 0
    for i, (frame, rows, profiles) in enumerate(parted.parts()):
        assert list(frame["post_id"]) == [f"p{r}" for r in rows]  # rows in run order
        assert profiles.shape == (len(frame), 3)
        for page in frame["page_id"].unique():
            assert seen.setdefault(page, i) == i  # a page is in one part only
        total += len(frame)
    usable = (posts["status"] == "ok") & posts["page_id"].notna()
    assert total == usable.sum() and len(seen) > 1
    parted.close()
    assert not (tmp_path / "spill").exists()


def _as_parts(path, bounds):
    """Rewrite the table file ``path`` as the parts folder the Ray engine writes, cut at
    row ``bounds``, and remove the file."""
    table = pq.read_table(path)
    folder = path.with_name(path.name.removesuffix(".parquet"))
    folder.mkdir()
    edges = [0, *bounds, table.num_rows]
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        pq.write_table(table.slice(a, b - a), folder / f"part-{i:05d}.parquet", row_group_size=50)
    path.unlink()


def test_every_reader_takes_a_table_as_parts(sample_result, tmp_path):
    from narratives.scored import ScoredFolder, load_scored, save_tables

    whole = sample_result.save(tmp_path / "whole")
    parts = sample_result.save(tmp_path / "parts")
    _as_parts(parts / "posts.parquet", [100, 101, 250])
    _as_parts(parts / "pages.parquet", [3])
    a, b = load_scored(whole), load_scored(parts)
    for name in ("posts", "pivots", "pages"):
        pd.testing.assert_frame_equal(getattr(b, name), getattr(a, name), obj=name)
    assert np.array_equal(a.embeddings, b.embeddings, equal_nan=True)
    folder = ScoredFolder(parts)
    rows = np.array([0, 99, 100, 101, 102, 300, 378])
    assert np.array_equal(
        folder.vectors("embedding", rows), ScoredFolder(whole).vectors("embedding", rows),
        equal_nan=True,
    )  # fmt: skip
    assert folder.rejected_errors().tolist() == ScoredFolder(whole).rejected_errors().tolist()
    # a later step writes pages.parquet as one file: the parts go, its added columns stay
    pages = folder.arrow_table("pages.parquet")
    column = pa.array([[1]] * pages.num_rows, type=pa.list_(pa.int64()))
    from narratives.scored import write_table

    write_table(pages.append_column("coordination_clusters", column), parts / "pages.parquet")
    assert not (parts / "pages").exists()
    save_tables(parts, b.pivots, b.pages, b.run)  # narratives pivots again
    assert "coordination_clusters" in pq.read_table(parts / "pages.parquet").column_names
    # a folder that holds nothing of posts names the fix
    shutil.rmtree(parts / "posts")
    with pytest.raises(narratives.InputError, match=r"holds no posts\.parquet"):
        ScoredFolder(parts)
