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

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.embedding.text_cache import normalise
from narratives.scored import ScoredFolder, table_settings, timed_rows, write_table


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
    highest cosines with the target language's reference posts (at most ``reference`` of
    them, evenly spread in time) that lie more than ``window`` from it; NaN where fewer
    than ``neighbours`` such posts exist."""
    return _neighbour_cosines(vectors, times, _references(langs, cfg), queries, targets,
                              window, cfg)  # fmt: skip


def _references(langs: np.ndarray, cfg: CoordinationConfig) -> dict[int, np.ndarray]:
    """Per language code with at least ``neighbours`` posts, its reference posts: at most
    ``reference`` of them, evenly spread in time."""
    out = {}
    order = np.argsort(langs, kind="stable")
    codes, starts = np.unique(langs[order], return_index=True)
    for code, members in zip(codes, np.split(order, starts[1:])):
        if len(members) >= cfg.neighbours:
            spread = np.linspace(0, len(members) - 1, cfg.reference).round().astype(int)
            out[int(code)] = members[np.unique(spread)]
    return out


def _neighbour_cosines(
    vectors: np.ndarray,
    times: np.ndarray,
    references: dict[int, np.ndarray],
    queries: np.ndarray,
    targets: np.ndarray,
    window: int,
    cfg: CoordinationConfig,
) -> np.ndarray:
    """:func:`neighbour_cosines` with the languages' reference posts chosen already."""
    out = np.full(len(queries), np.nan)
    k = cfg.neighbours
    for lang in np.unique(targets):
        ref = references.get(int(lang))
        if ref is None:
            continue
        asked = np.flatnonzero(targets == lang)
        for a in range(0, len(asked), 4096):
            part = asked[a : a + 4096]
            q = queries[part]
            sims = vectors[q] @ vectors[ref].T
            sims[np.abs(times[q][:, None] - times[ref][None, :]) <= window] = -np.inf
            top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
            out[part] = np.where(np.isfinite(top).all(axis=1), top.mean(axis=1), np.nan)
    return out


class _UsualCosines:
    """:func:`neighbour_cosines` of (post, language) combinations, each computed once and
    kept while the search may ask again: :meth:`forget_before` drops the posts the search
    has passed, so what is kept grows with a window's posts, not with the dump."""

    def __init__(
        self,
        vectors: np.ndarray,
        times: np.ndarray,
        langs: np.ndarray,
        window: int,
        cfg: CoordinationConfig,
    ) -> None:
        self.vectors, self.times, self.langs, self.window, self.cfg = (
            vectors, times, langs, window, cfg
        )  # fmt: skip
        self.n_langs = int(langs.max()) + 1 if len(langs) else 1
        self.references = _references(langs, cfg)
        self.codes = np.zeros(0, dtype=np.int64)  # post * n_langs + language, sorted
        self.values = np.zeros(0, dtype=np.float64)

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
            values[~known] = _neighbour_cosines(
                self.vectors, self.times, self.references, new // self.n_langs,
                new % self.n_langs, self.window, self.cfg,
            )  # fmt: skip
            order = np.argsort(np.r_[self.codes, new], kind="stable")
            self.codes = np.r_[self.codes, new][order]
            self.values = np.r_[self.values, values[~known]][order]
        return values[inverse]

    def forget_before(self, post: int) -> None:
        first = int(np.searchsorted(self.codes, post * self.n_langs))
        self.codes, self.values = self.codes[first:], self.values[first:]


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
    usual = None if vectors is None else _UsualCosines(vectors, times, langs, window, cfg)
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
    import pyarrow as pa

    folder = ScoredFolder(scored_dir)
    folder.require()
    embeddings = None if exact_only else folder.vectors("embedding")
    clusters, edges = find_coordination(folder.posts(), embeddings, config)
    ids = clusters.groupby("page_id")["cluster_id"].agg(lambda s: sorted(set(s)))
    pages = folder.arrow_table("pages.parquet")  # as written: its types stay
    if "coordination_clusters" in pages.column_names:
        pages = pages.drop_columns(["coordination_clusters"])
    column = pa.array([ids.get(p, []) for p in pages.column("page_id").to_pylist()],
                      type=pa.list_(pa.int64()))  # fmt: skip
    tables = (
        (pa.Table.from_pandas(clusters, preserve_index=False), "coordination.parquet"),
        (pa.Table.from_pandas(edges, preserve_index=False), "coordination_edges.parquet"),
        (pages.append_column("coordination_clusters", column), "pages.parquet"),
    )
    settings = {"config": asdict(config or CoordinationConfig()), "exact_only": exact_only}
    for table, name in tables:
        write_table(table, folder.path / name, settings)
    if graphml is not None:
        write_graphml(edges, graphml)
    return clusters, edges


def update_coordination(scored_dir: str | Path, since: str | None) -> dict[str, Any]:
    """:func:`write_coordination` again after new posts (from the time ``since`` on) came
    into the folder, with the settings it was last run with (kept in
    coordination.parquet), and what changed: clusters new or grown (joined with others,
    or with new posts), page links new or with more shared clusters."""
    folder = Path(scored_dir)
    settings = table_settings(folder / "coordination.parquet") or {}
    old = pd.read_parquet(folder / "coordination.parquet", columns=["cluster_id", "post_id"])
    old_edges = pd.read_parquet(folder / "coordination_edges.parquet")
    config = CoordinationConfig(**settings.get("config", {}))
    clusters, edges = write_coordination(
        folder, config, exact_only=bool(settings.get("exact_only", False))
    )
    return coordination_changes(old, old_edges, clusters, edges)


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
