"""The output contract: Arrow schemas of posts.parquet, pivots.parquet and pages.parquet."""

from __future__ import annotations

import pyarrow as pa

UTC_TIME = pa.timestamp("us", tz="UTC")
NARRATIVE_SCORE = pa.struct([("id", pa.string()), ("score", pa.float32())])
LANG_SHARE = pa.struct([("lang", pa.string()), ("share", pa.float32())])

POSTS = pa.schema(
    [
        ("post_id", pa.string()),
        ("page_id", pa.string()),
        ("created_at", UTC_TIME),
        ("source_row", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("warning", pa.string()),
        ("text", pa.string()),
        ("lang", pa.string()),
        ("lang_score", pa.float32()),
        ("topic", pa.string()),
        ("topic_score", pa.float32()),
        ("narratives", pa.list_(NARRATIVE_SCORE)),
        ("top_narrative", pa.string()),
        ("top_score", pa.float32()),
    ]
)

PIVOTS = pa.schema(
    [
        ("page_id", pa.string()),
        ("at", UTC_TIME),
        ("kind", pa.string()),
        ("magnitude", pa.float32()),
        ("before_lang", pa.string()),
        ("after_lang", pa.string()),
        ("before_examples", pa.list_(pa.string())),
        ("after_examples", pa.list_(pa.string())),
        ("dormancy_days", pa.float32()),
        # beyond the contract: where and how much, for analysts and evaluation
        ("position", pa.int64()),
        ("topic_shift", pa.float32()),
        ("language_shift", pa.float32()),
        ("before_topic", pa.string()),
        ("after_topic", pa.string()),
        # narrative-level tags of each side: share of its posts that carry each (top 3)
        ("before_narratives", pa.list_(NARRATIVE_SCORE)),
        ("after_narratives", pa.list_(NARRATIVE_SCORE)),
        # posts from the pivot to the next one (or the page's end); a page's last pivot
        # is provisional while so few posts follow it that a return to what came before
        # would make it a burst (see PivotDetector._may_revert)
        ("posts_after", pa.int64()),
        ("provisional", pa.bool_()),
    ]
)

PAGES = pa.schema(
    [
        ("page_id", pa.string()),
        ("n_posts", pa.int64()),
        ("first_at", UTC_TIME),
        ("last_at", UTC_TIME),
        ("langs", pa.list_(LANG_SHARE)),
        ("n_pivots", pa.int64()),
        ("top_narratives", pa.list_(NARRATIVE_SCORE)),
        ("pivot_status", pa.string()),
        # operator timing (narratives.operators.timing, default settings): null below its minimum
        ("utc_offset_hours", pa.float32()),
        ("timing_confidence", pa.float32()),
        # "ok", "too few posts (n < 50)", or "error: ..." where timing met a bug
        ("timing_status", pa.string()),
    ]
)

TIMING = pa.schema(
    [
        # "page"; "group" for a group of pages' posts together (the groups of the
        # coordination network, or the user's); "all" for every page's posts together
        ("scope", pa.string()),
        ("page_id", pa.string()),
        ("group", pa.string()),
        ("n_posts", pa.int64()),
        ("utc_offset_hours", pa.float32()),
        ("confidence", pa.float32()),
        ("work_start", pa.string()),  # local time, HH:MM
        ("work_end", pa.string()),
        ("breaks", pa.list_(pa.string())),  # local time, HH:MM-HH:MM
        ("status", pa.string()),
    ]
)

TIMING_PAIRS = pa.schema(
    [("page_a", pa.string()), ("page_b", pa.string()), ("similarity", pa.float32())]
)


def vector_type(dim: int) -> pa.DataType:
    """Fixed-size float32 vectors: the ``embedding`` and ``topic_profile`` columns."""
    return pa.list_(pa.float32(), dim)
