"""Coordination: the same message posted by different pages within minutes of each other,
copied, lightly edited or translated.

Two posts are linked when they come from different pages, lie at most ``window_minutes``
apart, and either carry the same text (after the text cache's normalisation: NFC,
whitespace runs as one space; found without the encoder) or have multilingual
embeddings close enough: a cosine of at least ``threshold`` when both are in one language
(copies, edits, paraphrases); in two languages (translations), a cosine that stands out
from what each post scores against ordinary posts of the other's language.

That second test is the margin criterion of cross-lingual sentence mining (Artetxe and
Schwenk, 2019): e5 vectors carry their language, so a Chinese post and its English
translation may score 0.83 while two unrelated English and Chinese news posts score 0.90,
and no single cut-off separates them. The margin is the pair's cosine over the mean of
each post's ``neighbours`` highest cosines with ``reference`` posts of the other language,
taken away from the moment of the post (outside its window, so that the other copies of
a campaign do not count as ordinary); translations stand clear of 1, loosely related
posts do not. Where a language has too few posts for that, ``cross_threshold`` applies.

A cluster is a connected group of linked posts; the page network links two pages by the
number of clusters both posted in.

The search walks the posts in time order a block at a time and compares each block only
with the posts up to ``window_minutes`` after it (one matrix product per block), so its
cost grows with the posts times the posts in a window, not with the square of the dump.
:func:`brute_force_pairs` compares every pair; a test and ``benchmarks/bench_coordination.py``
check that both give the same links.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .embcache import normalise
from .timelines import timed_rows


@dataclass
class CoordinationConfig:
    """Settings of :func:`find_coordination`."""

    window_minutes: float = 10.0
    # cosines of two posts' embeddings (multilingual-e5-small) in the same language, and
    # in two languages: e5 vectors carry their language, so a translation scores lower
    # than a paraphrase, and the same story told by two outlets in one language higher
    threshold: float = 0.94
    # two languages: the pair's cosine over the mean of both posts' ``neighbours`` highest
    # cosines with ``reference`` posts of the other language (outside their window) ...
    margin: float = 1.02
    # ... for pairs with a cosine of at least this (a translation in e5 scores >= 0.82)
    cross_floor: float = 0.82
    # ... and a plain cosine where a language has fewer than ``neighbours`` such posts
    # (or everywhere, with margin 0)
    cross_threshold: float = 0.90
    neighbours: int = 4
    reference: int = 2048  # posts of each language the neighbour cosines are taken from
    block: int = 1024  # posts compared at a time (memory: block x posts in a window)
    min_weight: int = 2  # clusters two pages share before they are linked: once is chance

    def __post_init__(self) -> None:
        if self.window_minutes <= 0:
            raise ValueError("window_minutes must be positive")
        for name in ("threshold", "cross_floor", "cross_threshold"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a cosine: between -1 and 1")
        if self.margin < 0:
            raise ValueError("margin must be >= 0 (1: no closer than usual; 0: no margin test)")
        if self.neighbours < 1 or self.reference < self.neighbours:
            raise ValueError("neighbours must be at least 1 and reference at least neighbours")
        if self.block < 1 or self.min_weight < 1:
            raise ValueError("block and min_weight must be at least 1")


def text_keys(texts: Any) -> np.ndarray:
    """64-bit keys of the normalised texts: equal texts, equal keys."""
    normalised = np.array([normalise(str(t)) for t in texts], dtype=object)
    return pd.util.hash_array(normalised, categorize=False).astype(np.uint64)


def _links(
    rows: np.ndarray,
    cols: np.ndarray,
    sims: np.ndarray | None,
    times: np.ndarray,
    pages: np.ndarray,
    keys: np.ndarray,
    langs: np.ndarray,
    window: int,
    cfg: CoordinationConfig,
) -> np.ndarray:
    """Mask of linked pairs among (rows x cols) of the time-sorted posts."""
    r, c = rows[:, None], cols[None, :]
    mask = (c > r) & (times[c] - times[r] <= window) & (pages[c] != pages[r])
    same = keys[r] == keys[c]
    if sims is None:
        return mask & same
    # pairs in two languages are candidates here; _decide decides
    cut = np.where(langs[r] == langs[c], cfg.threshold, min(cfg.cross_floor, cfg.cross_threshold))
    return mask & (same | (sims >= cut))


def neighbour_cosines(
    vectors: np.ndarray,
    times: np.ndarray,
    langs: np.ndarray,
    queries: np.ndarray,
    targets: np.ndarray,
    window: int,
    cfg: CoordinationConfig,
) -> np.ndarray:
    """Per (query post, target language code): the mean of the post's ``neighbours``
    highest cosines with the target language's reference posts (at most ``reference`` of
    them, evenly spread in time) that lie more than ``window`` from it; NaN where fewer
    than ``neighbours`` such posts exist."""
    out = np.full(len(queries), np.nan)
    k = cfg.neighbours
    for lang in np.unique(targets):
        members = np.flatnonzero(langs == lang)
        if len(members) < k:
            continue
        ref = members[
            np.unique(np.linspace(0, len(members) - 1, cfg.reference).round().astype(int))
        ]
        asked = np.flatnonzero(targets == lang)
        for a in range(0, len(asked), 4096):
            part = asked[a : a + 4096]
            q = queries[part]
            sims = vectors[q] @ vectors[ref].T
            sims[np.abs(times[q][:, None] - times[ref][None, :]) <= window] = -np.inf
            top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
            out[part] = np.where(np.isfinite(top).all(axis=1), top.mean(axis=1), np.nan)
    return out


def _decide(
    i: np.ndarray,
    j: np.ndarray,
    vectors: np.ndarray | None,
    times: np.ndarray,
    keys: np.ndarray,
    langs: np.ndarray,
    window: int,
    cfg: CoordinationConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs that are links: all but those in two languages (and not the
    same text) that fail the margin test (see the module), or the plain cosine where
    there is no margin."""
    check = np.flatnonzero((langs[i] != langs[j]) & (keys[i] != keys[j]))
    if vectors is None or not len(check):
        return i, j
    keep = np.ones(len(i), dtype=bool)
    a, b = i[check], j[check]
    cos = np.einsum("ij,ij->i", vectors[a], vectors[b])
    if cfg.margin == 0:
        keep[check] = cos >= cfg.cross_threshold
        return i[keep], j[keep]
    # each post against ordinary posts of the other's language, asked once per combination
    n_langs = int(langs.max()) + 1
    asked, inverse = np.unique(
        np.r_[a, b].astype(np.int64) * n_langs + np.r_[langs[b], langs[a]], return_inverse=True
    )
    usual = neighbour_cosines(
        vectors, times, langs, asked // n_langs, asked % n_langs, window, cfg
    )[inverse]
    pair_usual = usual.reshape(2, -1).mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        passed = np.where(
            np.isfinite(pair_usual),
            (cos >= cfg.cross_floor) & (cos >= cfg.margin * pair_usual),
            cos >= cfg.cross_threshold,
        )
    keep[check] = passed
    return i[keep], j[keep]


def coordinated_pairs(
    times: np.ndarray,
    pages: np.ndarray,
    keys: np.ndarray,
    vectors: np.ndarray | None,
    config: CoordinationConfig | None = None,
    langs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linked pairs (i < j, positions in the inputs, which must be sorted by time).

    ``times`` int64 (any unit the window is given in: nanoseconds here), ``pages`` one
    code per page, ``keys`` from :func:`text_keys`, ``vectors`` L2-normalised float32
    (n, d) or None (exact copies only), ``langs`` one code per language (None: all one)."""
    cfg = config or CoordinationConfig()
    langs = np.zeros(len(times), dtype=np.int64) if langs is None else langs
    window = int(cfg.window_minutes * 60e9)
    n = len(times)
    if n and np.any(np.diff(times) < 0):
        raise ValueError("posts must be sorted by time")
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    for a in range(0, n, cfg.block):
        b = min(a + cfg.block, n)
        hi = int(np.searchsorted(times, times[b - 1] + window, side="right"))
        rows = np.arange(a, b)
        for c0 in range(a, hi, 16384):
            cols = np.arange(c0, min(c0 + 16384, hi))
            sims = None if vectors is None else vectors[a:b] @ vectors[cols].T
            ii, jj = np.nonzero(_links(rows, cols, sims, times, pages, keys, langs, window, cfg))
            found_i.append(rows[ii])
            found_j.append(cols[jj])
    if not found_i:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return _decide(np.concatenate(found_i), np.concatenate(found_j), vectors, times, keys,
                   langs, window, cfg)  # fmt: skip


def brute_force_pairs(
    times: np.ndarray,
    pages: np.ndarray,
    keys: np.ndarray,
    vectors: np.ndarray | None,
    config: CoordinationConfig | None = None,
    langs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair compared (quadratic): the reference :func:`coordinated_pairs` must match."""
    cfg = config or CoordinationConfig()
    langs = np.zeros(len(times), dtype=np.int64) if langs is None else langs
    window = int(cfg.window_minutes * 60e9)
    n = len(times)
    order = np.arange(n)
    found_i, found_j = [], []
    for a in range(0, n, 2048):
        rows = order[a : a + 2048]
        sims = None if vectors is None else vectors[rows] @ vectors.T
        mask = _links(rows, order, sims, times, pages, keys, langs, window, cfg)
        # _links keeps c > r, which for sorted times is "later or tied, after in order"
        ii, jj = np.nonzero(mask)
        found_i.append(rows[ii])
        found_j.append(jj)
    return _decide(np.concatenate(found_i), np.concatenate(found_j), vectors, times, keys,
                   langs, window, cfg)  # fmt: skip


def clusters_of(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component label per post of the link graph (-1 for posts with no link)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    linked = np.zeros(n, dtype=bool)
    linked[i] = True
    linked[j] = True
    return np.where(linked, labels, -1)


def find_coordination(
    posts: pd.DataFrame,
    embeddings: np.ndarray | None,
    config: CoordinationConfig | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """coordination.parquet (a row per post in a cluster) and coordination_edges.parquet
    (page pairs, by the clusters they share) from scored posts and their embeddings
    (None: exact copies only)."""
    cfg = config or CoordinationConfig()
    rows = timed_rows(posts)
    times = posts["created_at"].to_numpy(dtype="datetime64[ns]")[rows].astype(np.int64)
    order = np.argsort(times, kind="stable")
    rows, times = rows[order], times[order]
    page_ids = posts["page_id"].to_numpy(dtype=object)[rows].astype(str)
    pages = pd.factorize(page_ids)[0]
    keys = text_keys(posts["text"].to_numpy(dtype=object)[rows])
    langs = None
    if "lang" in posts:
        langs = pd.factorize(posts["lang"].to_numpy(dtype=object)[rows].astype(str))[0]
    vectors = None if embeddings is None else np.ascontiguousarray(embeddings[rows])
    i, j = coordinated_pairs(times, pages, keys, vectors, cfg, langs)
    labels = clusters_of(len(rows), i, j)
    member = labels >= 0
    frame = pd.DataFrame(
        {
            "row": rows[member],
            "label": labels[member],
            "time": times[member],
            "page": page_ids[member],
            "key": keys[member],
        }
    )
    # clusters numbered by their first post's time
    first = frame.groupby("label")["time"].min().sort_values(kind="stable")
    number = pd.Series(np.arange(len(first)), index=first.index)
    frame["cluster_id"] = frame["label"].map(number).astype(np.int64)
    frame["cluster_posts"] = frame.groupby("cluster_id")["row"].transform("size")
    frame["cluster_pages"] = frame.groupby("cluster_id")["page"].transform("nunique")
    frame["exact_copy"] = frame.duplicated(["cluster_id", "key"], keep=False)
    frame = frame.sort_values(["cluster_id", "time", "row"], kind="stable")
    source = posts.iloc[frame["row"].to_numpy()]
    clusters = pd.DataFrame(
        {
            "cluster_id": frame["cluster_id"].to_numpy(),
            "post_id": source["post_id"].astype(str).to_numpy(),
            "page_id": frame["page"].to_numpy(),
            "created_at": source["created_at"].to_numpy(),
            "cluster_posts": frame["cluster_posts"].to_numpy(dtype=np.int64),
            "cluster_pages": frame["cluster_pages"].to_numpy(dtype=np.int64),
            "exact_copy": frame["exact_copy"].to_numpy(dtype=bool),
        }
    )
    return clusters, page_edges(clusters, cfg.min_weight)


def page_edges(clusters: pd.DataFrame, min_weight: int = 1) -> pd.DataFrame:
    """Page pairs with the number of clusters both posted in (``weight``).

    A pair is kept from ``min_weight`` shared clusters up, or with fewer when both pages
    are already joined through such pairs (``corroborated``): two outlets may carry the
    same story once by chance, but a single shared message between two members of a group
    that co-posts again and again is the group's doing."""
    columns = ["page_a", "page_b", "weight", "first_at", "last_at", "corroborated"]
    per = clusters.groupby("cluster_id").agg(
        pages=("page_id", lambda s: sorted(set(s))), at=("created_at", "min")
    )
    pairs: dict[tuple[str, str], list] = {}
    for page_list, at in zip(per["pages"], per["at"]):
        for x in range(len(page_list)):
            for y in range(x + 1, len(page_list)):
                entry = pairs.setdefault((page_list[x], page_list[y]), [0, at, at])
                entry[0] += 1
                entry[1], entry[2] = min(entry[1], at), max(entry[2], at)
    strong = [pair for pair, (w, _, _) in pairs.items() if w >= min_weight]
    group = _components(strong)
    rows = [
        (a, b, w, f, last, w < min_weight)
        for (a, b), (w, f, last) in pairs.items()
        if w >= min_weight or (a in group and group.get(a) == group.get(b))
    ]
    edges = pd.DataFrame(rows, columns=columns)
    return edges.sort_values(["weight", "page_a", "page_b"], ascending=[False, True, True])


def _components(pairs: list[tuple[str, str]]) -> dict[str, int]:
    """Connected component number of each page of ``pairs``: the largest first, ties by
    their first page's name."""
    import networkx as nx

    parts = nx.connected_components(nx.Graph(pairs))
    ranked = sorted((sorted(part) for part in parts), key=lambda part: (-len(part), part[0]))
    return {page: k for k, part in enumerate(ranked) for page in part}


def network_groups(edges: pd.DataFrame) -> dict[str, str]:
    """The groups of the page network (coordination_edges.parquet): page id ->
    ``coordination-K``, K from 1 for the largest group."""
    pairs = list(zip(edges["page_a"].astype(str), edges["page_b"].astype(str)))
    return {page: f"coordination-{k + 1}" for page, k in _components(pairs).items()}


def write_graphml(edges: pd.DataFrame, path: str | Path) -> Path:
    """The page network as GraphML (pages as nodes, ``weight`` on edges)."""
    import networkx as nx

    graph = nx.Graph()
    for row in edges.itertuples(index=False):
        graph.add_edge(str(row.page_a), str(row.page_b), weight=int(row.weight))
    nx.write_graphml(graph, str(path))
    return Path(path)


def write_coordination(
    scored_dir: str | Path,
    config: CoordinationConfig | None = None,
    *,
    exact_only: bool = False,
    graphml: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """coordination.parquet and coordination_edges.parquet in a folder written by
    narratives score (and the page network as GraphML when asked); pages.parquet gains
    ``coordination_clusters``, the ids of the clusters each page posted in."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .score import load_scored

    scored = Path(scored_dir)
    result = load_scored(scored)
    embeddings = None if exact_only else np.asarray(result.embeddings)
    clusters, edges = find_coordination(result.posts, embeddings, config)
    ids = clusters.groupby("page_id")["cluster_id"].agg(lambda s: sorted(set(s)))
    pages = pq.read_table(scored / "pages.parquet")  # as written: its types stay
    if "coordination_clusters" in pages.column_names:
        pages = pages.drop_columns(["coordination_clusters"])
    column = pa.array([ids.get(p, []) for p in pages.column("page_id").to_pylist()],
                      type=pa.list_(pa.int64()))  # fmt: skip
    tables = (
        (pa.Table.from_pandas(clusters, preserve_index=False), "coordination.parquet"),
        (pa.Table.from_pandas(edges, preserve_index=False), "coordination_edges.parquet"),
        (pages.append_column("coordination_clusters", column), "pages.parquet"),
    )
    for table, name in tables:
        tmp = scored / f".{name}.tmp"
        pq.write_table(table, tmp)
        tmp.replace(scored / name)
    if graphml is not None:
        write_graphml(edges, graphml)
    return clusters, edges


__all__ = [
    "CoordinationConfig",
    "brute_force_pairs",
    "clusters_of",
    "coordinated_pairs",
    "find_coordination",
    "neighbour_cosines",
    "network_groups",
    "page_edges",
    "text_keys",
    "write_coordination",
    "write_graphml",
]
