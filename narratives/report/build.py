"""An analyst's HTML report of a scored folder: one self-contained file, safe to share.

The file holds everything it needs (Plotly's JavaScript, the styles, the data) and asks
the network for nothing. Post text is the adversary's: every value from the data travels
as JSON inside a ``<script type="application/json">`` element, with ``<``, ``>``, ``&``
and the line separators written as ``\\u`` escapes so that no text can close the element,
and the page's script puts it on screen only as text nodes (``textContent``), or, for
Plotly's labels, with ``&``, ``<`` and ``>`` as entities (Plotly reads a little HTML in
labels). A Content-Security-Policy lets only the report's own two scripts run.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.errors import InputError, OutputError
from narratives.pivots.timelines import page_timelines
from narratives.report.render import render
from narratives.scored import ScoredFolder, atomic_path, update_files, usable

logger = logging.getLogger(__name__)

#: Columns of posts.parquet the report reads (the vectors are read for drawn pages only).
_POST_COLUMNS = [
    "post_id",
    "page_id",
    "created_at",
    "source_row",
    "status",
    "error",
    "text",
    "lang",
    "narratives",
    "top_narrative",
]


@dataclass
class ReportConfig:
    """What the report draws, and how much of it: the file stays small on large dumps."""

    max_pages: int = 40  # pages drawn in detail: those with pivots first, by magnitude
    max_points: int = 1500  # posts per page timeline (evenly spaced, pivots kept)
    max_table_rows: int = 5000  # rows of the page table
    text_chars: int = 400  # characters of an example post shown
    hover_chars: int = 120  # characters of a post in a chart's hover label
    max_languages: int = 6  # languages drawn apart in the narrative mix; the rest as "other"
    examples_per_side: int = 3

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ReportConfig.{name} must be a positive integer, not {value!r}")


def write_report(
    scored_dir: str | Path,
    output: str | Path | None = None,
    *,
    config: ReportConfig | None = None,
    taxonomy: str | Path | None = None,
    force: bool = False,
    csp: bool = True,
) -> Path:
    """Write the report of ``scored_dir`` (default: ``scored_dir/report.html``).

    An existing file is replaced only with ``force``; the file appears whole or not at all.
    """
    scored = Path(scored_dir)
    out = Path(output) if output is not None else scored / "report.html"
    if out.exists() and not force:
        raise OutputError(f"{str(out)!r} exists; pass --force to replace it")
    if out.is_dir():
        raise OutputError(f"{str(out)!r} is a directory; give a file name such as report.html")
    page = build_report(scored, config=config, taxonomy=taxonomy, csp=csp)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def build_report(
    scored_dir: str | Path,
    *,
    config: ReportConfig | None = None,
    taxonomy: str | Path | None = None,
    csp: bool = True,
) -> str:
    """The report's HTML, from the files ``narratives score`` wrote into ``scored_dir``."""
    data = report_data(scored_dir, config=config, taxonomy=taxonomy)
    return render(data, csp=csp)


# ---------------------------------------------------------------------------- the data


def report_data(
    scored_dir: str | Path,
    *,
    config: ReportConfig | None = None,
    taxonomy: str | Path | None = None,
) -> dict[str, Any]:
    """Everything the page draws, as plain JSON-ready values (not yet escaped)."""
    cfg = config or ReportConfig()
    scored = ScoredFolder(scored_dir)
    posts, pivots, pages, run = _read(scored)
    names = _narrative_names(run, taxonomy)
    ok = posts["status"].to_numpy() == "ok"
    langs = _counts(posts.loc[ok, "lang"].fillna("und").astype(str))
    ranked = _rank_pages(pages, pivots)
    drawn = ranked["page_id"].head(cfg.max_pages).tolist()
    detail = _page_details(scored, posts, pivots, drawn, names, cfg)
    rejected = posts.loc[~ok, "error"].fillna("no reason given")
    stored = _stored_timing(scored)
    timing = _timing(posts, drawn, stored)
    for entry in detail:
        entry["timing"] = timing.get(entry["page_id"])
    return {
        "title": "narratives report",
        "source": str(run.get("input", {}).get("source", "")),
        "created": str(run.get("created", "")),
        "model": _model_line(run),
        "taxonomy": _taxonomy_line(run),
        "counts": {
            "posts": len(posts),
            "ok": int(ok.sum()),
            "rejected": int((~ok).sum()),
            "pages": len(pages),
            "languages": len(langs),
            "pivots": len(pivots),
            "tagged": int(posts["top_narrative"].notna().sum()),
        },
        "languages": [[str(k), int(v)] for k, v in langs.items()],
        "rejections": [[r, int(n)] for r, n in rejection_reasons(rejected).items()],
        "narratives": names,
        "pivots": _pivot_rows(pivots, names),
        "table": _page_rows(ranked.head(cfg.max_table_rows), drawn, names),
        "table_total": len(ranked),
        "drawn_total": len(drawn),
        "pages": detail,
        "mix": _mix_over_time(posts[ok], names, cfg),
        "timing": timing.get(None),
        "coordination": _coordination(scored, posts, cfg, stored),
        "since_update": _since_update(scored, names),
        "colors": {
            "languages": _palette(langs.index.tolist(), _LANGUAGE_COLORS),
            "narratives": _palette(list(names), _NARRATIVE_COLORS),
        },
    }


def _since_update(scored: ScoredFolder, names: dict[str, str]) -> dict[str, Any] | None:
    """What the folder's last update found (its change log entry), for the section at
    the top of the report; None for a folder never updated."""
    entries = update_files(scored.path)
    if not entries:
        return None
    entry = json.loads(entries[-1].read_text(encoding="utf-8"))
    pivots = [
        [key, p["page_id"], p["at"], p["kind"], f"{p['before_lang']}->{p['after_lang']}",
         p["posts_after"], "provisional" if p["provisional"] else ""]
        for key in ("new", "confirmed", "moved", "withdrawn")
        for p in entry["pivots"][key]
    ]  # fmt: skip
    coordination = entry.get("coordination")
    risen = [
        [names.get(n["id"], n["id"]), n["share_new"], n["share_before"]]
        for n in entry["narratives"]
        if (n["share_new"] or 0) > (n["share_before"] or 0)
    ]
    return {
        "update": entry["update"],
        "created": entry["created"],
        "counts": entry["counts"],
        "pages_touched": entry["pages_touched"],
        "pivots": pivots,
        "timing": [
            [t["page_id"], t["from_hours"], t["to_hours"]] for t in entry["timing"]["pages"]
        ],
        "coordination": None
        if coordination is None
        else {
            k: len(coordination[k])
            for k in ("clusters_new", "clusters_grown", "links_new", "links_grown")
        },
        "narratives": risen[:8],
    }


def rejection_reasons(errors: pd.Series, top: int | None = None) -> pd.Series:
    """Rejected rows counted by reason, with quoted values and line numbers blanked so that
    rows rejected for the same reason count together."""
    reasons = errors.astype(str).str.replace(r"'[^']*'", "'…'", regex=True)
    reasons = reasons.str.replace(r"lines? [\d-]+", "line …", regex=True)
    counts = _counts(reasons)
    return counts if top is None else counts.head(top)


def _counts(values: pd.Series) -> pd.Series:
    """value_counts with ties in value order, so the report does not depend on row order."""
    counts = values.value_counts()
    order = sorted(counts.index, key=lambda k: (-counts[k], k))
    return counts.loc[order]


def _read(
    scored: ScoredFolder,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    scored.require()
    absent = [c for c in _POST_COLUMNS if c not in scored.post_columns]
    if absent:
        raise InputError(
            f"posts.parquet in {str(scored.path)!r} lacks {', '.join(absent)}; "
            "score the input again with this version of narratives"
        )
    posts = scored.posts(_POST_COLUMNS)
    return posts, scored.table("pivots.parquet"), scored.table("pages.parquet"), scored.run()


def _narrative_names(run: dict[str, Any], taxonomy: str | Path | None) -> dict[str, str]:
    """Top-level narrative id -> name, from the taxonomy the run used when it is known
    (the one given, or the shipped one when its digest matches), else ids only."""
    from narratives.tagging.taxonomy import load_taxonomy

    used = run.get("taxonomy") or {}
    try:
        tax = load_taxonomy(taxonomy)
    except Exception as exc:  # a report without names beats no report
        logger.warning("taxonomy not read (%s); the report shows narrative ids", exc)
        return {}
    if taxonomy is None and used.get("digest") not in (None, tax.digest):
        logger.info("the run used taxonomy %s; the report shows its ids", used.get("id"))
        return {}
    if taxonomy is not None and used.get("digest") not in (None, tax.digest):
        logger.warning("taxonomy %s differs from the one the run used (%s)", tax.id, used)
    return {n.id: n.name for n in tax.narratives}


def _model_line(run: dict[str, Any]) -> str:
    model = run.get("model") or {}
    parts = [str(model.get(k)) for k in ("id", "version", "backend") if model.get(k)]
    return " ".join(parts)


def _taxonomy_line(run: dict[str, Any]) -> str:
    tax = run.get("taxonomy") or {}
    tagger = (run.get("tagger") or {}).get("kind")
    line = " ".join(str(tax[k]) for k in ("id", "version") if tax.get(k))
    return f"{line} ({tagger} tagger)" if line and tagger else line


def _rank_pages(pages: pd.DataFrame, pivots: pd.DataFrame) -> pd.DataFrame:
    """Pages with their largest pivot, ranked: largest magnitude, then most posts, then id."""
    top = pivots.groupby("page_id")["magnitude"].max() if len(pivots) else pd.Series(dtype=float)
    ranked = pages.assign(max_magnitude=pages["page_id"].map(top).astype(float))
    ranked = ranked.assign(_m=ranked["max_magnitude"].fillna(-1.0))
    ranked = ranked.sort_values(["_m", "n_posts", "page_id"], ascending=[False, False, True])
    return ranked.drop(columns="_m").reset_index(drop=True)


def _when(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M")


def _opt(value: Any) -> str | None:
    """A text value from a table, None where it is missing (pandas gives NaN or None)."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _shares(entries: Any, names: dict[str, str]) -> list[list[Any]]:
    if entries is None or (isinstance(entries, float) and np.isnan(entries)):
        return []
    return [[e["id"], names.get(e["id"], e["id"]), round(float(e["score"]), 3)] for e in entries]


def _pivot_rows(pivots: pd.DataFrame, names: dict[str, str]) -> list[dict[str, Any]]:
    rows = pivots.sort_values(["magnitude", "page_id", "at"], ascending=[False, True, True])
    return [
        {
            "page_id": str(p.page_id),
            "at": _when(p.at),
            "kind": str(p.kind),
            "magnitude": round(float(p.magnitude), 3),
            "before_lang": _opt(p.before_lang),
            "after_lang": _opt(p.after_lang),
            "dormancy_days": None if pd.isna(p.dormancy_days) else round(float(p.dormancy_days), 1),
            "before_narratives": _shares(p.before_narratives, names),
            "after_narratives": _shares(p.after_narratives, names),
        }
        for p in rows.itertuples(index=False)
    ]


def _page_rows(ranked: pd.DataFrame, drawn: list[str], names: dict[str, str]) -> list[list[Any]]:
    """The overview table: one list per page (see the column names in report.js)."""
    anchor = {page: i for i, page in enumerate(drawn)}
    rows = []
    for p in ranked.itertuples(index=False):
        langs = p.langs if p.langs is not None else []
        lang_text = " ".join(f"{e['lang']} {_percent(e['share'])}" for e in list(langs)[:3])
        tops = " · ".join(name for _, name, _ in _shares(p.top_narratives, names))
        magnitude = None if pd.isna(p.max_magnitude) else round(float(p.max_magnitude), 3)
        rows.append(
            [
                str(p.page_id),
                int(p.n_posts),
                _when(p.first_at),
                _when(p.last_at),
                lang_text,
                None if pd.isna(p.n_pivots) else int(p.n_pivots),  # null: not judged
                magnitude,
                tops,
                str(p.pivot_status),
                anchor.get(p.page_id),
            ]
        )
    return rows


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{round(100 * share)}%"


def _page_details(
    scored: ScoredFolder,
    posts: pd.DataFrame,
    pivots: pd.DataFrame,
    drawn: list[str],
    names: dict[str, str],
    cfg: ReportConfig,
) -> list[dict[str, Any]]:
    """Timeline, narrative mix per regime and example posts of each drawn page."""
    if not drawn:
        return []
    keep = posts["page_id"].isin(drawn).to_numpy()
    subset = posts[keep]
    lines = {t.page_id: t for t in page_timelines(subset, np.zeros((len(subset), 0)))}
    all_rows = np.flatnonzero(keep)
    vector_rows = np.sort(np.concatenate([all_rows[t.rows] for t in lines.values()] or [[]]))
    vectors = scored.vectors("embedding", vector_rows.astype(np.int64))
    out = []
    for index, page in enumerate(drawn):
        line = lines.get(page)
        page_pivots = pivots[pivots["page_id"] == page].sort_values("position")
        entry: dict[str, Any] = {"index": index, "page_id": page, "n": 0}
        if line is None or len(line) == 0:
            out.append(entry)
            continue
        rows = all_rows[line.rows]
        emb = vectors[np.searchsorted(vector_rows, rows)]
        frame = subset.iloc[line.rows]
        bounds = [0, *page_pivots["position"].astype(int).tolist(), len(line)]
        entry.update(_timeline(line, frame, emb, bounds, cfg))
        entry["pivots"] = [
            {
                "at": _when(p.at),
                "kind": str(p.kind),
                "magnitude": round(float(p.magnitude), 3),
                "dormancy_days": None if pd.isna(p.dormancy_days) else round(p.dormancy_days, 1),
            }
            for p in page_pivots.itertuples(index=False)
        ]
        entry["regimes"] = _regimes(frame, bounds, names)
        entry["examples"] = _examples(frame, page_pivots, bounds, cfg)
        out.append(entry)
    return out


def _timeline(
    line: Any, frame: pd.DataFrame, emb: np.ndarray, bounds: list[int], cfg: ReportConfig
) -> dict[str, Any]:
    """Topic drift: each post's cosine distance to the mean of the page's first regime
    (the posts before its first pivot; all its posts when it has none), and its rolling
    mean within each regime; sampled evenly down to ``max_points`` posts, pivots kept."""
    n = len(line)
    first = emb[: bounds[1]].mean(axis=0)
    first /= max(float(np.linalg.norm(first)), 1e-12)
    norms = np.maximum(np.linalg.norm(emb, axis=1), 1e-12)
    drift = 1.0 - (emb @ first) / norms
    window = max(5, n // 40)
    smooth = np.concatenate(
        [
            pd.Series(drift[a:b]).rolling(window, center=True, min_periods=1).mean().to_numpy()
            for a, b in itertools.pairwise(bounds)
        ]
    )
    keep = np.arange(n)
    if n > cfg.max_points:
        pivots = np.array(bounds[1:-1], dtype=np.int64)
        spaced = np.linspace(0, n - 1, cfg.max_points).round().astype(np.int64)
        keep = np.unique(np.concatenate([spaced, pivots, np.maximum(pivots - 1, 0)]))
    times = pd.DatetimeIndex(line.times[keep]).strftime("%Y-%m-%d %H:%M:%S").tolist()
    texts = frame["text"].to_numpy(dtype=object)[keep]
    return {
        "n": n,
        "shown": len(keep),
        "window": window,
        "t": times,
        "drift": np.round(drift[keep], 4).tolist(),
        "smooth": np.round(smooth[keep], 4).tolist(),
        # where a new regime starts among the drawn posts: the rolling mean breaks there
        "breaks": np.searchsorted(keep, bounds[1:-1]).tolist(),
        "lang": [_opt(x) or "und" for x in line.langs[keep]],
        "narrative": [_opt(x) for x in frame["top_narrative"].to_numpy()[keep]],
        "text": [_clip(t, cfg.hover_chars) for t in texts],
    }


def _regimes(frame: pd.DataFrame, bounds: list[int], names: dict[str, str]) -> list[dict]:
    """Share of each regime's posts carrying each top-level narrative."""
    times = frame["created_at"]
    regimes = []
    for a, b in itertools.pairwise(bounds):
        counts: dict[str, int] = {}
        for tags in frame["narratives"].iloc[a:b]:
            if tags is None or isinstance(tags, float):
                continue
            for narrative in {e["id"] for e in tags if "." not in e["id"]}:
                counts[narrative] = counts.get(narrative, 0) + 1
        n = b - a
        tagged = int(frame["top_narrative"].iloc[a:b].notna().sum())
        regimes.append(
            {
                "from": _when(times.iloc[a]),
                "to": _when(times.iloc[b - 1]),
                "n": n,
                "untagged": round(1 - tagged / n, 3),
                "mix": [
                    [k, names.get(k, k), round(v / n, 3)]
                    for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
            }
        )
    return regimes


def _examples(
    frame: pd.DataFrame, page_pivots: pd.DataFrame, bounds: list[int], cfg: ReportConfig
) -> list[dict[str, Any]]:
    """Example posts each side of each pivot (the detector's own picks), or the first and
    last posts of a page without pivots."""
    by_id = {pid: i for i, pid in enumerate(frame["post_id"].tolist())}

    def post(i: int) -> dict[str, Any]:
        row = frame.iloc[i]
        return {
            "post_id": str(row["post_id"]),
            "at": _when(row["created_at"]),
            "lang": _opt(row["lang"]),
            "narrative": _opt(row["top_narrative"]),
            "text": _clip(row["text"], cfg.text_chars),
        }

    k = cfg.examples_per_side
    if len(page_pivots) == 0:
        n = len(frame)
        first, last = list(range(min(k, n))), list(range(max(k, n - k), n))
        return [{"label": "first posts", "posts": [post(i) for i in first]}] + (
            [{"label": "last posts", "posts": [post(i) for i in last]}] if last else []
        )
    sides = []
    for p in page_pivots.itertuples(index=False):
        at = _when(p.at)
        for label, ids in ((f"before {at}", p.before_examples), (f"after {at}", p.after_examples)):
            found = [by_id[x] for x in list(ids if ids is not None else [])[:k] if x in by_id]
            sides.append({"label": label, "kind": str(p.kind), "posts": [post(i) for i in found]})
    return sides


def _stored_timing(scored: ScoredFolder) -> pd.DataFrame | None:
    """timing.parquet, when narratives timing has run: the report shows its estimates
    (made with the user's settings and groups) rather than estimating again."""
    has = (scored.path / "timing.parquet").is_file()
    return scored.table("timing.parquet") if has else None


def _estimate(stored: pd.DataFrame | None, scope: str, key: str | None) -> dict | None:
    """The stored estimate of a page (``scope`` "page"), a group or all pages, or None."""
    if stored is None:
        return None
    column = {"page": "page_id", "group": "group"}.get(scope)
    rows = stored[stored["scope"] == scope]
    if column is not None:
        rows = rows[rows[column] == key]
    if len(rows) != 1:
        return None
    row = rows.iloc[0]

    def number(value: Any) -> float | None:
        return None if value is None or pd.isna(value) else round(float(value), 3)

    return {
        "n_posts": int(row["n_posts"]),
        "utc_offset_hours": number(row["utc_offset_hours"]),
        "confidence": number(row["confidence"]),
        "work_start": _opt(row["work_start"]),
        "work_end": _opt(row["work_end"]),
        "breaks": None if row["breaks"] is None else [str(b) for b in row["breaks"]],
        "status": _opt(row["status"]),
    }


def _timing(
    posts: pd.DataFrame, drawn: list[str], stored: pd.DataFrame | None = None
) -> dict[str | None, dict[str, Any]]:
    """Operator timing of the drawn pages and of all pages together (key None)."""
    usable = _usable(posts)
    out: dict[str | None, dict[str, Any]] = {
        None: _timed(usable["created_at"], "all pages together", _estimate(stored, "all", None))
    }
    chosen = usable[usable["page_id"].isin(drawn)]
    out.update(
        (str(p), _timed(g["created_at"], f"page {str(p)!r}", _estimate(stored, "page", str(p))))
        for p, g in chosen.groupby("page_id", sort=True)
    )
    return out


def _usable(posts: pd.DataFrame) -> pd.DataFrame:
    return posts[usable(posts, paged=False)]


def _timed(times: pd.Series, who: str, est: dict | None = None) -> dict[str, Any]:
    """The timing estimate of some posts (``est``, as timing.parquet has it, or made now
    with the default settings) and their posts per weekday x hour in the inferred local
    time (UTC without one). ``who``: whose posts, for the log of an unexpected error."""
    from narratives.operators.timing import BINS_PER_HOUR, TimingEstimator, week_histogram

    estimator = TimingEstimator()
    if est is None:
        est = estimator.estimate_or_error(times, who)
    offset = est["utc_offset_hours"] or 0.0
    local = estimator.local_profile(week_histogram(times), offset)
    hours = local.reshape(7, 24, BINS_PER_HOUR).sum(axis=2)
    return {**est, "hours": hours.astype(int).tolist()}


def _coordination(
    scored: ScoredFolder,
    posts: pd.DataFrame,
    cfg: ReportConfig,
    stored: pd.DataFrame | None = None,
) -> dict | None:
    """What narratives coordination found, when it has run: the page pairs that co-post
    most, the groups of the page network (five largest) with their posts' timing, and
    the clusters spanning most pages with their posts."""
    if not (scored.path / "coordination.parquet").is_file():
        return None
    clusters = scored.table("coordination.parquet")
    edges = scored.table("coordination_edges.parquet")
    texts = posts.drop_duplicates("post_id").set_index("post_id")
    ranked = (
        clusters.groupby("cluster_id")
        .agg(pages=("cluster_pages", "first"), n=("cluster_posts", "first"))
        .sort_values(["pages", "n"], ascending=False, kind="stable")
        .head(10)
    )
    examples = []
    for cluster_id in ranked.index:
        members = clusters[clusters["cluster_id"] == cluster_id].head(8)
        examples.append(
            {
                "cluster_id": int(cluster_id),
                "posts": [
                    {
                        "post_id": str(m.post_id),
                        "page_id": str(m.page_id),
                        "at": _when(m.created_at),
                        "lang": _opt(texts["lang"].get(m.post_id)),
                        "text": _clip(texts["text"].get(m.post_id), cfg.text_chars),
                    }
                    for m in members.itertuples(index=False)
                ],
            }
        )
    from narratives.operators.coordination import network_groups

    usable = _usable(posts)
    member = network_groups(edges)
    groups = []
    for name in [f"coordination-{k}" for k in range(1, 6)]:  # numbered largest first
        pages = sorted(page for page, group in member.items() if group == name)
        if not pages:
            break
        times = usable.loc[usable["page_id"].isin(pages), "created_at"]
        est = _estimate(stored, "group", name)
        if est is not None and est["n_posts"] != len(times):  # another network's group
            est = None
        groups.append({"name": name, "pages": pages, "timing": _timed(times, name, est)})
    return {
        "clusters": int(clusters["cluster_id"].nunique()),
        "posts": len(clusters),
        "groups": groups,
        "pairs": [
            [str(e.page_a), str(e.page_b), int(e.weight), _when(e.first_at), _when(e.last_at)]
            for e in edges.head(30).itertuples(index=False)
        ],
        "pairs_total": len(edges),
        "examples": examples,
    }


def _clip(text: Any, limit: int) -> str:
    text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mix_over_time(ok: pd.DataFrame, names: dict[str, str], cfg: ReportConfig) -> dict[str, Any]:
    """Posts per time bucket, language and top narrative across the whole dump: days when
    the dump spans up to three months, weeks up to three years, else months."""
    timed = ok[ok["created_at"].notna()]
    if timed.empty:
        return {"bucket": None, "languages": []}
    times = timed["created_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    span = (times.max() - times.min()).days
    if span <= 92:
        unit, buckets = "day", times.dt.floor("D")
    elif span <= 3 * 366:
        monday = times - pd.to_timedelta(times.dt.day_of_week, unit="D")
        unit, buckets = "week", monday.dt.floor("D")
    else:
        unit, buckets = "month", times.dt.to_period("M").dt.start_time
    langs = timed["lang"].fillna("und").astype(str)
    top = _counts(langs).head(cfg.max_languages).index
    langs = langs.where(langs.isin(top), "other")
    frame = pd.DataFrame(
        {
            "bucket": buckets.dt.strftime("%Y-%m-%d").to_numpy(),
            "lang": langs.to_numpy(),
            "narrative": timed["top_narrative"].fillna("").astype(str).to_numpy(),
        }
    )
    out = []
    for lang in [*top, "other"]:
        part = frame[frame["lang"] == lang]
        if part.empty:
            continue
        totals = part.groupby("bucket").size()
        tagged = part[part["narrative"] != ""]
        counts = tagged.groupby(["narrative", "bucket"]).size()
        series = [
            {
                "id": narrative,
                "name": names.get(narrative, narrative),
                "x": counts[narrative].index.tolist(),
                "y": [int(v) for v in counts[narrative].to_numpy()],
            }
            for narrative in sorted(tagged["narrative"].unique())
        ]
        out.append(
            {
                "lang": lang,
                "posts": len(part),
                "tagged": len(tagged),
                "buckets": totals.index.tolist(),
                "totals": [int(v) for v in totals.to_numpy()],
                "series": series,
            }
        )
    return {"bucket": unit, "languages": out}


# The categorical colours (Plotly's "D3" and "Alphabet" sequences, by frequency rank).
_LANGUAGE_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip
_NARRATIVE_COLORS = [
    "#AA0DFE", "#3283FE", "#85660D", "#782AB6", "#565656", "#1C8356", "#16FF32",
    "#F7E1A0", "#E2E2E2", "#1CBE4F", "#C4451C", "#DEA0FD", "#FE00FA", "#325A9B",
    "#FEAF16", "#F8A19F", "#90AD1C", "#F6222E", "#1CFFCE", "#2ED9FF", "#B10DA1",
    "#C075A6", "#FC1CBF", "#B00068", "#FBE426", "#FA0087",
]  # fmt: skip


def _palette(keys: list[Any], colors: list[str]) -> dict[str, str]:
    return {str(k): colors[i % len(colors)] for i, k in enumerate(keys)}


__all__ = ["ReportConfig", "build_report", "rejection_reasons", "report_data", "write_report"]
