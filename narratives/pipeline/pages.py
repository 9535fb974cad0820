"""The pages table, and pivots found (again) on scored posts: what pivots.parquet,
pages.parquet and run.json say after ``narratives score`` or ``narratives pivots``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives import schema
from narratives.operators.timing import page_timing
from narratives.pivots.detector import PivotConfig, PivotDetector
from narratives.scored import ScoreResult, load_scored, narrative_mix, usable


def page_table(posts: pd.DataFrame, pivots: pd.DataFrame, status: dict[str, str]) -> pd.DataFrame:
    """One row per page of the scored posts: counts, time span, language shares, pivots."""
    ok = posts[usable(posts, timed=False)]  # untimed posts count too
    n_pivots = pivots["page_id"].value_counts()
    tags = posts["narratives"].to_numpy() if "narratives" in posts else None
    rows = []
    for page_id, group in ok.groupby("page_id", sort=True):
        shares = group["lang"].value_counts(normalize=True)
        shares = shares.sort_index().sort_values(ascending=False, kind="stable")
        page_status = status.get(page_id, "no timed posts")
        rows.append(
            {
                "page_id": page_id,
                "n_posts": len(group),
                "first_at": group["created_at"].min(),
                "last_at": group["created_at"].max(),
                "langs": [{"lang": k, "share": round(float(v), 4)} for k, v in shares.items()],
                "n_pivots": int(n_pivots.get(page_id, 0)) if page_status == "ok" else None,
                "top_narratives": narrative_mix(tags, posts.index.get_indexer(group.index)),
                "pivot_status": page_status,
            }
        )
    if not rows:
        return schema.PAGES.empty_table().to_pandas()
    frame = pd.DataFrame(rows)
    frame["first_at"] = frame["first_at"].astype("datetime64[us, UTC]")
    frame["last_at"] = frame["last_at"].astype("datetime64[us, UTC]")
    timing = page_timing(posts)
    timing = timing[timing["scope"] == "page"].set_index("page_id")
    frame["utc_offset_hours"] = frame["page_id"].map(timing["utc_offset_hours"]).astype(float)
    frame["timing_confidence"] = frame["page_id"].map(timing["confidence"]).astype(float)
    frame["timing_status"] = frame["page_id"].map(timing["status"])
    return frame


def page_errors(pages: pd.DataFrame, listed: int = 20) -> dict[str, Any]:
    """The pages whose pivots or timing met an unexpected error (``error: ...`` in
    ``pivot_status`` or ``timing_status``), counted, with the first ``listed`` ids of
    each: what run.json says of them."""
    out: dict[str, Any] = {}
    any_error = np.zeros(len(pages), dtype=bool)
    for column, key in (("pivot_status", "pivots"), ("timing_status", "timing")):
        status = pages[column] if column in pages else pd.Series(None, index=pages.index)
        failed = status.fillna("").astype(str).str.startswith("error:").to_numpy()
        any_error |= failed
        ids = pages.loc[failed, "page_id"].astype(str)
        out[key] = {"pages": len(ids), "first": ids.head(listed).tolist()}
    out["pages"] = int(any_error.sum())
    return out


def detect_pivots(result: ScoreResult, config: PivotConfig | None = None) -> ScoreResult:
    """Run pivot detection on scored posts (no re-embedding) and refresh pivots and pages."""
    started = time.perf_counter()
    detector = PivotDetector(config).fit(result.posts, result.topic_profiles, result.embeddings)
    pages = page_table(result.posts, detector.pivots_, detector.page_status_)
    run = dict(result.run)
    run["pivots"] = {**detector.summary(), "seconds": round(time.perf_counter() - started, 3)}
    errors = page_errors(pages)
    run["page_errors"] = errors
    run["counts"] = {
        **run.get("counts", {}),
        "pages": len(pages),
        "pivots": len(detector.pivots_),
        "page_errors": errors["pages"],
    }
    return ScoreResult(
        result.posts, detector.pivots_, pages, result.embeddings, result.topic_profiles, run
    )


def redetect_pivots(scored_dir: str | Path, config: PivotConfig | None = None) -> ScoreResult:
    """Pivot detection again on a scored folder with other settings (no re-embedding):
    pivots.parquet, pages.parquet and run.json are rewritten; posts.parquet stays."""
    result = detect_pivots(load_scored(scored_dir), config)
    result.save_pivots(Path(scored_dir))
    return result


__all__ = ["detect_pivots", "page_errors", "page_table", "redetect_pivots"]
