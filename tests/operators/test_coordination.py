"""Coordination: the same message by different pages within minutes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from narratives.cli import app
from narratives.operators.coordination import (
    CoordinationConfig,
    brute_force_pairs,
    coordinated_pairs,
    find_coordination,
    neighbour_cosines,
    network_groups,
    page_edges,
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
    langs = np.random.default_rng(seed).integers(0, 3, len(times))  # the margin test runs
    for cfg in (
        CoordinationConfig(window_minutes=30, threshold=0.9, block=128),
        CoordinationConfig(window_minutes=5, threshold=0.8, block=1000, margin=1.5),
    ):
        found = coordinated_pairs(times, pages, keys, vectors, cfg, langs)
        fast = set(zip(*(x.tolist() for x in found)))
        slow = set(
            zip(*(x.tolist() for x in brute_force_pairs(times, pages, keys, vectors, cfg, langs)))
        )
        assert fast == slow and len(fast) > 20
        assert (langs[found[0]] != langs[found[1]]).sum() > 10
        exact = set(zip(*(x.tolist() for x in coordinated_pairs(times, pages, keys, None, cfg))))
        assert exact and exact <= fast  # identical texts need no embeddings
        for i, j in list(fast)[:200]:
            assert pages[i] != pages[j] and 0 <= times[j] - times[i] <= cfg.window_minutes * 60e9
    with pytest.raises(ValueError, match="sorted by time"):
        coordinated_pairs(times[::-1].copy(), pages, keys, vectors)


def test_neighbour_cosines_leave_out_the_window_and_need_enough_posts():
    minute = 60_000_000_000
    times = np.array([0, 100, 200, 299, 300, 400]) * minute
    langs = np.array([1, 1, 1, 1, 0, 1])
    vectors = np.eye(6, dtype=np.float32)
    vectors[[0, 1, 2, 3, 5], 4] = [0.1, 0.3, 0.5, 0.99, 0.9]  # 299 is the query's copy
    cfg = CoordinationConfig(neighbours=2)
    query, target = np.array([4, 4]), np.array([1, 0])
    got = neighbour_cosines(vectors, times, langs, query, target, 10 * minute, cfg)
    # language 1 more than 10 minutes before minute 300: cosines 0.1, 0.3, 0.5 -> top 2;
    # not the copy within the window, nor the post after it
    assert got[0] == pytest.approx(0.4)
    # language 0 has no post before: the latest posts of any language stand in
    assert got[1] == pytest.approx(0.4)
    wide = neighbour_cosines(vectors, times, langs, query, target, 250 * minute, cfg)
    assert np.isnan(wide).all()  # only the post at minute 0 lies before the window: too few
    few = neighbour_cosines(vectors, times, langs, query, target, 10 * minute,
                            CoordinationConfig(neighbours=2, reference=2))  # fmt: skip
    assert few[0] == pytest.approx(0.4)  # the 2 latest before the window: 0.3 and 0.5
    with pytest.raises(ValueError, match="neighbours"):
        CoordinationConfig(neighbours=0)


def test_a_single_shared_cluster_links_pages_only_inside_a_group():
    at = pd.Timestamp("2022-01-01T08:00Z")
    shared = {0: "ab", 1: "ab", 2: "bc", 3: "bc", 4: "ac", 5: "ad", 6: "ef"}
    clusters = pd.DataFrame(
        [
            {"cluster_id": c, "page_id": p, "created_at": at + pd.Timedelta(hours=c)}
            for c, pages in shared.items()
            for p in pages
        ]
    )
    edges = page_edges(clusters, min_weight=2)
    got = {(r.page_a, r.page_b): (r.weight, r.corroborated) for r in edges.itertuples()}
    # a-c posted together once, but both co-post again and again with b; a-d and e-f once
    assert got == {("a", "b"): (2, False), ("b", "c"): (2, False), ("a", "c"): (1, True)}
    # the groups timing reads: largest first
    two = pd.DataFrame({"page_a": ["a", "b", "x"], "page_b": ["b", "c", "y"]})
    assert network_groups(two) == {
        **dict.fromkeys("abc", "coordination-1"),
        "x": "coordination-2",
        "y": "coordination-2",
    }


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
    # re-running pivot detection keeps the pages' coordination clusters (a window of
    # 70 days finds some on the sample's pages)
    loose = ["coordination", str(out), "--window-minutes", "100000", "--threshold", "0.9"]
    assert CliRunner().invoke(app, loose).exit_code == 0
    before = pd.read_parquet(out / "pages.parquet")
    assert before["coordination_clusters"].map(len).sum() > 0
    rerun = CliRunner().invoke(app, ["pivots", str(out), "--min-posts", "36"])
    assert rerun.exit_code == 0, rerun.output
    after = pd.read_parquet(out / "pages.parquet")
    assert after["pivot_status"].str.startswith("too few posts").any()
    assert after["coordination_clusters"].map(list).tolist() == (
        before["coordination_clusters"].map(list).tolist()
    )


def test_evaluation_finds_the_groups_among_pages_on_the_same_subjects(embedder):
    """A small dump of the evaluation (the README's is bigger): two groups posting copies,
    edits and translations among independent pages posting real state-media news."""
    from conftest import SHARED, shared_file

    from narratives.evaluation.coordination import build_dump, score_dump

    shared_file("cn-state-media-facebook-2022", "fb_posts_cn_state_media_2022.csv")
    posts, truth = build_dump(SHARED, independent=40, posts_per_page=10)
    vectors = embedder.encode(posts["text"].tolist())
    got = score_dump(posts, vectors, truth, CoordinationConfig())
    assert got["precision"] >= 0.9 and got["recall"] >= 0.9, got
    assert got["postings_clustered"]["copy"] >= 0.95
    # translations: the margin test finds them where one cosine cut-off cannot
    assert got["postings_clustered"]["translation"] >= 0.85, got
    plain = score_dump(posts, vectors, truth, CoordinationConfig(margin=0))
    assert plain["postings_clustered"]["translation"] <= 0.8, plain
    exact = score_dump(posts, None, truth, CoordinationConfig())
    assert exact["postings_clustered"]["translation"] == 0.0  # needs the embeddings


def test_a_burst_is_searched_in_bounded_blocks_with_the_brute_force_links(monkeypatch):
    """The issue's crash: 40,000 posts of 4,000 pages in ten minutes made one window's
    candidate pairs (99.7 million) be gathered with their vectors (143 GB). Here 1,200
    posts in one minute, nearly all alike and in three languages: every block of pairs
    the search holds is bounded by block x columns, the links are the brute force's,
    and the clusters the same as from all pairs at once."""
    from narratives.operators import coordination

    rng = np.random.default_rng(5)
    n = 1200
    times = np.sort(rng.integers(0, 60_000_000_000, n)).astype(np.int64)
    common = rng.standard_normal(32)
    vectors = (common + 0.15 * rng.standard_normal((n, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pages = rng.integers(0, 120, n)
    keys = rng.integers(0, 50, n).astype(np.uint64)
    langs = rng.integers(0, 3, n)
    cfg = CoordinationConfig(block=100)
    monkeypatch.setattr(coordination, "_COLUMNS", 300)
    blocks = list(coordination.pair_blocks(times, pages, keys, vectors, cfg, langs))
    assert len(blocks) > 20 and max(len(i) for i, _ in blocks) <= 100 * 300
    found = set(zip(*(np.concatenate(x).tolist() for x in zip(*blocks))))
    brute = set(zip(*(x.tolist() for x in brute_force_pairs(times, pages, keys, vectors, cfg,
                                                            langs))))  # fmt: skip
    assert found == brute and len(found) > 100_000  # most pairs are links
    labels = coordination.clusters_of(n, iter(blocks))
    i, j = (np.array(x) for x in zip(*sorted(found)))
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, reference = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)))
    linked = np.isin(np.arange(n), np.r_[i, j])
    assert np.array_equal(labels >= 0, linked)
    # the same partition: each union-find group is one connected component
    assert (
        len({(a, b) for a, b in zip(labels[linked], reference[linked])})
        == len(set(labels[linked]))
        == len(set(reference[linked]))
    )


def test_page_edges_in_chunks_equal_the_whole(monkeypatch):
    """Pairs of pages counted a few clusters at a time add up to the same edges."""
    from narratives.operators import coordination

    rng = np.random.default_rng(1)
    at = pd.Timestamp("2022-01-01T08:00Z")
    rows = []
    for cluster in range(60):
        for page in rng.choice(40, int(rng.integers(1, 12)), replace=False):
            rows.append((cluster, f"page{page:02d}", at + pd.Timedelta(minutes=cluster)))
    clusters = pd.DataFrame(rows, columns=["cluster_id", "page_id", "created_at"])
    whole = page_edges(clusters, 3)
    monkeypatch.setattr(coordination, "_PAIR_CHUNK", 7)
    chunked = page_edges(clusters, 3)
    pd.testing.assert_frame_equal(whole, chunked)
    assert len(whole) > 50 and whole["corroborated"].any() and (~whole["corroborated"]).any()
    # by hand: the clusters two pages share
    sets = clusters.groupby("cluster_id")["page_id"].agg(set)
    for row in whole.head(20).itertuples():
        shared = [c for c, s in sets.items() if {row.page_a, row.page_b} <= s]
        assert row.weight == len(shared)
        assert row.first_at == at + pd.Timedelta(minutes=min(shared))
        assert row.last_at == at + pd.Timedelta(minutes=max(shared))
