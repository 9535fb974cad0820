"""Checks on the real external data in ../shared (slow: they embed thousands of posts).
They skip with a reason when the data is absent."""

from __future__ import annotations

import pytest
from conftest import SHARED, shared_file

pytestmark = pytest.mark.slow


def test_pivot_harness_meets_targets(embedder):
    """Spliced real text with known change points: the detector, with its defaults."""
    from narratives.evaluation.pivots import build_pages, embed_pools, load_pools, run_ours

    shared_file("semeval2025-task10", "train_subtask2.jsonl")
    pools, timelines = load_pools(SHARED)
    data = embed_pools(pools, embedder)
    pages = build_pages(pools, timelines, seed=0)
    assert len(pages) >= 200
    _, metrics = run_ours(pages, data)
    assert metrics["f1"] >= 0.95, metrics
    assert metrics["kind_accuracy"] >= 0.90, metrics
    assert metrics["false_per_stable"] <= 0.05, metrics
    assert metrics["false_per_burst"] <= 0.05, metrics


def test_state_media_pages_have_no_topic_pivot(embedder):
    """Nine news pages that cover many subjects: no pivot, every row accounted for."""
    from narratives import score

    path = shared_file("cn-state-media-facebook-2022", "fb_posts_cn_state_media_2022.csv")
    columns = {"post_id": "ID", "page_id": "AUTHOR_ID", "text": "CONTENT", "created_at": "TIME"}
    result = score(path, columns, embedder=embedder, tz="Asia/Shanghai", progress=False)
    assert len(result.posts) == 15931
    assert (result.posts["status"] == "ok").sum() == 6336
    assert len(result.pages) == 9
    assert result.pivots.empty, result.pivots[["page_id", "position", "kind"]]
