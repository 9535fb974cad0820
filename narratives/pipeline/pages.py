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
    flags = failed_pages(pages)
    for key, failed in flags.items():
        ids = pages.loc[failed, "page_id"].astype(str)
        out[key] = {"pages": len(ids), "first": ids.head(listed).tolist()}
    out["pages"] = int((flags["pivots"] | flags["timing"]).sum())
    return out


def failed_pages(pages: pd.DataFrame) -> dict[str, np.ndarray]:
    """Which pages' pivots (``pivots``) and timing (``timing``) met an unexpected error
    (``error: ...`` in ``pivot_status`` or ``timing_status``), as boolean masks."""
    out = {}
    for column, key in (("pivot_status", "pivots"), ("timing_status", "timing")):
        status = pages[column] if column in pages else pd.Series(None, index=pages.index)
        out[key] = status.fillna("").astype(str).str.startswith("error:").to_numpy()
    return out


def pages_and_pivots(
    posts: pd.DataFrame,
    profiles: np.ndarray,
    embeddings: Any,
    config: PivotConfig | None = None,
    *,
    n_jobs: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Pivots, the page table and the detector's summary of ``posts``, which hold every
    scored post of their pages (all of a run's, or one part of them)."""
    detector = PivotDetector(config, n_jobs=n_jobs).fit(posts, profiles, embeddings)
    pages = page_table(posts, detector.pivots_, detector.page_status_)
    return detector.pivots_, pages, detector.summary()


def merge_parts(
    parts: list[tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """:func:`pages_and_pivots` of parts that each hold whole pages, as one run's: pivots
    and pages in page id order (a page's pivots in time order), the summaries added up."""
    if len(parts) == 1:
        return parts[0]
    pivots = [p for p, _, _ in parts if len(p)]
    pages = [p for _, p, _ in parts if len(p)]
    merged = [
        pd.concat(frames, ignore_index=True)
        .sort_values("page_id", kind="stable")
        .reset_index(drop=True)
        if frames
        else empty
        for frames, empty in ((pivots, parts[0][0]), (pages, parts[0][1]))
    ]
    summary = dict(parts[0][2])
    for key in ("pages", "pages_too_few_posts", "pages_with_errors", "pivots"):
        summary[key] = sum(s[key] for _, _, s in parts)
    return merged[0], merged[1], summary


def with_pivots(
    run: dict[str, Any],
    pivots: pd.DataFrame,
    pages: pd.DataFrame,
    summary: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """``run`` (run.json) with what pivot detection found."""
    return with_counts(run, summary, page_errors(pages), len(pages), len(pivots), seconds)


def with_counts(
    run: dict[str, Any],
    summary: dict[str, Any],
    errors: dict[str, Any],
    n_pages: int,
    n_pivots: int,
    seconds: float,
) -> dict[str, Any]:
    """``run`` with what pivot detection found, from its counts: the detector's
    ``summary``, the :func:`page_errors`, the pages and pivots."""
    run = dict(run)
    run["pivots"] = {**summary, "seconds": round(seconds, 3)}
    run["page_errors"] = errors
    run["counts"] = {
        **run.get("counts", {}),
        "pages": n_pages,
        "pivots": n_pivots,
        "page_errors": errors["pages"],
    }
    return run


def detect_pivots(result: ScoreResult, config: PivotConfig | None = None) -> ScoreResult:
    """Run pivot detection on scored posts (no re-embedding) and refresh pivots and pages."""
    started = time.perf_counter()
    pivots, pages, summary = pages_and_pivots(
        result.posts, result.topic_profiles, result.embeddings, config
    )
    run = with_pivots(result.run, pivots, pages, summary, time.perf_counter() - started)
    return ScoreResult(result.posts, pivots, pages, result.embeddings, result.topic_profiles, run)


def redetect_pivots(scored_dir: str | Path, config: PivotConfig | None = None) -> ScoreResult:
    """Pivot detection again on a scored folder with other settings (no re-embedding):
    pivots.parquet, pages.parquet and run.json are rewritten; posts.parquet stays."""
    result = detect_pivots(load_scored(scored_dir), config)
    result.save_pivots(Path(scored_dir))
    return result


__all__ = [
    "detect_pivots",
    "failed_pages",
    "merge_parts",
    "page_errors",
    "page_table",
    "pages_and_pivots",
    "redetect_pivots",
    "with_counts",
    "with_pivots",
]
