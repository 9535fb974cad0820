"""The Ray engine gives the local engine's output (a local Ray instance with 2 CPUs)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
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


def test_ray_engine_gives_the_local_output(ray_local, sample_result, embedder, tagger):
    from narratives import score

    ours = score(
        SAMPLE,
        embedder=embedder,
        tagger=tagger,
        engine="ray",
        chunk_size=64,
        cache=None,  # the actors embed every text themselves
        progress=False,
    )
    local = sample_result
    assert ours.run["timings"]["ray_s"] > 0
    columns = ["post_id", "page_id", "status", "error", "warning", "lang", "topic"]
    columns += ["narratives", "top_narrative", "top_score", "source_row"]
    pd.testing.assert_frame_equal(ours.posts[columns], local.posts[columns])
    ok = (local.posts["status"] == "ok").to_numpy()
    assert np.abs(ours.embeddings[ok] - local.embeddings[ok]).max() <= 1e-5
    assert np.isnan(ours.embeddings[~ok]).all()
    pd.testing.assert_frame_equal(ours.pivots, local.pivots)
    pd.testing.assert_frame_equal(ours.pages, local.pages)


def test_ray_engine_without_ray_names_the_install_line(embedder, monkeypatch):
    from narratives import score

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'narratives\[ray\]'"):
        score(SAMPLE, embedder=embedder, engine="ray", progress=False)
    with pytest.raises(InputError, match="engine must be one of"):
        score(SAMPLE, embedder=embedder, engine="spark", progress=False)


def test_a_killed_ray_worker_loses_and_doubles_no_row(ray_local, sample_result, tmp_path):
    """An actor dies (os._exit) in the middle of its first batch: Ray restarts it and runs
    the batch again; every post comes back once, with the local engine's vectors."""
    from ray import cloudpickle

    from narratives.pipeline.engines import RayScorer, ray_results

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
    posts = sample_result.posts
    rows = np.flatnonzero((posts["status"] == "ok").to_numpy())
    spec = {
        "model": "default",
        "backend": "auto",
        "batch_size": 32,
        "device": None,
        "tagger": None,
        "taxonomy": None,
        "cache": None,
        "die_once": str(marker),
    }
    got: list[int] = []
    vectors = np.full_like(sample_result.embeddings, np.nan)
    for batch_rows, out in ray_results(
        rows,
        posts["text"].to_numpy()[rows].tolist(),
        spec,
        batch_size=64,
        concurrency=2,
        address=None,
        scorer_class=DiesOnce,
    ):
        got.extend(batch_rows.tolist())
        vectors[batch_rows] = out["embedding"]
    assert not marker.exists(), "no actor died: the test tested nothing"
    assert sorted(got) == rows.tolist()
    assert np.abs(vectors[rows] - sample_result.embeddings[rows]).max() <= 1e-5


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
