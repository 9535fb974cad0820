"""Evaluation of :mod:`narratives.operators.coordination` on dumps with a known coordinated group.

A dump is built, with a seed, from real posts (the Chinese state-media Facebook pages in
``../shared/data/external``: world and China news, so every page posts on the same
subjects) and from the taxonomy's exemplars, which are written as translations of each
other (English, Chinese, Russian, Spanish):

- ``groups`` groups of ``group_size`` coordinated pages each run a campaign of
  ``messages`` messages; each message is posted by 2 or 3 pages of its group within 8
  minutes: a real post copied exactly or edited (a
  hashtag, an emoji, a link or a "BREAKING:" added, the last words cut), or, for one
  message in three, an exemplar, each page posting it in a different language;
- ``independent`` pages post real posts of the same pool (each post once: pages do not
  copy each other, though outlets in the pool cover the same stories), a third of them
  within ten minutes of a campaign message (so that time alone does not give a group
  away), the rest at any time in the 60 days; the groups' pages post such posts too.

Scored: the page pairs :func:`narratives.operators.coordination.page_edges` links, against the pairs
of group pages that posted a message together (precision, recall); and the share of
campaign postings of each kind (copy, edit, translation) that ended in a cluster with
another posting of their message. A second dump, the same without the copied and edited
messages, asks whether translations alone give the groups away.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.errors import InputError
from narratives.operators.coordination import CoordinationConfig, find_coordination

FB = "cn-state-media-facebook-2022/fb_posts_cn_state_media_2022.csv"


def _pool(data: Path) -> list[str]:
    path = data / FB
    if not path.exists():
        raise InputError(f"{path} not found: the evaluation builds its dumps from it")
    frame = pd.read_csv(path, usecols=["CONTENT"]).dropna()
    texts = frame["CONTENT"].astype(str).str.strip()
    texts = texts[(texts.str.len() >= 60) & (texts.str.len() <= 600)].drop_duplicates()
    return sorted(texts.tolist())


def _parallel() -> list[dict[str, str]]:
    """Exemplar sentences the taxonomy gives in several languages, by position."""
    from narratives.tagging.taxonomy import load_taxonomy

    sets: list[dict[str, str]] = []
    for node in load_taxonomy().nodes:
        langs: list[str] = [lang for lang in ("en", "zh", "ru", "es") if node.exemplars.get(lang)]
        if len(langs) < 2:
            continue
        for i in range(min(len(node.exemplars[lang]) for lang in langs)):
            sets.append({lang: node.exemplars[lang][i] for lang in langs})
    return sets


def _edit(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return f"{text} #StandWithChina"
    if kind == 1:
        return f"BREAKING: {text}"
    if kind == 2:
        return f"{text} 👉 https://t.co/{int(rng.integers(10**6, 10**7))}"
    return " ".join(words[: max(6, int(len(words) * 0.85))])


def build_dump(
    data: Path,
    *,
    groups: int = 2,
    group_size: int = 5,
    independent: int = 150,
    messages: int = 30,
    posts_per_page: int = 30,
    seed: int = 0,
) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """Posts (post_id, page_id, created_at, status, text, lang, kind, message) and the true
    coordinated page pairs (pages of one group that posted a message together)."""
    from narratives.embedding.langid import detect_languages

    rng = np.random.default_rng(seed)
    pool = list(rng.permutation(_pool(data)))
    parallel = _parallel()
    start = pd.Timestamp("2022-03-01", tz="UTC")
    span = 60 * 86400
    rows: list[dict[str, Any]] = []
    all_bases = []
    for g in range(groups):
        members = [f"group{g}-{i}" for i in range(group_size)]
        bases = rng.uniform(0, span, messages)
        all_bases += bases.tolist()
        for m, base in enumerate(bases):
            pages = sorted(rng.choice(members, int(rng.integers(2, 4)), replace=False))
            translated = m % 3 == 2
            if translated:
                variants = parallel[int(rng.integers(len(parallel)))]
                langs = list(rng.permutation(sorted(variants)))
            else:
                text = pool.pop()
            for k, page in enumerate(pages):
                if translated:
                    body, kind = variants[langs[k % len(langs)]], "translation"
                elif rng.random() < 0.5:
                    body, kind = text, "copy"
                else:
                    body, kind = _edit(text, rng), "edit"
                at = base + rng.uniform(0, 8 * 60)
                message = g * messages + m
                rows.append({"page_id": page, "t": at, "text": body, "kind": kind,
                             "message": message})  # fmt: skip
    everyone = sorted({r["page_id"] for r in rows}) + [f"page-{i:03d}" for i in range(independent)]
    for page in everyone:
        for _ in range(posts_per_page):
            if rng.random() < 1 / 3:  # on the same subjects, at the same moments
                at = all_bases[int(rng.integers(len(all_bases)))] + rng.uniform(-600, 600)
            else:
                at = rng.uniform(0, span)
            rows.append({"page_id": page, "t": at, "text": pool.pop(), "kind": "other",
                         "message": -1})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["created_at"] = start + pd.to_timedelta(frame.pop("t"), unit="s")
    frame["post_id"] = [f"e{i}" for i in range(len(frame))]
    frame["status"] = "ok"
    frame["lang"] = detect_languages(frame["text"].tolist())[0]
    return frame, true_pairs(frame)


def true_pairs(posts: pd.DataFrame) -> set[tuple[str, str]]:
    """Pairs of pages that posted one campaign message (``message`` >= 0) together."""
    truth: set[tuple[str, str]] = set()
    for _, pages in posts[posts["message"] >= 0].groupby("message")["page_id"]:
        truth.update(itertools.combinations(sorted(set(pages)), 2))
    return truth


def score_dump(
    posts: pd.DataFrame,
    vectors: np.ndarray | None,
    truth: set[tuple[str, str]],
    config: CoordinationConfig,
) -> dict[str, Any]:
    clusters, edges = find_coordination(posts, vectors, config)
    found = {(r.page_a, r.page_b) for r in edges.itertuples()}
    right = len(found & truth)
    by_post = clusters.set_index("post_id")["cluster_id"]
    campaign = posts[posts["message"] >= 0].assign(cluster=lambda f: f["post_id"].map(by_post))
    recall_by_kind = {}
    for kind, part in campaign.groupby("kind"):
        hits = 0
        for row in part.itertuples():
            if pd.isna(row.cluster):
                continue
            same = (campaign["message"] == row.message) & (campaign["cluster"] == row.cluster)
            mates = campaign[same]
            hits += len(mates) > 1
        recall_by_kind[kind] = round(hits / len(part), 3)
    return {
        "threshold": f"{config.threshold:g} / {config.margin:g}",
        "precision": round(right / len(found), 3) if found else None,
        "recall": round(right / len(truth), 3),
        "pairs_found": len(found),
        "pairs_true": len(truth),
        "postings_clustered": recall_by_kind,
    }


def evaluate(
    data: str | Path = "../shared/data/external",
    *,
    seed: int = 0,
    thresholds: tuple[tuple[float, float], ...] = (
        (0.92, 1.02),
        (0.94, 1.0),
        (0.94, 1.02),
        (0.94, 1.04),
        (0.96, 1.02),
    ),
    embedder: Any = None,
    **sizes: int,
) -> dict[str, Any]:
    """P/R of page pairs and recall of postings by kind, per (same-language cosine,
    cross-language margin), then for exact copies only and for translations alone."""
    from narratives.embedding.embedder import Embedder
    from narratives.embedding.text_cache import open_cache

    posts, truth = build_dump(Path(data), seed=seed, **sizes)
    texts = posts["text"].tolist()
    if embedder is None:
        embedder = Embedder("default")
        with contextlib.closing(open_cache(True, embedder)) as cache:  # a rerun embeds nothing
            vectors = embedder.encode(texts, cache)
    else:
        vectors = embedder.encode(texts)
    rows = [
        score_dump(posts, vectors, truth, CoordinationConfig(threshold=t, margin=m))
        for t, m in thresholds
    ]
    plain = score_dump(posts, vectors, truth, CoordinationConfig(margin=0))
    plain["threshold"] = "0.94 / none: cosine 0.90 in two languages"
    exact = score_dump(posts, None, truth, CoordinationConfig())
    exact["threshold"] = "exact only"
    alone = ~posts["kind"].isin(["copy", "edit"]).to_numpy()
    translated = []
    for config, label in (
        (CoordinationConfig(), "default"),
        (CoordinationConfig(margin=0), "no margin"),
    ):
        row = score_dump(posts[alone], vectors[alone], true_pairs(posts[alone]), config)
        row["threshold"] = f"{label}, translated messages alone"
        translated.append(row)
    return {
        "seed": seed,
        "posts": len(posts),
        "pages": int(posts["page_id"].nunique()),
        "rows": [*rows, plain, exact, *translated],
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        "| cosine one language / margin two | precision | recall | pairs found / true "
        "| copies | edits | translations |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        k = r["postings_clustered"]
        lines.append(
            f"| {r['threshold']} | {r['precision']} | {r['recall']} | "
            f"{r['pairs_found']} / {r['pairs_true']} | {k.get('copy', '-')} | "
            f"{k.get('edit', '-')} | {k.get('translation', '-')} |"
        )
    return "\n".join(lines) + (
        f"\n({result['posts']} posts on {result['pages']} pages, seed {result['seed']})"
    )


__all__ = ["build_dump", "evaluate", "format_table", "score_dump", "true_pairs"]
