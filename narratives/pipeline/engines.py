"""Where the per-post work runs: in this process, or on a Ray cluster with Ray Data.

The Ray engine gathers no table on the driver: every stage is a Ray Data operation, and
the driver keeps counts and run.json.

1. Reading: Ray Data tasks read the input in pieces (:func:`narratives.io.ray.ray_read_dataset`).
2. Repeated post ids: a groupby on the ids the input gave (the ids, their rows), whose
   ids given more than once, with their first row, are written to a small Parquet folder
   that every scoring actor reads.
3. Scoring: ``map_batches`` runs :class:`RayScorer`, a callable class, in a pool of
   actors, each loading the model and the tagger once and running the same
   :class:`~narratives.pipeline.scorer.PostScorer` as the local engine; each actor
   writes its batch's rows of posts.parquet as a part named by its first row and gives
   only the batch's counts, which Ray sums. (With Ray's own ``write_parquet`` after the
   actors, the writes waited for the actors' CPUs and every scored row waited in the
   object store.)
4. Pivots and pages: the scored posts are read back (``read_parquet``) and grouped by
   bucket of pages (``groupby(bucket).map_groups``, a bucket being a hash of the page
   id, so that a page is never split; a call per page cost more than the page); each
   bucket's pivots and page rows are made by
   :func:`~narratives.pipeline.pages.pages_and_pivots`, as the local engine makes them a
   part of its pages at a time, sorted by page, and written a block at a time by the
   workers as ``pivots/part-*.parquet`` and ``pages/part-*.parquet``.

The order of rows does not depend on Ray's scheduling: the parts are named afterwards
in the order their Parquet statistics give, and each is checked to hold a run of rows
that follows the part before it (``write_parquet`` put a sorted dataset's blocks into
one file out of order). A batch that Ray runs again (after a worker dies) writes the
same part again, atomically, under the same name.

Ray is an optional extra: ``pip install 'narratives[ray]'``.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from narratives import schema
from narratives.errors import InputError
from narratives.io.ids import mark_repeats
from narratives.io.ray import is_file_source, ray_read_dataset, typed_rows
from narratives.io.read import PostReader
from narratives.io.times import resolve_tz
from narratives.pipeline.pages import failed_pages, page_errors, pages_and_pivots
from narratives.pipeline.scorer import PostResults
from narratives.pipeline.spill import COLUMNS, n_parts
from narratives.pivots.detector import PivotConfig
from narratives.scored import PostsWriter, posts_table, to_table, vector_matrix

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install 'narratives[ray]'"
#: Rows of posts.parquet in a row group, as the local engine writes them.
_ROW_GROUP = 4096
#: Page ids named in run.json's page errors, as :func:`page_errors` names them.
_LISTED = 20
#: run.json's page errors: the per-page column that flags each kind.
_ERRORS = {"pivots": "pivot_error", "timing": "timing_error"}


def require_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InputError(f"--engine ray needs Ray Data: {RAY_INSTALL}") from exc
    return ray


def start_ray(address: str | None, progress: bool = False) -> Any:
    """Ray, joined to the cluster at ``address`` (or a local one) unless already started,
    its Data context set for a run: rows kept in order, Ray's progress bars shown only
    with ``progress``."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.print_on_execution_start = False
    context.execution_options.preserve_order = True
    return ray


class RayScorer:
    """One actor's model, tagger and cache, and the input's repeated post ids; called on a
    batch of read rows (:func:`~narratives.io.ray.ray_read_dataset`'s, consecutive
    source rows), it writes their rows of posts.parquet as a part file named by its first
    row (a batch run again writes the same file again) and gives the batch's counts."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from narratives.embedding.embedder import Embedder
        from narratives.embedding.text_cache import open_cache
        from narratives.pipeline.scorer import PostScorer, load_tagger

        if spec["threads"] == 1:  # one actor a CPU: Lingua's threads too (before its pool)
            os.environ.setdefault("RAYON_NUM_THREADS", "1")
        embedder = Embedder(
            spec["model"],
            device=spec["device"],
            batch_size=spec["batch_size"],
            backend=spec["backend"],
            threads=spec["threads"],
        )
        tagger = load_tagger(spec["tagger"], embedder, spec["taxonomy"])
        languages = spec.get("languages")
        self.scorer = PostScorer(
            embedder,
            tagger,
            open_cache(spec["cache"], embedder),
            None if languages is None else tuple(languages),
        )
        self.dim = embedder.dim
        self.first = _repeated_ids(Path(spec["repeated_ids"]))
        self.out = Path(spec["posts"])

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        frame = mark_repeats(typed_rows(batch), self.first)
        results = PostResults(frame.drop(columns=["_explicit", "_naive"]), self.dim)
        if len(results.ok_idx):
            results.take(results.ok_idx, self.scorer(results.texts))
        posts = results.posts()
        if len(posts):
            name = f"{int(posts['source_row'].iloc[0]):012d}.parquet"
            tmp = self.out / f".{name}.{uuid.uuid4().hex}.tmp"
            table = posts_table(posts, results.embeddings, results.profiles)
            pq.write_table(table, tmp, row_group_size=_ROW_GROUP)
            os.replace(tmp, self.out / name)  # whole or not at all
        return pa.table(
            {
                "ok": [int((posts["status"] == "ok").sum())],
                "warned": [int(posts["warning"].notna().sum())],
                "tagged": [int(posts["top_narrative"].notna().sum())],
            }
        )


def _repeated_ids(folder: Path) -> dict[str, int]:
    """The ids given more than once, with their first source row (see :func:`_repeats`)."""
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return {}
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return dict(zip(table.column("post_id").to_pylist(), table.column("first").to_pylist()))


def ray_score(
    source: Any,
    columns: Any,
    read_options: Mapping[str, Any],
    spec: dict[str, Any],
    work: Path,
    *,
    chunk_size: int,
    concurrency: int | None,
    address: str | None,
    pivot_config: PivotConfig | None,
    progress: bool = False,
    scorer_class: type = RayScorer,
) -> dict[str, Any]:
    """Score ``source`` on Ray into the folder ``work`` (``posts``, ``pivots`` and
    ``pages``, each a folder of parts or, when empty, one file): what the run's
    run.json needs comes back (``info``, ``counts``, ``summary``, ``errors``,
    ``n_pages``, ``n_pivots``, ``timings``). ``spec``: how an actor makes the model,
    tagger and cache (:func:`~narratives.pipeline.scorer.actor_spec`)."""
    ray = start_ray(address, progress)
    from ray.data.aggregate import Count, Min
    from ray.data.expressions import col

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if concurrency is None:
        concurrency = max(1, gpus or cpus)
    spec = {
        **spec,
        "threads": 1 if not gpus else None,
        "repeated_ids": str(work / "repeated"),
        "posts": str(work / "posts"),
    }
    if gpus and spec["device"] is None:
        spec["device"] = "cuda"
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    data, info, n = _read(ray, source, columns, read_options)
    naive = 0
    # groups spread over every CPU; the pages in buckets of about PART_POSTS posts at
    # most, one call of the pivot detector each (a call per page costs more than a page)
    partitions = buckets = max(n_parts(n), cpus)
    if n:
        ids = data.select_columns(["post_id", "source_row", "_explicit", "_naive"]).materialize()
        naive = int(ids.sum("_naive") or 0)
        _repeats(ids).groupby("post_id", num_partitions=partitions).aggregate(
            Count(alias_name="n"), Min("source_row", alias_name="first")
        ).filter(expr=col("n") > 1).select_columns(["post_id", "first"]).write_parquet(
            str(work / "repeated")
        )
    if "time_zone_for_naive_times" not in info:  # read by Ray Data tasks
        info.update(
            naive_times=naive, time_zone_for_naive_times=str(resolve_tz(read_options["tz"]))
        )
    timings["read_s"] = time.perf_counter() - t

    t = time.perf_counter()
    posts = work / "posts"
    posts.mkdir()
    counts = {"read": n, "ok": 0, "warned": 0, "tagged": 0}
    if n:
        sums = data.map_batches(
            scorer_class,
            fn_constructor_kwargs={"spec": spec},
            batch_size=chunk_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=1,
            num_gpus=1 if gpus else 0,
            # Ray Data restarts a dead actor and runs its batches again (its actor pools
            # default to max_restarts=-1, max_task_retries=-1)
        ).sum(["ok", "warned", "tagged"])
        counts.update({k: int(sums[f"sum({k})"]) for k in ("ok", "warned", "tagged")})
    written = _name_parts(posts, "source_row", n)
    if not written:
        writer = PostsWriter(work / "posts.parquet", (spec["dim"], spec["profile_dim"]))
        writer.close()
    timings["ray_s"] = time.perf_counter() - t

    t = time.perf_counter()
    _, _, summary = pages_and_pivots(
        pd.DataFrame(columns=COLUMNS), np.zeros((0, 0)), None, pivot_config
    )  # what the detector says of no page: its settings
    errors = page_errors(schema.PAGES.empty_table().to_pandas())
    n_pages = n_pivots = 0
    if written:
        # the groupby with a sort-based shuffle: on 500,000 posts here its workers peaked
        # at about half the memory of Ray's default hash shuffle, in half the time
        context = ray.data.DataContext.get_current()
        strategy, context.shuffle_strategy = context.shuffle_strategy, "sort_shuffle_pull_based"
        try:
            grouped = (
                ray.data.read_parquet(str(posts))
                .select_columns([*COLUMNS, "embedding", "topic_profile"])
                .map_batches(_paged, fn_kwargs={"buckets": buckets}, batch_format="pyarrow")
                .groupby("bucket", num_partitions=partitions)
                .map_groups(_pages_of, fn_kwargs={"config": pivot_config}, batch_format="pyarrow")
                .materialize()
            )
        finally:
            context.shuffle_strategy = strategy
        per_page = grouped.sort("page_id").materialize()
        n_pages = per_page.count()
        if n_pages:
            names = ["too_few", "detector_errors", "n_pivots", *_ERRORS.values(), "any_error"]
            sums = per_page.sum(names)
            totals = {k: int(sums[f"sum({k})"]) for k in names}
            n_pivots = totals["n_pivots"]
            summary.update(
                pages=n_pages,
                pages_too_few_posts=totals["too_few"],
                pages_with_errors=totals["detector_errors"],
                pivots=n_pivots,
            )
            errors = {
                key: {"pages": totals[column], "first": _first_ids(per_page, column)}
                for key, column in _ERRORS.items()
            }
            errors["pages"] = totals["any_error"]
        for name in ("pages", "pivots"):
            (work / name).mkdir()
            per_page.map_batches(
                _write_rows,
                batch_size=None,  # a block of sorted pages, a part
                fn_kwargs={"column": name, "folder": str(work / name)},
                batch_format="pyarrow",
            ).materialize()
    for name, table in (("pages", schema.PAGES), ("pivots", schema.PIVOTS)):
        if not _name_parts(work / name, "page_id", None):
            pq.write_table(table.empty_table(), work / f"{name}.parquet")
    timings["pivots_s"] = time.perf_counter() - t
    return {
        "info": info,
        "counts": counts,
        "summary": summary,
        "errors": errors,
        "n_pages": n_pages,
        "n_pivots": n_pivots,
        "timings": timings,
    }


def _read(ray: Any, source: Any, columns: Any, options: Mapping[str, Any]) -> tuple[Any, dict, int]:
    """The read rows as a Dataset, what is said of the input, and the number of rows. A
    file is read by Ray Data tasks; anything else (a DataFrame, a ``datasets`` folder)
    by this process, a chunk at a time, its repeated ids already marked."""
    if is_file_source(source):
        file_options = {k: v for k, v in options.items() if k != "split"}
        return ray_read_dataset(source, columns, **file_options)
    reader = PostReader(source, columns, **options)
    frames = [f.assign(_explicit=False, _naive=False) for f in reader.chunks(65_536)]
    n = sum(len(f) for f in frames)
    return ray.data.from_pandas(frames) if frames else None, reader.info, n


def _repeats(ids: Any) -> Any:
    """The (post id, row) of the records that gave their own id."""

    def given(batch: pa.Table) -> pa.Table:
        return batch.filter(batch.column("_explicit")).select(["post_id", "source_row"])

    return ids.map_batches(given, batch_format="pyarrow")


def _paged(batch: pa.Table, buckets: int) -> pa.Table:
    """The posts of a batch that take part in per-page work (scored, with a page), each
    with the bucket of its page: a hash of the page id, modulo ``buckets``, as the local
    engine parts its pages."""
    keep = pc.and_(pc.equal(batch.column("status"), "ok"), pc.is_valid(batch.column("page_id")))
    kept = batch.filter(pc.fill_null(keep, False))
    pages = kept.column("page_id").to_numpy(zero_copy_only=False)
    bucket = pd.util.hash_array(pages, categorize=True) % np.uint64(buckets)
    return kept.append_column("bucket", pa.array(bucket.astype(np.int64)))


def _pages_of(group: pa.Table, config: PivotConfig | None) -> pa.Table:
    """The pivots and page rows of the pages of a bucket (every post of each), one row a
    page: its rows as Arrow IPC bytes in the shape the files take, and its counts (the
    detector's counts of the bucket on its first page)."""
    group = group.sort_by("source_row")
    vectors = [
        vector_matrix(group.column(name).combine_chunks(), group.schema.field(name).type.list_size)
        for name in ("embedding", "topic_profile")
    ]
    posts = group.select(list(COLUMNS)).to_pandas()
    pivots, pages, summary = pages_and_pivots(posts, vectors[1], vectors[0], config, n_jobs=1)
    page_rows, pivot_rows = to_table(pages, schema.PAGES), to_table(pivots, schema.PIVOTS)
    ids = page_rows.column("page_id").to_pylist()
    of_page: dict[str, list[int]] = {}
    for i, page in enumerate(pivot_rows.column("page_id").to_pylist()):
        of_page.setdefault(page, []).append(i)
    failed = failed_pages(pages)
    first = np.arange(len(ids)) == 0
    return pa.table(
        {
            "page_id": ids,
            "pages": [_ipc(page_rows.slice(i, 1)) for i in range(len(ids))],
            "pivots": [
                _ipc(pivot_rows.take(pa.array(of_page.get(page, []), pa.int64()))) for page in ids
            ],
            "n_pivots": [len(of_page.get(page, [])) for page in ids],
            "too_few": np.where(first, summary["pages_too_few_posts"], 0),
            "detector_errors": np.where(first, summary["pages_with_errors"], 0),
            "pivot_error": failed["pivots"].astype(np.int64),
            "timing_error": failed["timing"].astype(np.int64),
            "any_error": (failed["pivots"] | failed["timing"]).astype(np.int64),
        }
    )


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _write_rows(batch: pa.Table, column: str, folder: str) -> pa.Table:
    """Write the rows that a block of per-page rows holds in ``column`` (``pages`` or
    ``pivots``) as a part of ``folder``, in page order (a page's pivots in their order),
    named by a digest of its first and last page (a block written again replaces its
    part); gives the number of rows."""
    tables = [pa.ipc.open_stream(b).read_all() for b in batch.column(column).to_pylist()]
    empty = (schema.PAGES if column == "pages" else schema.PIVOTS).empty_table()
    rows = pa.concat_tables([empty, *tables])
    rows = rows.take(pc.sort_indices(rows.column("page_id")))  # a stable sort
    if rows.num_rows:
        ends = f"{rows.column('page_id')[0]}\n{rows.column('page_id')[-1]}"
        name = hashlib.sha256(ends.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        tmp = Path(folder) / f".{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(rows, tmp)
        os.replace(tmp, Path(folder) / f"{name}.parquet")
    return pa.table({"rows": [rows.num_rows]})


def _first_ids(per_page: Any, column: str) -> list[str]:
    """The first page ids (in page order) whose ``column`` flag is set."""

    def flagged(batch: pa.Table) -> pa.Table:
        return batch.filter(pc.greater(batch.column(column), 0)).select(["page_id"])

    rows = per_page.map_batches(flagged, batch_format="pyarrow").take(_LISTED)
    return [str(r["page_id"]) for r in rows]


def _name_parts(folder: Path, key: str, n: int | None) -> int:
    """Name the Parquet files Ray wrote into ``folder`` ``part-00000.parquet``... in the
    order of their rows by ``key`` (their files' statistics say where each starts and
    ends), checking that each part's rows follow the part before's: for ``source_row``,
    the rows 0 to ``n - 1`` each once. Returns the number of parts (0, and the folder
    removed, when Ray wrote none)."""
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        tmp.unlink()  # a part an actor did not finish (it was written again whole)
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    spans = []
    for path in files:
        meta = pq.ParquetFile(path).metadata
        if meta.num_rows == 0:
            path.unlink()
            continue
        spans.append((*_span(path, meta, key), meta.num_rows, path))
    if not spans:
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    if key != "source_row":  # the actors wrote sorted posts; Ray's writes are checked
        for span in spans:
            _check_sorted(span[3], key)
    spans.sort(key=lambda s: s[0])
    for before, after in itertools.pairwise(spans):
        if not before[1] < after[0]:
            raise RuntimeError(f"Ray wrote parts of {folder.name} whose rows overlap; run again")
    if n is not None:
        rows = sum(s[2] for s in spans)
        contiguous = all(b[1] + 1 == a[0] for b, a in itertools.pairwise(spans))
        if rows != n or spans[0][0] != 0 or spans[-1][1] != n - 1 or not contiguous:
            raise RuntimeError(f"Ray wrote {rows} of {n} posts, not each once; run again")
    staged = []
    for i, span in enumerate(spans):
        staged.append(span[3].rename(folder / f".part-{i:05d}.parquet"))
    for i, path in enumerate(staged):
        path.rename(folder / f"part-{i:05d}.parquet")
    return len(staged)


def _check_sorted(path: Path, key: str) -> None:
    """Refuse a part whose rows are not in ``key`` order."""
    column = pq.read_table(path, columns=[key]).column(key)
    if len(column) > 1:
        after = pc.greater_equal(column.slice(1), column.slice(0, len(column) - 1))
        if not pc.all(after).as_py():
            raise RuntimeError(f"Ray wrote a part of {path.parent.name} out of order; run again")


def _span(path: Path, meta: Any, key: str) -> tuple[Any, Any]:
    """The first and last ``key`` of a Parquet file whose rows are in ``key`` order:
    from its statistics, or, where it has none, from the column."""
    at = meta.schema.to_arrow_schema().get_field_index(key)
    stats = [meta.row_group(g).column(at).statistics for g in range(meta.num_row_groups)]
    if all(s is not None and s.has_min_max for s in stats):
        return min(s.min for s in stats), max(s.max for s in stats)
    column = pq.read_table(path, columns=[key]).column(key)
    return column[0].as_py(), column[-1].as_py()


__all__ = ["ENGINES", "RAY_INSTALL", "RayScorer", "ray_score", "require_ray", "start_ray"]
