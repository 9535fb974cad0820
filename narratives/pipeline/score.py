"""The batch driver: read posts, identify languages, embed, and write the output contract."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from narratives import schema
from narratives.embedding.embedder import DEFAULT, Embedder
from narratives.embedding.langid import detect_languages
from narratives.embedding.model_cache import cache_dir
from narratives.embedding.text_cache import EmbeddingCache, cache_name, normalise, text_key
from narratives.errors import InputError, OutputError
from narratives.io.read import ColumnMapping, read_posts
from narratives.operators.timing import page_timing
from narratives.pipeline.engines import ENGINES, ray_results, require_ray, start_ray
from narratives.pivots.detector import PivotConfig, PivotDetector
from narratives.pivots.topics import TOPICS, topic_profiles, topic_prototypes
from narratives.rowfile import RowFile
from narratives.tagging.tagger import narrative_mix

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("posts.parquet", "pivots.parquet", "pages.parquet", "run.json")
#: Rows of posts.parquet converted and written at a time (one Parquet row group each).
_SAVE_ROWS = 4096
#: Folder of a run's unfinished work inside its output directory (see begin_run).
PARTIAL = ".partial"


@dataclass
class ScoreResult:
    """The tables of one scoring run.

    ``embeddings`` (n, dim) and ``topic_profiles`` (n, K) have one row per post, NaN
    where the post was rejected; they are stored as the ``embedding`` and
    ``topic_profile`` columns of posts.parquet. ``embeddings`` is a
    :class:`~narratives.rowfile.RowFile` when :func:`score` kept them in a file.
    """

    posts: pd.DataFrame
    pivots: pd.DataFrame
    pages: pd.DataFrame
    embeddings: np.ndarray | RowFile
    topic_profiles: np.ndarray
    run: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path, *, force: bool = False) -> Path:
        """Write posts/pivots/pages Parquet files and run.json into ``out_dir``."""
        out = prepare_output_dir(out_dir, force=force)
        with _replacing(out / "posts.parquet") as tmp:
            writer: pq.ParquetWriter | None = None
            # in slices of rows: the vectors are converted a slice at a time, not copied whole
            for start in range(0, max(len(self.posts), 1), _SAVE_ROWS):
                rows = slice(start, start + _SAVE_ROWS)
                table = self._posts_table(rows)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            assert writer is not None
            writer.close()
        self.save_pivots(out)
        return out

    def _posts_table(self, rows: slice) -> pa.Table:
        posts = self.posts.iloc[rows]
        table = _to_table(posts, schema.POSTS)
        missing = pa.array(posts["status"].to_numpy() != "ok")
        for name, values in (
            ("embedding", self.embeddings[rows]),
            ("topic_profile", self.topic_profiles[rows]),
        ):
            dim = values.shape[1]
            flat = pa.array(np.nan_to_num(values).reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, dim, mask=missing)
            table = table.append_column(pa.field(name, schema.vector_type(dim)), column)
        return table

    def save_pivots(self, out: Path) -> None:
        """Write pivots.parquet, pages.parquet and run.json (the parts pivots re-runs change).
        Each file appears whole or not at all; run.json comes last."""
        with _replacing(out / "pivots.parquet") as tmp:
            pq.write_table(_to_table(self.pivots, schema.PIVOTS), tmp)
        pages = _to_table(self.pages, schema.PAGES)
        if (out / "pages.parquet").exists():
            pages = _with_added_columns(pages, pq.read_table(out / "pages.parquet"))
        with _replacing(out / "pages.parquet") as tmp:
            pq.write_table(pages, tmp)
        with _replacing(out / "run.json") as tmp:
            tmp.write_text(json.dumps(self.run, indent=2, default=str) + "\n")


def _with_added_columns(pages: pa.Table, old: pa.Table) -> pa.Table:
    """``pages`` with the columns later steps added to the ``old`` table of the same pages
    (``narratives coordination``'s ``coordination_clusters``), matched by page id; a page
    the old table lacks gets nulls."""
    extra = [c for c in old.column_names if c not in pages.column_names]
    if not extra:
        return pages
    where = {page: i for i, page in enumerate(old.column("page_id").to_pylist())}
    rows = pa.array([where.get(page) for page in pages.column("page_id").to_pylist()],
                    type=pa.int64())  # fmt: skip
    for name in extra:
        pages = pages.append_column(old.schema.field(name), old.column(name).take(rows))
    return pages


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary name beside ``path`` that replaces it once written."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _to_table(frame: pd.DataFrame, arrow_schema: pa.Schema) -> pa.Table:
    columns = {f.name: frame[f.name] for f in arrow_schema}
    arrays = [
        pa.array(_plain(col), type=f.type, from_pandas=True)
        for f, col in zip(arrow_schema, columns.values())
    ]
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _plain(col: pd.Series) -> Any:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC").array
    return col.astype(object).where(col.notna(), None).tolist()


def prepare_output_dir(out_dir: str | Path, *, force: bool) -> Path:
    """Create ``out_dir``; an existing one is only replaced with ``force``."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"output {str(out)!r} exists and is not a directory")
        if any(out.iterdir()):
            if not force:
                unfinished = (out / PARTIAL).is_dir()
                raise OutputError(
                    f"output directory {str(out)!r} holds an unfinished run; pass --resume "
                    "to finish it or --force to start again"
                    if unfinished
                    else f"output directory {str(out)!r} is not empty; pass --force to overwrite"
                )
            for name in (*OUTPUT_FILES, "report.html"):
                (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def begin_run(out_dir: str | Path, state: dict[str, Any], *, resume: bool, force: bool) -> Path:
    """Prepare ``out_dir`` for a run described by ``state`` (input and settings) and
    return its folder of unfinished work, ``OUT/.partial``.

    The run's texts are committed chunk by chunk to the embedding cache (the persistent
    one, or ``.partial/embeddings.sqlite`` with ``cache=False``), and the outputs are
    written only at the end, ``run.json`` last, after which ``.partial`` goes. A run killed
    at any point leaves ``.partial`` behind; with ``resume`` it is finished with the same
    input and settings (checked against ``.partial/state.json``): the texts embedded
    before the kill come from the cache, and the outputs are written whole, so that no
    row is lost or written twice.
    """
    out = Path(out_dir)
    partial = out / PARTIAL
    if resume and (partial / "state.json").is_file():
        before = _flat(json.loads((partial / "state.json").read_text(encoding="utf-8")))
        now = _flat(json.loads(json.dumps(state)))
        changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
        if changed:
            raise OutputError(
                f"cannot resume the run in {str(out)!r}: {', '.join(changed)} differ from "
                "the interrupted run's; run it with the same input and options, or pass "
                "--force to start again"
            )
        return partial
    if resume and out.is_dir() and (out / "run.json").is_file() and not partial.exists():
        raise OutputError(f"{str(out)!r} holds a finished run: nothing to resume")
    prepare_output_dir(out, force=force or resume)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    (partial / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    return partial


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def finish_run(partial: Path) -> None:
    shutil.rmtree(partial, ignore_errors=True)


def page_table(posts: pd.DataFrame, pivots: pd.DataFrame, status: dict[str, str]) -> pd.DataFrame:
    """One row per page of the scored posts: counts, time span, language shares, pivots."""
    ok = posts[(posts["status"] == "ok") & posts["page_id"].notna()]
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
) -> ScoreResult:
    """Score posts: language and multilingual embedding per post, and the page table.

    ``source`` is anything :func:`narratives.read_posts` reads. Pass a loaded
    ``embedder`` to reuse one model across calls. ``progress=None`` shows a progress
    bar only on a terminal. Posts are tagged with narratives by ``tagger``: ``"default"``
    (the zero-shot tagger of ``taxonomy``, the shipped one when None), a tagger folder,
    a :class:`~narratives.tagging.tagger.NarrativeTagger`, or None for no tags.

    Each distinct (normalised) text is embedded and its language identified once:
    ``cache=True`` keeps the results in the embedder's file under
    ``<cache>/embeddings/`` for later runs, a path keeps them in that SQLite file, and
    False or None only within this run.

    With ``vectors`` (a file path), the embeddings are kept in that file, not in memory
    (:class:`~narratives.rowfile.RowFile`; rows of rejected posts read as zeros): the
    run's memory then grows with the posts' table but not with their vectors.

    ``engine="ray"`` reads a JSONL, CSV or Parquet input with Ray Data tasks
    (:mod:`narratives.io.ray`) and runs the per-post work (language, embedding, topics,
    tags) on Ray Data, in ``concurrency`` actors (default: one per CPU, or per GPU), on
    the cluster at ``address`` or a local one (see :mod:`narratives.pipeline.engines`); the output
    is the same.
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray":
        require_ray()  # before any work
    started = time.perf_counter()
    timings: dict[str, float] = {}
    reader: Any = read_posts
    if engine == "ray":
        from narratives.io.ray import ray_read_posts

        start_ray(address)
        reader = ray_read_posts
    read = reader(source, columns, encoding=encoding, tz=tz, delimiter=delimiter, split=split)
    posts = read.posts
    timings["read_s"] = time.perf_counter() - started

    t = time.perf_counter()
    if embedder is None:
        embedder = Embedder(model, device=device, batch_size=batch_size, backend=backend)
    tagger = _load_tagger(tagger, embedder, taxonomy)
    timings["load_model_s"] = time.perf_counter() - t

    ok_idx = np.flatnonzero(posts["status"].to_numpy() == "ok")
    texts = posts["text"].to_numpy(dtype=object)[ok_idx].tolist()
    n = len(posts)
    lang = np.full(n, None, dtype=object)
    lang_score = np.full(n, np.nan, dtype=np.float32)
    embeddings: np.ndarray | RowFile = (
        np.full((n, embedder.dim), np.nan, dtype=np.float32)
        if vectors is None
        else RowFile(vectors, n, embedder.dim)
    )
    warnings = np.array([w if isinstance(w, str) else None for w in posts["warning"]], dtype=object)
    profiles = np.full((n, len(TOPICS)), np.nan, dtype=np.float32)
    narratives: list[Any] = [[] if s == "ok" else None for s in posts["status"]]
    top_narrative = np.full(n, None, dtype=object)
    top_score = np.full(n, np.nan, dtype=np.float32)

    def take(rows: np.ndarray, out: dict[str, Any]) -> None:
        """Put a chunk's results at its rows of the posts table."""
        lang[rows], lang_score[rows] = out["lang"], out["lang_score"]
        embeddings[rows], profiles[rows] = out["embedding"], out["topic_profile"]
        for i, note in zip(rows, out["note"]):
            if note is not None:
                warnings[i] = note if warnings[i] is None else f"{warnings[i]}; {note}"
        for i, row in zip(rows, out["tags"] or []):
            narratives[i] = row["narratives"]
            top_narrative[i] = row["top_narrative"]
            top_score[i] = np.nan if row["top_score"] is None else row["top_score"]

    store = _open_cache(cache, embedder)
    scorer = PostScorer(embedder, tagger, store)
    try:
        with tqdm(
            total=len(ok_idx), unit="post", disable=_disable(progress), desc="scoring"
        ) as bar:
            if engine == "ray":
                with tempfile.TemporaryDirectory() as tmp:
                    spec = _actor_spec(embedder, tagger, store, Path(tmp))
                    t = time.perf_counter()
                    for rows, out in ray_results(
                        ok_idx,
                        texts,
                        spec,
                        batch_size=chunk_size,
                        concurrency=concurrency,
                        address=address,
                    ):
                        take(rows, out)
                        bar.update(len(rows))
                    timings["ray_s"] = time.perf_counter() - t
            else:
                for start in range(0, len(ok_idx), chunk_size):
                    rows = ok_idx[start : start + chunk_size]
                    take(rows, scorer(texts[start : start + chunk_size]))
                    bar.update(len(rows))
    finally:
        store.close()
    timings.update(scorer.timings)
    top = np.nan_to_num(profiles, nan=-1.0).argmax(axis=1)
    topic_names = np.array(list(TOPICS), dtype=object)[top]
    topic_names[np.isnan(profiles[:, 0])] = None
    cache_stats = {
        "path": None if store.path is None else str(store.path),
        "hits": store.hits,
        "misses": store.misses,
    }
    posts = posts.assign(
        warning=pd.array(warnings, dtype="string"),
        lang=pd.array(lang, dtype="string"),
        lang_score=lang_score,
        topic=pd.array(topic_names, dtype="string"),
        topic_score=np.take_along_axis(profiles, top[:, None], axis=1)[:, 0],
        narratives=narratives,
        top_narrative=pd.array(top_narrative, dtype="string"),
        top_score=top_score,
    )
    n_ok = len(ok_idx)
    run = {
        "narratives_version": metadata.version("narratives"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": read.info,
        "model": embedder.info,
        "cache": cache_stats,
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
    empty = schema.PIVOTS.empty_table().to_pandas()
    result = detect_pivots(
        ScoreResult(posts, empty, empty, embeddings, profiles, run), pivot_config
    )
    timings["pivots_s"] = result.run["pivots"]["seconds"]
    timings["total_s"] = time.perf_counter() - started
    result.run["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return result


class PostScorer:
    """What is computed for each post, a chunk of texts at a time: language, embedding,
    topic profile, narratives, and a note when the model clips the text. Languages and
    vectors come from ``store`` where it has them and are committed to it otherwise.

    One per process: the local engine runs one, each Ray actor holds its own
    (see :mod:`narratives.pipeline.engines`).
    """

    def __init__(self, embedder: Embedder, tagger: Any, store: EmbeddingCache) -> None:
        self.embedder, self.tagger, self.store = embedder, tagger, store
        self.timings = {"langid_s": 0.0, "embed_s": 0.0, "topics_s": 0.0, "tag_s": 0.0}
        self._prototypes: np.ndarray | None = None

    def __call__(self, texts: list[str]) -> dict[str, Any]:
        embedder, store, timings = self.embedder, self.store, self.timings
        outer, embedder.cache = embedder.cache, store
        try:
            chunk = [normalise(t) for t in texts]
            keys = [text_key(t) for t in chunk]
            t = time.perf_counter()
            known = store.get_langs(keys)
            todo = {k: text for k, text in zip(keys, chunk) if k not in known}
            if todo:
                codes, scores = detect_languages(list(todo.values()))
                store.put_langs(list(todo), codes, scores)
                known.update(zip(todo, zip(codes, scores)))
            timings["langid_s"] += time.perf_counter() - t
            t = time.perf_counter()
            vectors = embedder.encode(chunk)
            notes = self._truncation_notes(chunk)
            timings["embed_s"] += time.perf_counter() - t
            t = time.perf_counter()
            if self._prototypes is None:
                self._prototypes = topic_prototypes(embedder)
            profiles = topic_profiles(vectors, self._prototypes)
            timings["topics_s"] += time.perf_counter() - t
        finally:
            embedder.cache = outer
        t = time.perf_counter()
        tags = None
        if self.tagger is not None:  # one with its own fine-tuned encoder reads the texts
            tags = self.tagger.tag(texts=chunk, embeddings=vectors)
        timings["tag_s"] += time.perf_counter() - t
        return {
            "lang": [known[k][0] for k in keys],
            "lang_score": np.array([known[k][1] for k in keys], dtype=np.float32),
            "embedding": vectors,
            "topic_profile": profiles,
            "note": notes,
            "tags": tags,
        }

    def _truncation_notes(self, chunk: list[str]) -> list[str | None]:
        # only a text of more characters than half the limit can pass it: a character is
        # at most two pieces
        limit = self.embedder.max_seq_length
        notes: list[str | None] = [None] * len(chunk)
        long = [i for i, x in enumerate(chunk) if 2 * len(x) + 16 > limit]
        for i, count in zip(long, self.embedder.token_counts([chunk[i] for i in long])):
            if count > limit:
                notes[i] = (
                    f"text truncated for embedding: {_count(count, limit)} tokens, "
                    f"the model reads the first {limit}"
                )
        return notes


def _actor_spec(
    embedder: Embedder, tagger: Any, store: EmbeddingCache, tmp: Path
) -> dict[str, Any]:
    """How a Ray actor makes the same embedder, tagger and cache as this process."""
    tagger_spec = None
    if tagger is not None:  # the tagger travels as its folder
        tagger.save_pretrained(tmp / "tagger")
        tagger_spec = str(tmp / "tagger")
    return {
        "model": embedder.model_name,
        "backend": embedder.backend,
        "batch_size": embedder.batch_size,
        "device": embedder.device,
        "tagger": tagger_spec,
        "taxonomy": None,  # the tagger's folder holds its taxonomy
        "cache": None if store.path is None else str(store.path),
    }


def _open_cache(cache: bool | str | Path | None, embedder: Embedder) -> EmbeddingCache:
    if cache is True:
        path: Path | None = cache_dir() / "embeddings" / cache_name(embedder.fingerprint)
    else:
        path = Path(cache) if cache else None
    return EmbeddingCache(path, embedder.dim)


def _load_tagger(tagger: Any, embedder: Embedder, taxonomy: str | Path | None):
    from narratives.tagging.tagger import NarrativeTagger

    if tagger is None:
        return None
    built_from_taxonomy = str(tagger) == "default"  # the zero-shot tagger of `taxonomy`
    if not isinstance(tagger, NarrativeTagger):
        tagger = NarrativeTagger.from_pretrained(tagger, embedder, taxonomy)
    if taxonomy is not None and not built_from_taxonomy:
        from narratives.tagging.taxonomy import load_taxonomy

        if load_taxonomy(taxonomy).digest != tagger.taxonomy.digest:
            raise InputError(
                f"the tagger was built for taxonomy {tagger.taxonomy.id} "
                f"{tagger.taxonomy.version}, not {str(taxonomy)!r}; drop --taxonomy or "
                "use the tagger 'default', which is built from the taxonomy you give"
            )
    if tagger.embedder is None:
        tagger.embedder = embedder
    tagger.check_embedder(embedder)  # not for a tagger with its own fine-tuned encoder
    return tagger


def _count(count: int, limit: int) -> str:
    return f"more than {limit}" if count == limit + 1 else str(count)


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _vectors(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    dim = column.type.list_size
    out = np.full((len(table), dim), np.nan, dtype=np.float32)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    out[valid] = values.reshape(-1, dim)
    return out


def load_scored(out_dir: str | Path) -> ScoreResult:
    """Read back what :meth:`ScoreResult.save` wrote."""
    out = Path(out_dir)
    if not (out / "posts.parquet").is_file():
        raise InputError(f"{str(out)!r} holds no posts.parquet; run narratives score first")
    table = pq.read_table(out / "posts.parquet")
    missing = {"embedding", "topic_profile"} - set(table.column_names)
    if missing:
        raise InputError(f"posts.parquet in {str(out)!r} lacks {', '.join(sorted(missing))}")
    return ScoreResult(
        table.drop_columns(["embedding", "topic_profile"]).to_pandas(),
        pq.read_table(out / "pivots.parquet").to_pandas(),
        pq.read_table(out / "pages.parquet").to_pandas(),
        _vectors(table, "embedding"),
        _vectors(table, "topic_profile"),
        json.loads((out / "run.json").read_text()),
    )


__all__ = [
    "ScoreResult",
    "begin_run",
    "detect_pivots",
    "finish_run",
    "load_scored",
    "page_table",
    "prepare_output_dir",
    "score",
]
