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
each post's ``neighbours`` highest cosines with ``reference`` posts of the other language:
the latest before the post's window (not within it, so that the other copies of a
campaign do not count as ordinary; not after it, so that what a post is compared with
never changes when later posts come, which lets an update search only its window). Where
that language has too few posts before it, the latest posts of any language stand in;
where even those are too few, ``cross_threshold`` applies.

A cluster is a connected group of linked posts; the page network links two pages by the
number of clusters both posted in.

The search walks the posts in time order a block at a time and compares each block only
with the posts up to ``window_minutes`` after it (one matrix product per block), so its
cost grows with the posts times the posts in a window, not with the square of the dump.
:func:`brute_force_pairs` compares every pair; a test and ``benchmarks/bench_coordination.py``
check that both give the same links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.embedding.text_cache import normalise
from narratives.scored import (
    ScoredFolder,
    table_settings,
    timed_rows,
    vector_matrix,
    write_table,
)


@dataclass
class CoordinationConfig:
    """Settings of :func:`find_coordination`."""

    window_minutes: float = 10.0
    # cosines of two posts' embeddings (multilingual-e5-small) in the same language, and
    # in two languages: e5 vectors carry their language, so a translation scores lower
    # than a paraphrase, and the same story told by two outlets in one language higher
    threshold: float = 0.94
    # two languages: the pair's cosine over the mean of both posts' ``neighbours`` highest
    # cosines with the latest ``reference`` posts of the other language before their
    # window ...
    margin: float = 1.02
    # ... for pairs with a cosine of at least this (a translation in e5 scores >= 0.82)
    cross_floor: float = 0.82
    # ... and a plain cosine where a language has fewer than ``neighbours`` such posts
    # (or everywhere, with margin 0)
    cross_threshold: float = 0.90
    neighbours: int = 4
    reference: int = 2048  # the latest posts of a language the neighbour cosines are of
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


#: Columns (later posts) a block of ``block`` posts is compared with at a time: the
#: search holds at most block x this many candidate pairs, with their cosines, however
#: many posts one window holds (a campaign burst of 40,000 posts in ten minutes is 800
#: million pairs).
_COLUMNS = 8192


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
    """Mask of candidate pairs among (rows x cols) of the time-sorted posts."""
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
    highest cosines with the target language's reference posts, the ``reference`` latest
    posts of that language more than ``window`` before it (``times`` sorted); NaN where
    fewer than ``neighbours`` such posts exist."""
    usual = _UsualCosines(vectors, times, langs, window, cfg)
    return usual.compute(queries, targets)


class _UsualCosines:
    """:func:`neighbour_cosines` of (post, language) combinations, each computed once and
    kept while the search may ask again: :meth:`forget_before` drops the posts the search
    has passed, so what is kept grows with a window's posts, not with the dump.

    A post's references lie before it (more than a window before): what it is compared
    with never changes when later posts come, which is what lets ``narratives update``
    search only the window of its new posts. ``pool`` (vectors, times, language codes,
    sorted by time) holds the references when they are not the posts themselves (an
    update's: the latest posts of each language before its window, then the window's)."""

    def __init__(
        self,
        vectors: np.ndarray,
        times: np.ndarray,
        langs: np.ndarray,
        window: int,
        cfg: CoordinationConfig,
        pool: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.vectors, self.times, self.langs, self.window, self.cfg = (
            vectors, times, langs, window, cfg
        )  # fmt: skip
        self.pool_vectors, self.pool_times, pool_langs = pool or (vectors, times, langs)
        self.n_langs = int(max(langs.max(initial=0), pool_langs.max(initial=0))) + 1
        order = np.argsort(pool_langs, kind="stable")
        codes, starts = np.unique(pool_langs[order], return_index=True)
        #: per language code, its pool rows in time order
        self.members = {int(c): m for c, m in zip(codes, np.split(order, starts[1:])) if len(m)}
        self.codes = np.zeros(0, dtype=np.int64)  # post * n_langs + language, sorted
        self.values = np.zeros(0, dtype=np.float64)

    def compute(self, queries: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The mean cosine of each query post with its ``neighbours`` nearest references
        of its target language; where that language has too few posts before the query
        (one seldom written: the first translations into it), with the latest posts of
        any language before it; NaN where even those are too few."""
        out = np.full(len(queries), np.nan)
        every = np.arange(len(self.pool_times))
        few = []
        for lang in np.unique(targets):
            asked = np.flatnonzero(targets == lang)
            members = self.members.get(int(lang), every[:0])
            done = self._nearest(queries[asked], members, out, asked)
            few.append(asked[~done])
        rest = np.concatenate(few) if few else every[:0]
        if len(rest):
            self._nearest(queries[rest], every, out, rest)
        return out

    def _nearest(
        self, queries: np.ndarray, members: np.ndarray, out: np.ndarray, at: np.ndarray
    ) -> np.ndarray:
        """``out[at]``: each query's mean cosine with its ``neighbours`` nearest among the
        latest ``reference`` of ``members`` (pool rows in time order) before its window;
        which queries had enough of them."""
        cfg, k = self.cfg, self.cfg.neighbours
        cut = np.searchsorted(self.pool_times[members], self.times[queries] - self.window)
        lo = np.maximum(cut - cfg.reference, 0)
        enough = cut - lo >= k
        which = np.flatnonzero(enough)
        order = which[np.argsort(cut[which], kind="stable")]
        for part in _spans(cut[order], lo[order], 4 * cfg.reference, 1024):
            who = order[part]
            first, last = int(lo[who].min()), int(cut[who].max())
            sims = self.vectors[queries[who]] @ self.pool_vectors[members[first:last]].T
            span = np.arange(first, last)[None, :]
            sims[(span < lo[who][:, None]) | (span >= cut[who][:, None])] = -np.inf
            top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
            out[at[who]] = top.mean(axis=1)
        return enough

    def __call__(self, posts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        codes = posts.astype(np.int64) * self.n_langs + targets
        asked, inverse = np.unique(codes, return_inverse=True)
        where = np.searchsorted(self.codes, asked)
        known = where < len(self.codes)
        known[known] = self.codes[where[known]] == asked[known]
        values = np.empty(len(asked))
        values[known] = self.values[where[known]]
        new = asked[~known]
        if len(new):
            values[~known] = self.compute(new // self.n_langs, new % self.n_langs)
            order = np.argsort(np.r_[self.codes, new], kind="stable")
            self.codes = np.r_[self.codes, new][order]
            self.values = np.r_[self.values, values[~known]][order]
        return values[inverse]

    def forget_before(self, post: int) -> None:
        first = int(np.searchsorted(self.codes, post * self.n_langs))
        self.codes, self.values = self.codes[first:], self.values[first:]


def _spans(cut: np.ndarray, lo: np.ndarray, width: int, most: int) -> Iterator[slice]:
    """Runs of queries (sorted by ``cut``) whose references together span at most about
    ``width`` posts, at most ``most`` queries each: what one matrix product holds."""
    start = 0
    n = len(cut)
    while start < n:
        end = start + 1
        low = lo[start]
        while end < n and end - start < most and cut[end] - min(low, lo[end]) <= width:
            low = min(low, lo[end])
            end += 1
        yield slice(start, end)
        start = end


def _decide(
    i: np.ndarray,
    j: np.ndarray,
    cos: np.ndarray | None,
    keys: np.ndarray,
    langs: np.ndarray,
    usual: _UsualCosines | None,
    cfg: CoordinationConfig,
) -> np.ndarray:
    """Which candidate pairs (posts i, j with cosines ``cos``) are links: all but those in
    two languages (and not the same text) that fail the margin test (see the module), or
    the plain cosine where there is no margin."""
    keep = np.ones(len(i), dtype=bool)
    check = np.flatnonzero((langs[i] != langs[j]) & (keys[i] != keys[j]))
    if cos is None or usual is None or not len(check):
        return keep
    a, b, pair_cos = i[check], j[check], cos[check]
    if cfg.margin == 0:
        keep[check] = pair_cos >= cfg.cross_threshold
        return keep
    # each post against ordinary posts of the other's language
    pair_usual = 0.5 * (usual(a, langs[b]) + usual(b, langs[a]))
    with np.errstate(invalid="ignore"):
        keep[check] = np.where(
            np.isfinite(pair_usual),
            (pair_cos >= cfg.cross_floor) & (pair_cos >= cfg.margin * pair_usual),
            pair_cos >= cfg.cross_threshold,
        )
    return keep


def pair_blocks(
    times: np.ndarray,
    pages: np.ndarray,
    keys: np.ndarray,
    vectors: np.ndarray | None,
    config: CoordinationConfig | None = None,
    langs: np.ndarray | None = None,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Linked pairs (i < j, positions in the inputs, which must be sorted by time), a block
    at a time: each block compares ``block`` posts with at most ``_COLUMNS`` later ones,
    so that what is held at once is bounded whatever a window holds. Arguments as
    :func:`coordinated_pairs`."""
    cfg = config or CoordinationConfig()
    langs = np.zeros(len(times), dtype=np.int64) if langs is None else langs
    window = int(cfg.window_minutes * 60e9)
    n = len(times)
    if n and np.any(np.diff(times) < 0):
        raise ValueError("posts must be sorted by time")
    usual = None if vectors is None else _UsualCosines(vectors, times, langs, window, cfg, pool)
    for a in range(0, n, cfg.block):
        b = min(a + cfg.block, n)
        hi = int(np.searchsorted(times, times[b - 1] + window, side="right"))
        rows = np.arange(a, b)
        if usual is not None:
            usual.forget_before(a)  # later blocks ask only of posts from a on
        for c0 in range(a, hi, _COLUMNS):
            cols = np.arange(c0, min(c0 + _COLUMNS, hi))
            sims = None if vectors is None else vectors[a:b] @ vectors[cols].T
            ii, jj = np.nonzero(_links(rows, cols, sims, times, pages, keys, langs, window, cfg))
            if not len(ii):
                continue
            i, j = rows[ii], cols[jj]
            keep = _decide(i, j, None if sims is None else sims[ii, jj], keys, langs, usual, cfg)
            if keep.any():
                yield i[keep], j[keep]


def coordinated_pairs(
    times: np.ndarray,
    pages: np.ndarray,
    keys: np.ndarray,
    vectors: np.ndarray | None,
    config: CoordinationConfig | None = None,
    langs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Linked pairs (i < j, positions in the inputs, which must be sorted by time), all of
    them at once (:func:`find_coordination` takes them a block at a time instead, see
    :func:`pair_blocks`).

    ``times`` int64 (any unit the window is given in: nanoseconds here), ``pages`` one
    code per page, ``keys`` from :func:`text_keys`, ``vectors`` L2-normalised float32
    (n, d) or None (exact copies only), ``langs`` one code per language (None: all one)."""
    found = list(pair_blocks(times, pages, keys, vectors, config, langs))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    i, j = (np.concatenate(x) for x in zip(*found))
    return i, j


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
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    cos = None if vectors is None else np.einsum("ij,ij->i", vectors[i], vectors[j])
    usual = None if vectors is None else _UsualCosines(vectors, times, langs, window, cfg)
    keep = _decide(i, j, cos, keys, langs, usual, cfg)
    return i[keep], j[keep]


def clusters_of(n: int, blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Group label per post of the link graph given as blocks of pairs (i, j): the
    smallest post of its group, -1 for a post with no link. The blocks are joined as
    they come and not kept."""
    from narratives.operators._unionfind import DisjointSets

    groups = DisjointSets(n)
    for i, j in blocks:
        groups.join(i, j)
    return groups.labels()


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
    labels = clusters_of(len(rows), pair_blocks(times, pages, keys, vectors, cfg, langs))
    member = labels >= 0
    source = posts.iloc[rows[member]]
    frame = pd.DataFrame(
        {
            "row": rows[member],
            "label": labels[member],
            "time": times[member],
            "page": page_ids[member],
            "key": keys[member],
            "post_id": source["post_id"].astype(str).to_numpy(),
            "created_at": source["created_at"].to_numpy(),
        }
    )
    clusters = cluster_table(frame)
    return clusters, page_edges(clusters, cfg.min_weight)


def cluster_table(frame: pd.DataFrame) -> pd.DataFrame:
    """coordination.parquet from the posts in clusters, one row each: ``row`` (its row
    in posts.parquet), ``label`` (its cluster, any number), ``time`` (int64 ns), ``page``,
    ``key`` (:func:`text_keys`), ``post_id``, ``created_at``. Clusters are numbered by
    their first post (time, then row), and a cluster's posts listed in that order, so that
    the table does not depend on how the clusters were found (at once or by updates)."""
    frame = frame.sort_values(["time", "row"], kind="stable")
    first = frame.drop_duplicates("label")["label"]  # in order of their first post
    number = pd.Series(np.arange(len(first)), index=first.to_numpy())
    frame = frame.assign(cluster_id=frame["label"].map(number).astype(np.int64))
    frame["cluster_posts"] = frame.groupby("cluster_id")["row"].transform("size")
    frame["cluster_pages"] = frame.groupby("cluster_id")["page"].transform("nunique")
    frame["exact_copy"] = frame.duplicated(["cluster_id", "key"], keep=False)
    frame = frame.sort_values(["cluster_id", "time", "row"], kind="stable")
    return pd.DataFrame(
        {
            "cluster_id": frame["cluster_id"].to_numpy(),
            "post_id": frame["post_id"].to_numpy(),
            "page_id": frame["page"].to_numpy(),
            "created_at": frame["created_at"].to_numpy(),
            "cluster_posts": frame["cluster_posts"].to_numpy(dtype=np.int64),
            "cluster_pages": frame["cluster_pages"].to_numpy(dtype=np.int64),
            "exact_copy": frame["exact_copy"].to_numpy(dtype=bool),
            "row": frame["row"].to_numpy(dtype=np.int64),
        }
    )


#: Page pairs of clusters expanded at a time in :func:`page_edges` (a cluster spanning
#: 4,000 pages alone holds eight million).
_PAIR_CHUNK = 4_000_000


def page_edges(clusters: pd.DataFrame, min_weight: int = 1) -> pd.DataFrame:
    """Page pairs with the number of clusters both posted in (``weight``).

    A pair is kept from ``min_weight`` shared clusters up, or with fewer when both pages
    are already joined through such pairs (``corroborated``): two outlets may carry the
    same story once by chance, but a single shared message between two members of a group
    that co-posts again and again is the group's doing.

    The pairs of a few clusters are counted at a time and added up, so that what is held
    grows with the distinct pairs found, not with every cluster's."""
    columns = ["page_a", "page_b", "weight", "first_at", "last_at", "corroborated"]
    if clusters.empty:
        return pd.DataFrame(columns=columns)
    codes, names = pd.factorize(clusters["page_id"].astype(str), sort=True)  # name order
    members = pd.DataFrame({"cluster": clusters["cluster_id"].to_numpy(), "page": codes})
    members = members.drop_duplicates().sort_values(["cluster", "page"], kind="stable")
    at = clusters.groupby("cluster_id")["created_at"].min()
    sizes = members.groupby("cluster", sort=True).size()
    n_pages = np.int64(len(names))
    pages = members["page"].to_numpy(dtype=np.int64)
    when = at.loc[sizes.index].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    totals = pd.DataFrame(columns=["weight", "first", "last"], dtype=np.int64)
    pairs: list[np.ndarray] = []
    times: list[np.ndarray] = []
    held = 0
    for k, (start, size) in enumerate(zip(np.r_[0, np.cumsum(sizes)[:-1]], sizes)):
        if size < 2:
            continue
        x, y = np.triu_indices(int(size), k=1)
        group = pages[start : start + size]
        pairs.append(group[x] * n_pages + group[y])
        times.append(np.full(len(x), when[k]))
        held += len(x)
        if held >= _PAIR_CHUNK:
            totals, pairs, times, held = _add_pairs(totals, pairs, times), [], [], 0
    totals = _add_pairs(totals, pairs, times)
    pair = totals.index.to_numpy(dtype=np.int64)
    a, b = pair // n_pages, pair % n_pages
    weight = totals["weight"].to_numpy(dtype=np.int64)
    strong = weight >= min_weight
    group_of = _component_numbers(a[strong], b[strong], len(names))
    keep = strong | ((group_of[a] >= 0) & (group_of[a] == group_of[b]))
    tz = clusters["created_at"].dt.tz
    edges = pd.DataFrame(
        {
            "page_a": names[a[keep]].astype(object),
            "page_b": names[b[keep]].astype(object),
            "weight": weight[keep],
            "first_at": pd.to_datetime(totals["first"].to_numpy()[keep], utc=True).tz_convert(tz),
            "last_at": pd.to_datetime(totals["last"].to_numpy()[keep], utc=True).tz_convert(tz),
            "corroborated": ~strong[keep],
        },
        columns=columns,
    )
    order = np.lexsort((edges["page_b"], edges["page_a"], -edges["weight"].to_numpy()))
    return edges.iloc[order].reset_index(drop=True)


def _add_pairs(
    totals: pd.DataFrame, pairs: list[np.ndarray], times: list[np.ndarray]
) -> pd.DataFrame:
    """``totals`` (per pair code: clusters shared, first and last of their times) with
    the pair occurrences ``pairs`` (codes) at ``times`` (their clusters') added."""
    if not pairs:
        return totals
    part = pd.DataFrame({"pair": np.concatenate(pairs), "at": np.concatenate(times)})
    counted = part.groupby("pair").agg(
        weight=("at", "size"), first=("at", "min"), last=("at", "max")
    )
    if totals.empty:
        return counted.astype(np.int64)
    both = pd.concat([totals, counted])
    return both.groupby(level=0).agg({"weight": "sum", "first": "min", "last": "max"})


def _component_numbers(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Per node 0..n-1, the number of its connected component over the pairs (a, b): the
    largest first, ties by their smallest node (for names in sorted order: by their first
    name); -1 for a node in no pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    linked = np.zeros(n, dtype=bool)
    linked[a] = True
    linked[b] = True
    if not linked.any():
        return np.full(n, -1, dtype=np.int64)
    sizes = np.bincount(labels[linked], minlength=labels.max() + 1)
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, labels[linked], np.flatnonzero(linked))
    present = np.flatnonzero(sizes)
    ranked = present[np.lexsort((first[present], -sizes[present]))]
    number = np.full(len(sizes), -1, dtype=np.int64)
    number[ranked] = np.arange(len(ranked))
    return np.where(linked, number[labels], -1)


def network_groups(edges: pd.DataFrame) -> dict[str, str]:
    """The groups of the page network (coordination_edges.parquet): page id ->
    ``coordination-K``, K from 1 for the largest group (ties: the group whose first page
    name comes first)."""
    ends = pd.concat([edges["page_a"], edges["page_b"]]).astype(str)
    codes, names = pd.factorize(ends, sort=True)
    half = len(edges)
    group = _component_numbers(codes[:half], codes[half:], len(names))
    return {str(page): f"coordination-{k + 1}" for page, k in zip(names, group) if k >= 0}


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

    folder = ScoredFolder(scored_dir)
    folder.require()
    embeddings = None if exact_only else folder.vectors("embedding")
    clusters, edges = find_coordination(folder.posts(), embeddings, config)
    settings = {"config": asdict(config or CoordinationConfig()), "exact_only": exact_only}
    _write(folder, clusters, edges, settings)
    if graphml is not None:
        write_graphml(edges, graphml)
    return clusters, edges


def update_coordination(scored_dir: str | Path, first_new: int) -> dict[str, Any]:
    """coordination.parquet, coordination_edges.parquet and pages.parquet's
    ``coordination_clusters`` made again after the posts from row ``first_new`` on came
    into the folder, with the settings coordination last ran with (kept in
    coordination.parquet); returns what changed (:func:`coordination_changes`).

    Only the window of the new posts is searched: the posts from the first new one's time
    less ``window_minutes`` on, with the references their margin test needs. A post's
    references lie before it, so no decision between two older posts changes: the old
    clusters, joined with the links found in the window, are the clusters a search of
    everything finds. Where a new post is older than a stored post by more than the
    window (a backfill), the stored posts after it would be compared with other
    references: everything is searched again."""
    folder = ScoredFolder(scored_dir)
    settings = table_settings(folder.path / "coordination.parquet") or {}
    config = CoordinationConfig(**settings.get("config", {}))
    exact_only = bool(settings.get("exact_only", False))
    old = pd.read_parquet(folder.path / "coordination.parquet")
    old_edges = pd.read_parquet(folder.path / "coordination_edges.parquet")
    scan = _scan_times(folder, first_new)
    window = int(config.window_minutes * 60e9)
    whole = "row" not in old.columns or settings.get("references") != REFERENCES
    if scan["new_min"] is None:
        how = "no new post with a page and a time"
        clusters = old.drop(columns=[c for c in old.columns if c not in _CLUSTER_COLUMNS])
    elif whole or (scan["old_max"] is not None and scan["old_max"] > scan["new_min"] + window):
        how = (
            "everything searched again: the new posts are older than stored ones"
            if not whole
            else "everything searched again: coordination.parquet was made by an older version"
        )
        clusters, edges = write_coordination(folder.path, config, exact_only=exact_only)
        return {**coordination_changes(old, old_edges, clusters, edges), "searched": how}
    else:
        start = scan["new_min"] - window
        how = f"posts from {pd.Timestamp(start, tz='UTC').isoformat()} on searched"
        clusters = _window_clusters(folder, old, scan, start, window, config, exact_only)
    edges = page_edges(clusters, config.min_weight)
    _write(folder, clusters, edges, {"config": asdict(config), "exact_only": exact_only})
    return {**coordination_changes(old, old_edges, clusters, edges), "searched": how}


#: How the margin test picks a post's references (kept with coordination.parquet, so
#: that a table made another way is searched again whole).
REFERENCES = "latest-before-window"
_CLUSTER_COLUMNS = ("cluster_id", "post_id", "page_id", "created_at", "cluster_posts",
                    "cluster_pages", "exact_copy", "row")  # fmt: skip


def _scan_times(folder: ScoredFolder, first_new: int) -> dict[str, Any]:
    """The rows, times (int64 ns) and languages of the posts that take part (scored,
    with a page and a time; four columns of every post, read whole), and the latest
    stored time and the earliest new one."""
    table = folder.posts(["created_at", "status", "page_id", "lang"])
    rows = timed_rows(table)
    times = table["created_at"].to_numpy(dtype="datetime64[ns]")[rows].astype(np.int64)
    langs = table["lang"].to_numpy(dtype=object)[rows].astype(str)
    new = rows >= first_new
    return {
        "rows": rows,
        "times": times,
        "langs": langs,
        "new_min": int(times[new].min()) if new.any() else None,
        "old_max": int(times[~new].max()) if (~new).any() else None,
    }


def _window_clusters(
    folder: ScoredFolder,
    old: pd.DataFrame,
    scan: dict[str, Any],
    start: int,
    window: int,
    cfg: CoordinationConfig,
    exact_only: bool,
) -> pd.DataFrame:
    """The old clusters joined with the links among the posts from ``start`` on (see
    :func:`update_coordination`)."""
    rows, times, langs = scan["rows"], scan["times"], scan["langs"]
    # references of the window's posts: each language's latest posts before the window's
    # own references may begin (a window before it), then every post after that
    context = start - window
    pool_parts = [np.flatnonzero(times >= context)]
    for lang in np.unique(langs):
        before = np.flatnonzero((langs == lang) & (times < context))
        latest = np.lexsort((rows[before], times[before]))[-cfg.reference :]
        pool_parts.append(before[latest])
    posts_at = _by_time(np.flatnonzero(times >= start), rows, times)
    pool_at = _by_time(np.unique(np.concatenate(pool_parts)), rows, times)
    needed = np.unique(np.r_[rows[pool_at], rows[posts_at]])
    columns = ["post_id", "page_id", "created_at", "text"] + ([] if exact_only else ["embedding"])
    table = folder.take(needed, columns)
    posts_i = np.searchsorted(needed, rows[posts_at])  # positions in ``table``
    codes = pd.factorize(np.r_[langs[posts_at], langs[pool_at]])[0]
    vectors = references = None
    if not exact_only:
        column = table.column("embedding").combine_chunks()
        matrix = vector_matrix(column, column.type.list_size)
        vectors = np.ascontiguousarray(matrix[posts_i])
        references = (
            np.ascontiguousarray(matrix[np.searchsorted(needed, rows[pool_at])]),
            times[pool_at],
            codes[len(posts_at) :],
        )
    page_ids = np.array(table.column("page_id").to_pylist(), dtype=object)[posts_i].astype(str)
    keys = text_keys(np.array(table.column("text").to_pylist(), dtype=object)[posts_i])
    links = pair_blocks(times[posts_at], pd.factorize(page_ids)[0], keys, vectors, cfg,
                        codes[: len(posts_at)], references)  # fmt: skip
    # nodes: the old clusters' posts, then the window's posts that were in none
    old_rows = old["row"].to_numpy(dtype=np.int64)
    fresh = ~np.isin(rows[posts_at], old_rows)
    node_rows = np.r_[old_rows, rows[posts_at][fresh]]
    window_nodes = pd.Series(np.arange(len(node_rows)), index=node_rows)
    window_nodes = window_nodes.loc[rows[posts_at]].to_numpy()

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ids = old["cluster_id"].to_numpy()
        heads = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1]  # a cluster's rows follow
        yield np.repeat(heads, np.diff(np.r_[heads, len(ids)])), np.arange(len(ids))
        for i, j in links:
            yield window_nodes[i], window_nodes[j]

    labels = clusters_of(len(node_rows), pairs())
    post_ids = np.array(table.column("post_id").to_pylist(), dtype=object)[posts_i]
    created = table.column("created_at").to_pandas().iloc[posts_i].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "row": node_rows,
            "label": labels,
            "time": np.r_[
                old["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
                times[posts_at][fresh],
            ],
            "page": np.r_[old["page_id"].astype(str).to_numpy(), page_ids[fresh]],
            "key": np.r_[_old_keys(folder, old), keys[fresh]],
            "post_id": np.r_[old["post_id"].astype(str).to_numpy(), post_ids[fresh]],
            "created_at": pd.concat([old["created_at"], created[fresh]], ignore_index=True),
        }
    )
    return cluster_table(frame[labels >= 0])


def _by_time(at: np.ndarray, rows: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Scan positions ``at`` in time order, ties by row."""
    return at[np.lexsort((rows[at], times[at]))]


def _old_keys(folder: ScoredFolder, old: pd.DataFrame) -> np.ndarray:
    """The text keys of the old clusters' posts (read back by row)."""
    rows = old["row"].to_numpy(dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    texts = folder.take(rows[order], ["text"]).column("text").to_pylist()
    keys = np.empty(len(rows), dtype=np.uint64)
    keys[order] = text_keys(texts)
    return keys


def _write(
    folder: ScoredFolder, clusters: pd.DataFrame, edges: pd.DataFrame, settings: dict
) -> None:
    """coordination.parquet, coordination_edges.parquet and pages.parquet's
    ``coordination_clusters`` (the ids of the clusters each page posted in)."""
    import pyarrow as pa

    ids = clusters.groupby("page_id")["cluster_id"].agg(lambda s: sorted(set(s)))
    pages = folder.arrow_table("pages.parquet")  # as written: its types stay
    if "coordination_clusters" in pages.column_names:
        pages = pages.drop_columns(["coordination_clusters"])
    column = pa.array([ids.get(p, []) for p in pages.column("page_id").to_pylist()],
                      type=pa.list_(pa.int64()))  # fmt: skip
    settings = {**settings, "references": REFERENCES}
    tables = (
        (pa.Table.from_pandas(clusters, preserve_index=False), "coordination.parquet"),
        (pa.Table.from_pandas(edges, preserve_index=False), "coordination_edges.parquet"),
        (pages.append_column("coordination_clusters", column), "pages.parquet"),
    )
    for table, name in tables:
        write_table(table, folder.path / name, settings)


def coordination_changes(
    old: pd.DataFrame, old_edges: pd.DataFrame, clusters: pd.DataFrame, edges: pd.DataFrame
) -> dict[str, Any]:
    """Clusters of ``clusters`` that are new (none of their posts was in a cluster of
    ``old``) or grown (with posts that were in no old cluster, or joining old clusters),
    and page links of ``edges`` new or heavier than in ``old_edges``."""
    was = dict(zip(old["post_id"].astype(str), old["cluster_id"]))
    new_clusters, grown = [], []
    for cluster_id, part in clusters.groupby("cluster_id", sort=True):
        before = sorted({int(was[p]) for p in part["post_id"].astype(str) if p in was})
        added = int(sum(p not in was for p in part["post_id"].astype(str)))
        row = {
            "cluster_id": int(cluster_id),
            "posts": len(part),
            "pages": int(part["page_id"].nunique()),
            "first_at": pd.Timestamp(part["created_at"].min()).isoformat(),
            "new_posts": added,
        }
        if not before:
            new_clusters.append(row)
        elif added or len(before) > 1:
            grown.append({**row, "was": before})
    weights = {
        (a, b): int(w)
        for a, b, w in old_edges[["page_a", "page_b", "weight"]].itertuples(index=False)
    }
    links_new, links_grown = [], []
    for a, b, w in edges[["page_a", "page_b", "weight"]].itertuples(index=False):
        before_w = weights.get((a, b))
        row = {"page_a": str(a), "page_b": str(b), "weight": int(w)}
        if before_w is None:
            links_new.append(row)
        elif int(w) > before_w:
            links_grown.append({**row, "was": before_w})
    return {
        "clusters_new": new_clusters,
        "clusters_grown": grown,
        "links_new": links_new,
        "links_grown": links_grown,
        "clusters": int(clusters["cluster_id"].nunique()) if len(clusters) else 0,
        "links": len(edges),
    }


__all__ = [
    "CoordinationConfig",
    "brute_force_pairs",
    "cluster_table",
    "clusters_of",
    "coordinated_pairs",
    "coordination_changes",
    "find_coordination",
    "neighbour_cosines",
    "network_groups",
    "page_edges",
    "pair_blocks",
    "text_keys",
    "update_coordination",
    "write_coordination",
    "write_graphml",
]
