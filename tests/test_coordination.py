"""Coordination: the same message by different pages within minutes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from narratives.cli import app
from narratives.coordination import (
    CoordinationConfig,
    brute_force_pairs,
    coordinated_pairs,
    find_coordination,
    text_keys,
)


def _synthetic(n: int, seed: int, d: int = 32):
    """Posts over a week with planted near copies (a later post close to an earlier one)
    and exact copies; many on the same page, so the page rule matters."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, 7 * 86400e9, n)).astype(np.int64)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    for s in rng.choice(n - 3, n // 10, replace=False):
        later = s + int(rng.integers(1, 4))
        vectors[later] = vectors[s] + 0.2 * rng.standard_normal(d).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pages = rng.integers(0, 12, n)
    keys = rng.integers(0, n // 3, n).astype(np.uint64)  # many shared texts
    return times, pages, keys, vectors


@pytest.mark.parametrize("seed", [0, 1])
def test_the_windowed_search_finds_exactly_the_brute_force_links(seed):
    times, pages, keys, vectors = _synthetic(3000, seed)
    for cfg in (
        CoordinationConfig(window_minutes=30, threshold=0.9, block=128),
        CoordinationConfig(window_minutes=5, threshold=0.8, block=1000),
    ):
        fast = set(zip(*(x.tolist() for x in coordinated_pairs(times, pages, keys, vectors, cfg))))
        slow = set(zip(*(x.tolist() for x in brute_force_pairs(times, pages, keys, vectors, cfg))))
        assert fast == slow and len(fast) > 20
        exact = set(zip(*(x.tolist() for x in coordinated_pairs(times, pages, keys, None, cfg))))
        assert exact and exact <= fast  # identical texts need no embeddings
        for i, j in list(fast)[:200]:
            assert pages[i] != pages[j] and 0 <= times[j] - times[i] <= cfg.window_minutes * 60e9
    with pytest.raises(ValueError, match="sorted by time"):
        coordinated_pairs(times[::-1].copy(), pages, keys, vectors)


def test_text_keys_ignore_spacing_and_unicode_forms():
    keys = text_keys(["Café  au lait ", "Cafe\u0301 au lait", "another"])
    assert keys[0] == keys[1] != keys[2]


def test_clusters_and_page_edges_from_posts():
    at = pd.Timestamp("2022-01-01T08:00Z")
    minutes = [0, 3, 7, 60, 62, 300, 301, 302]
    posts = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(8)],
            "page_id": ["a", "b", "c", "a", "b", "a", "a", "c"],
            "created_at": [at + pd.Timedelta(minutes=m) for m in minutes],
            "status": ["ok"] * 7 + ["rejected"],
            "text": ["Same message"] * 3 + ["Second one", "Second  one "] + ["x", "x", "x"],
        }
    )
    clusters, edges = find_coordination(
        posts, None, CoordinationConfig(window_minutes=10, min_weight=1)
    )
    # a, b, c within 7 minutes; a and b again at 60/62; the page-a pair at 300/301 is
    # one page, and the page-c copy at 302 was rejected
    assert clusters["cluster_id"].tolist() == [0, 0, 0, 1, 1]
    assert clusters["post_id"].tolist() == ["p0", "p1", "p2", "p3", "p4"]
    assert clusters["exact_copy"].all() and clusters["cluster_pages"].tolist() == [3, 3, 3, 2, 2]
    got = {(r.page_a, r.page_b): r.weight for r in edges.itertuples()}
    assert got == {("a", "b"): 2, ("a", "c"): 1, ("b", "c"): 1}
    _, repeated = find_coordination(posts, None, CoordinationConfig(window_minutes=10))
    assert repeated[["page_a", "page_b", "weight"]].values.tolist() == [["a", "b", 2]]


def test_cli_on_the_sample(sample_result, tmp_path):
    out = sample_result.save(tmp_path / "scored")
    graph = tmp_path / "pages.graphml"
    result = CliRunner().invoke(app, ["coordination", str(out), "--graphml", str(graph)])
    assert result.exit_code == 0, result.output
    assert (out / "coordination.parquet").is_file() and graph.read_text().startswith("<?xml")
    bad = CliRunner().invoke(app, ["coordination", str(out), "--window-minutes", "0"])
    assert bad.exit_code == 2


def test_evaluation_finds_the_groups_among_pages_on_the_same_subjects(embedder):
    """A small dump of the evaluation (the README's is bigger): two groups posting copies,
    edits and translations among independent pages posting real state-media news."""
    from conftest import SHARED, shared_file

    from narratives.coordination_eval import build_dump, score_dump

    shared_file("cn-state-media-facebook-2022", "fb_posts_cn_state_media_2022.csv")
    posts, truth = build_dump(SHARED, independent=40, posts_per_page=10)
    vectors = embedder.encode(posts["text"].tolist())
    got = score_dump(posts, vectors, truth, CoordinationConfig())
    assert got["precision"] >= 0.9 and got["recall"] >= 0.9, got
    assert got["postings_clustered"]["copy"] >= 0.95
    assert got["postings_clustered"]["translation"] >= 0.4  # 0.46-0.73 in the README runs
    exact = score_dump(posts, None, truth, CoordinationConfig())
    assert exact["postings_clustered"]["translation"] == 0.0  # needs the embeddings
