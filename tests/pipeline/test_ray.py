"""The Ray engine gives the local engine's output (a local Ray instance with 2 CPUs)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from narratives.errors import InputError
from narratives.io.read import read_posts

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is an extra: pip install 'narratives[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _read_back(folder):
    """The posts (vectors apart), pivots and pages of a scored folder, as Arrow reads them
    (each one file or a folder of parts), with the posts' vectors."""
    from narratives.scored import ScoredFolder, read_parquet

    scored = ScoredFolder(folder)
    scored.require()
    posts = read_parquet(folder / "posts.parquet").drop_columns(["embedding", "topic_profile"])
    tables = {name: read_parquet(folder / f"{name}.parquet") for name in ("pivots", "pages")}
    return posts, tables, scored.vectors("embedding"), scored.run()


def _assert_same_output(ray_dir, local_dir, *, exact_vectors):
    posts, tables, vectors, run = _read_back(ray_dir)
    want_posts, want_tables, want_vectors, want_run = _read_back(local_dir)
    scored_columns = ["lang_score", "topic_score", "top_score"]  # the model's arithmetic
    if exact_vectors:
        assert posts.equals(want_posts)
    else:
        same = [c for c in posts.column_names if c not in scored_columns]
        assert posts.select(same).equals(want_posts.select(same))
    for name, table in tables.items():
        assert table.equals(want_tables[name]), name
    ok = ~np.isnan(want_vectors[:, 0])
    assert np.array_equal(np.isnan(vectors[:, 0]), ~ok)
    tolerance = 0.0 if exact_vectors else 1e-5
    assert np.abs(vectors[ok] - want_vectors[ok]).max(initial=0.0) <= tolerance
    for key in ("counts", "input", "page_errors", "taxonomy", "topics"):
        assert run[key] == want_run[key], key
    assert {**run["pivots"], "seconds": 0} == {**want_run["pivots"], "seconds": 0}


def test_ray_engine_gives_the_local_output(ray_local, embedder, tagger, tmp_path):
    from narratives import score

    options = {"embedder": embedder, "tagger": tagger, "chunk_size": 64, "progress": False}
    score(SAMPLE, output=tmp_path / "local", **options)
    ours = score(
        SAMPLE,
        engine="ray",
        output=tmp_path / "ray",
        cache=None,  # the actors embed every text themselves
        **options,
    )
    assert ours.run["timings"]["ray_s"] > 0
    # the actors wrote the posts a batch a part (379 posts, batches of 64); nothing is
    # left of the run's work
    parts = [f"part-{i:05d}.parquet" for i in range(6)]
    assert sorted(p.name for p in (tmp_path / "ray" / "posts").iterdir()) == parts
    assert not (tmp_path / "ray" / ".partial").exists()
    _assert_same_output(tmp_path / "ray", tmp_path / "local", exact_vectors=False)
    # in memory (a temporary folder read back), the same tables
    memory = score(SAMPLE, engine="ray", cache=None, **options)
    pd.testing.assert_frame_equal(memory.posts, ours.posts)
    pd.testing.assert_frame_equal(memory.pivots, ours.pivots)
    # later steps read and rewrite the parts: pivots again, then coordination
    from narratives.operators.coordination import write_coordination
    from narratives.pipeline.pages import redetect_pivots
    from narratives.scored import load_scored

    redetect_pivots(tmp_path / "ray")
    pd.testing.assert_frame_equal(load_scored(tmp_path / "ray").pivots, ours.pivots)
    assert (tmp_path / "ray" / "pages.parquet").is_file()
    assert not (tmp_path / "ray" / "pages").exists()
    write_coordination(tmp_path / "ray", exact_only=True)
    write_coordination(tmp_path / "local", exact_only=True)
    for name in ("coordination.parquet", "pages.parquet"):
        want = pq.read_table(tmp_path / "local" / name)
        assert pq.read_table(tmp_path / "ray" / name).equals(want), name


def _big_dump(path, n, seed=0):
    """``n`` posts of the sample's texts by n/40 pages, some of one post, a page that
    pivots, ids repeated far apart, rejected rows and posts without a page or a time."""
    import json

    rng = np.random.default_rng(seed)
    texts = read_posts(SAMPLE).posts["text"].dropna().tolist()
    pages = max(1, n // 40)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            page = int(rng.integers(pages)) if i % 97 else None
            record = {
                "post_id": f"p{i}" if i % 5003 else "p7",  # p7 again, far apart
                "page_id": None if page is None else f"page{page}",
                "text": texts[int(rng.integers(len(texts)))] if i % 1009 else "",
                "created_at": None
                if i % 2003 == 0
                else f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            if i % 50021 == 0:
                f.write("{broken\n")
    return path


@pytest.mark.slow
def test_ray_engine_gives_the_local_output_on_200k_posts(ray_local, embedder, tagger, tmp_path):
    from narratives import score_into

    path = _big_dump(tmp_path / "big.jsonl", 200_000)
    cache = tmp_path / "cache.sqlite"  # the local run fills it; the actors read it
    options = {"embedder": embedder, "tagger": tagger, "progress": False, "cache": cache}
    local = score_into(path, tmp_path / "local", **options)
    assert local["counts"]["read"] == 200_004 and local["counts"]["rejected"] > 200
    ray_run = score_into(path, tmp_path / "ray", engine="ray", **options)
    assert ray_run["counts"] == local["counts"]
    assert len(list((tmp_path / "ray" / "posts").glob("part-*.parquet"))) > 1
    _assert_same_output(tmp_path / "ray", tmp_path / "local", exact_vectors=True)


def test_ray_engine_without_ray_names_the_install_line(embedder, monkeypatch):
    from narratives import score

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'narratives\[ray\]'"):
        score(SAMPLE, embedder=embedder, engine="ray", progress=False)
    with pytest.raises(InputError, match="engine must be one of"):
        score(SAMPLE, embedder=embedder, engine="spark", progress=False)


def test_a_killed_ray_worker_loses_and_doubles_no_row(ray_local, embedder, tmp_path):
    """An actor dies (os._exit) in the middle of its first batch: Ray restarts it and runs
    the batch again; every post is written once, with the local engine's vectors."""
    from ray import cloudpickle

    from narratives import score
    from narratives.embedding.text_cache import open_cache
    from narratives.pipeline.engines import RayScorer, ray_score
    from narratives.pipeline.scorer import actor_spec
    from narratives.pivots.topics import TOPICS

    class DiesOnce(RayScorer):
        def __init__(self, spec):
            super().__init__(spec)
            self.marker = spec["die_once"]

        def __call__(self, batch):
            if os.path.exists(self.marker):
                os.remove(self.marker)
                os._exit(1)
            return super().__call__(batch)

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "die-once"
    marker.write_text("")
    spec = actor_spec(embedder, None, open_cache(None, embedder), tmp_path)
    spec.update(die_once=str(marker), dim=embedder.dim, profile_dim=len(TOPICS))
    done = ray_score(
        SAMPLE,
        None,
        {"encoding": None, "tz": None, "delimiter": None, "split": None},
        spec,
        tmp_path / "ray",
        chunk_size=64,
        concurrency=2,
        address=None,
        pivot_config=None,
        scorer_class=DiesOnce,
    )
    assert not marker.exists(), "no actor died: the test tested nothing"
    local = score(SAMPLE, embedder=embedder, tagger=None, output=tmp_path / "local", progress=False)
    assert done["counts"]["ok"] == local.run["counts"]["ok"]
    from narratives.scored import read_parquet

    posts = read_parquet(tmp_path / "ray" / "posts.parquet").to_pandas()
    assert posts["source_row"].tolist() == list(range(len(local.posts)))
    ok = (local.posts["status"] == "ok").to_numpy()
    vectors = np.stack(posts["embedding"][ok].to_numpy())
    assert np.abs(vectors - local.embeddings[ok]).max() <= 1e-5


def _tricky_inputs(folder) -> list:
    """Files whose reading has traps: records split across pieces, duplicate ids far
    apart, malformed and blank lines, separators JSON allows raw, BOMs, legacy encodings,
    multi-line CSV fields, row groups."""
    import gzip
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = SAMPLE.read_text("utf-8")
    lines = sample.splitlines()
    extra = [
        json.dumps({"post_id": "dup", "page_id": "p", "text": "first", "created_at": "2022-01-05"}),
        "",
        "   ",
        '{"post_id": "x", "text": "unterminated',
        json.dumps({"post_id": "sep", "text": "a\u2028b\u2029c\x85d", "created_at": "2022-01-01"}),
        "[1, 2]",
        json.dumps({"post_id": "dup", "text": "again", "created_at": "2022/1/21 10:31"}),
    ]
    mixed = "\r\n".join(lines[:50] + extra[:3] + lines[50:200] + extra[3:] + lines[200:]) + "\n"
    files = []
    (folder / "mixed.jsonl").write_text(mixed, "utf-8")
    files.append((folder / "mixed.jsonl", None))
    (folder / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + mixed.encode("utf-8"))
    files.append((folder / "bom.jsonl", None))
    (folder / "gb.jsonl").write_bytes(sample.encode("gb18030", errors="replace"))
    files.append((folder / "gb.jsonl", None))
    with gzip.open(folder / "p.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(mixed)
    files.append((folder / "p.jsonl.gz", None))
    csv_text = (
        "ID,BODY,TIME,PAGE\n"
        '1,"two\nlines, quoted",2022-01-01,a\n'
        "2,too,many,fields,here\n"
        "1,dup of one,2022-01-02,a\n"
        '3,"中文 ""quoted""",2022-01-03,b\n'
        "\n"
        "4,,2022-01-04,b\n"
    )
    (folder / "p.csv").write_bytes(csv_text.encode("gb18030"))
    columns = {"post_id": "ID", "text": "BODY", "created_at": "TIME", "page_id": "PAGE"}
    files.append((folder / "p.csv", columns))
    rows = [json.loads(x) for x in lines if x.startswith("{") and x.endswith("}")]
    table = pa.Table.from_pylist([{k: str(v) for k, v in r.items()} for r in rows])
    pq.write_table(table, folder / "p.parquet", row_group_size=37)
    files.append((folder / "p.parquet", None))
    return files


def test_ray_data_reads_every_format_as_read_posts_does(ray_local, tmp_path):
    from narratives.io.ray import ray_read_posts

    for path, columns in _tricky_inputs(tmp_path):
        local = read_posts(path, columns, tz="Asia/Shanghai")
        # pieces of 2 kB: the sample's 60 kB become about 30 Ray tasks
        ours = ray_read_posts(path, columns, tz="Asia/Shanghai", piece_bytes=2000)
        pd.testing.assert_frame_equal(ours.posts, local.posts, obj=path.name)
        assert ours.info == local.info, path.name
        assert (local.posts["status"] == "rejected").any(), path.name
    # the duplicate ~150 lines after its first: found across pieces, the reason first
    posts = read_posts(tmp_path / "mixed.jsonl").posts
    again = posts[posts["post_id"] == "dup"]
    assert list(again["status"]) == ["ok", "rejected"]
    assert again["error"].iloc[1].startswith("duplicate post_id 'dup'")


def test_ray_data_reading_refuses_what_read_posts_refuses(ray_local, tmp_path):
    from narratives.io.ray import ray_read_posts

    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "1", "body_text": "hi"}\n', "utf-8")
    with pytest.raises(InputError, match=r"no text column found.*available: id, body_text"):
        ray_read_posts(path, piece_bytes=8)
    with pytest.raises(InputError, match="unknown encoding"):
        ray_read_posts(path, encoding="klingon")
    # an empty file has no column to check: no rows, as read_posts gives
    (tmp_path / "empty.jsonl").write_text("", "utf-8")
    empty = ray_read_posts(tmp_path / "empty.jsonl")
    expected = read_posts(tmp_path / "empty.jsonl")
    assert len(empty.posts) == 0
    pd.testing.assert_frame_equal(empty.posts, expected.posts)
