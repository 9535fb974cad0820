"""The pivot evaluation harness: its metrics and its page builder (no model needed)."""

from __future__ import annotations

import pytest

from narratives.evaluation.pivots import Page, build_pages, score_detections


def test_scores_follow_ruptures_margin_definition():
    pages = [
        Page("a", "topic", [("x", i) for i in range(100)], [50], ["topic"]),
        Page("b", "language", [("x", i) for i in range(20)], [6], ["language"]),
        Page("s", "stable", [("x", i) for i in range(30)]),
        Page("u", "burst", [("x", i) for i in range(30)]),
    ]
    found = {"a": [52, 80], "b": [9], "s": [10], "u": []}
    m = score_detections(pages, found, margin=3)
    # a: 52 is within 3 of 50 (|diff| < 3), 80 is false; b: 9 is 3 away, not within margin
    assert m["precision"] == pytest.approx(1 / 4)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 * 0.25 * 0.5 / 0.75)
    assert m["false_per_stable"] == 1.0 and m["false_per_burst"] == 0.0
    assert m["recall_5_8"] == 0.0  # page b has 6 posts before its pivot, and it was missed


def test_pages_are_deterministic_and_well_formed():
    pools = {
        name: [f"{name} {i}" for i in range(300)]
        for name in [
            "troll_en",
            "statemedia_en",
            "statemedia_zh",
            "cctv_en",
            "cctv_zh",
            "cns_en",
            "cns_zh",
            "claims_en",
            "semeval_EN_URW",
            "semeval_EN_CC",
            "semeval_RU_URW",
            "semeval_PT_URW",
            "semeval_PT_CC",
            "semeval_BG_URW",
            "semeval_BG_CC",
            "semeval_HI_URW",
        ]
    }
    timelines = {"troll_en": [list(range(0, 40)), list(range(40, 300))]}
    first = build_pages(pools, timelines, seed=3)
    again = build_pages(pools, timelines, seed=3)
    assert [(p.page_id, p.keys) for p in first] == [(p.page_id, p.keys) for p in again]
    assert [p.keys for p in build_pages(pools, timelines, seed=4)] != [p.keys for p in first]
    assert len(first) >= 200
    for page in first:
        if page.kind in ("stable", "burst"):
            assert page.true_cps == []
        else:
            (cp,) = page.true_cps
            assert cp >= 5 and len(page.keys) - cp >= 5
            assert len(set(page.keys)) == len(page.keys)  # no post twice on a page
    small = [
        p for p in first if p.true_cps and min(p.true_cps[0], len(p.keys) - p.true_cps[0]) <= 8
    ]
    assert len(small) >= 30


def _synthetic_pools(rng):
    """Two pools of posts far apart in embedding, topic and language."""
    import numpy as np

    data = {}
    for k, (name, lang) in enumerate((("a", "en"), ("b", "zh"))):
        center = np.zeros(32, dtype=np.float32)
        center[k] = 1.0
        emb = center + 0.05 * rng.standard_normal((200, 32)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        profile = np.full((200, 29), 0.01, dtype=np.float32)
        profile[:, k] = 0.7
        profile += 0.005 * rng.random((200, 29)).astype(np.float32)
        profile /= profile.sum(axis=1, keepdims=True)
        data[name] = {"embedding": emb, "lang": np.array([lang] * 200), "profile": profile}
    return data


def test_the_replay_reports_pivots_early_and_ends_where_one_run_does():
    import numpy as np

    from narratives.evaluation.pivots import replay, run_ours

    data = _synthetic_pools(np.random.default_rng(0))
    pages = [
        Page(
            "p1",
            "topic+language",
            [("a", i) for i in range(60)] + [("b", i) for i in range(40)],
            [60],
            ["topic+language"],
        ),
        Page(
            "p2",
            "topic+language",
            [("b", i) for i in range(30)] + [("a", i) for i in range(25)],
            [30],
            ["topic+language"],
        ),
        Page("s1", "stable", [("a", i) for i in range(80)]),
    ]
    result = replay(pages, data, step=5)
    _, at_once = run_ours(pages, data)
    for key in ("precision", "recall", "f1", "false_per_stable"):  # the last step holds
        assert result["final"][key] == at_once[key]  # every post
    assert result["found_at_end"] == 2
    # reported once 5 posts followed (the first step with at least min_posts = 4), and
    # provisional then; never withdrawn once confirmed
    assert result["posts_after_min"] == 5 and result["first_report_provisional"] == 1.0
    assert result["provisional_pivots"] >= 2 and result["confirmed_withdrawn"] == 0.0
