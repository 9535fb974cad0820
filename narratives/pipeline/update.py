"""Incremental updates: new posts added to a scored folder, and what they changed.

:func:`update` reads new posts with the stored run's columns, options and model
(refusing, with the difference named, where they differ), scores only them and appends
them to posts (a new part of ``posts/``, rows in arrival order; ``source_row`` goes on
from the rows already there, so a post id given again is rejected naming the row that
gave it first, as one run over everything would). Pivots and the page table are made
again only for the pages that received posts: pages are independent and each draws its
permutations from its own id, so this gives what a run over everything gives. timing.parquet
and coordination.parquet, where the folder has them, are made again with their stored
settings.

What changed goes to the change log, ``updates/NNNN.json`` (:func:`change_log` reads
it): pivots found (provisional or not), confirmed, moved and withdrawn; pages whose
timing estimate moved by more than an hour; coordination clusters and page links new
or grown; each narrative's share of the new posts against its share before.

Crash safety: everything is made in ``SCORED/.update``; then ``.update/commit.json``
lists the files to move in, which are moved (run.json last) and ``.update`` goes. Killed
before commit.json is written, the folder is as it was; killed after, readers refuse the
folder until ``update(..., resume=True)`` finishes the moves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from narratives import schema
from narratives.embedding.embedder import Embedder
from narratives.embedding.langid import identifier_id, parse_languages
from narratives.embedding.text_cache import open_cache
from narratives.errors import InputError, OutputError
from narratives.io.columns import ColumnMapping
from narratives.io.read import PostReader
from narratives.operators.timing import circular_hours
from narratives.pipeline.pages import page_errors, pages_and_pivots
from narratives.pipeline.resume import run_state
from narratives.pipeline.scorer import (
    PostCounts,
    PostResults,
    PostScorer,
    bar_disabled,
    counts_record,
    describe_tagger,
    load_tagger,
    model_record,
)
from narratives.pipeline.spill import COLUMNS
from narratives.pivots.detector import PivotConfig
from narratives.rowfile import RowFile
from narratives.scored import (
    COMMIT,
    UPDATE,
    UPDATES,
    VECTORS,
    PostsWriter,
    ScoredFolder,
    atomic_path,
    parts_folder,
    posts_table,
    table_files,
    to_table,
    update_files,
    vector_matrix,
)

logger = logging.getLogger(__name__)

#: A page's timing estimate that moves by more than this many hours is reported.
TIMING_MOVE_HOURS = 1.0


def update(
    scored_dir: str | Path,
    source: str | Path,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    *,
    model: str | Path | None = None,
    embedder: Embedder | None = None,
    tagger: Any = None,
    taxonomy: str | Path | None = None,
    tz: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    split: str | None = None,
    batch_size: int | None = None,
    backend: str | None = None,
    device: str | None = None,
    chunk_size: int = 2048,
    cache: bool | str | Path | None = True,
    pivot_config: PivotConfig | None = None,
    languages: str | Sequence[str] | None = None,
    progress: bool | None = None,
    resume: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Add the posts of ``source`` (a JSONL, CSV/TSV or Parquet file) to the scored folder
    ``scored_dir`` and return the change log entry of this update (what
    ``updates/NNNN.json`` holds).

    The posts are read and scored as the folder's run was: ``columns``, ``model``,
    ``tagger``, ``taxonomy``, ``tz``, ``batch_size``, ``backend``, ``languages`` and
    ``pivot_config`` default to the stored ones, and one given that differs is refused
    with the difference named; so is a folder whose languages another language
    identifier found (another version of its rules or of Lingua). ``encoding``,
    ``delimiter`` and ``split`` are the new file's own; ``cache``, ``device``,
    ``chunk_size`` and ``progress`` as for :func:`narratives.score`.

    ``resume``: finish an update that was killed (same input); ``force``: drop an
    unfinished update's work and run this one."""
    folder = Path(scored_dir)
    journal = folder / UPDATE
    if (journal / COMMIT).is_file():
        if not resume:
            raise OutputError(
                f"an update of {str(folder)!r} was interrupted while it was written into the "
                "folder: finish it with --resume (the same input) before anything else"
            )
        return _commit(folder, journal)
    stored = ScoredFolder(folder)
    stored.require()
    run = stored.run()
    given = _given(columns, model, embedder, tagger, taxonomy, tz, batch_size, backend)
    given["languages"] = None if languages is None else list(parse_languages(languages) or ())
    settings = _settings(run, given, folder)
    state = {"input": run_state(source, {}, {})["input"], "settings": settings}
    stored_config = _stored_config(run)
    config = pivot_config or PivotConfig(**stored_config)
    if asdict(config) != stored_config:
        changed = sorted(k for k, v in asdict(config).items() if stored_config.get(k) != v)
        raise InputError(
            f"the pivot settings differ from those {str(folder)!r} was scored with "
            f"({', '.join(changed)}); update with the stored ones, or run narratives "
            "pivots on the folder first to change them"
        )
    if embedder is None:
        embedder = Embedder(
            settings["model"],
            device=device,
            batch_size=settings["batch_size"],
            backend=settings["backend"],
        )
    loaded = load_tagger(_tagger_of(tagger, settings), embedder, settings["taxonomy"])
    _check_models(run, embedder, loaded, folder)
    _begin(journal, state, resume=resume, force=force)
    read = {
        "encoding": encoding,
        "delimiter": delimiter,
        "split": split,
        "tz": settings["tz"],
        "first_row": int(run["counts"]["read"]),
    }
    work = {"cache": cache, "chunk_size": chunk_size, "progress": progress}
    try:
        return _update(stored, run, source, state, config, (embedder, loaded), read, work)
    except Exception:
        # an error (not a kill): the folder is as it was, and this update's work goes
        if not (journal / COMMIT).is_file():
            shutil.rmtree(journal, ignore_errors=True)
        raise


def _update(
    stored: ScoredFolder,
    run: dict[str, Any],
    source: Any,
    state: dict[str, Any],
    config: PivotConfig,
    models: tuple[Embedder, Any],
    read: dict[str, Any],
    work: dict[str, Any],
) -> dict[str, Any]:
    """:func:`update` once its settings are checked and its work begun: ``read``, how the
    new posts are read (:class:`PostReader`'s options); ``work``, the cache, chunk size
    and progress bar."""
    started = time.perf_counter()
    folder, journal = stored.path, stored.path / UPDATE
    embedder, loaded = models
    cache, chunk_size, progress = work["cache"], work["chunk_size"], work["progress"]

    columns = state["settings"]["columns"]
    seen = _stored_ids(stored, source, columns, read)
    reader = PostReader(source, columns, ids_path=journal / "ids.sqlite", seen=seen, **read)
    store = open_cache(cache or journal / "embeddings.sqlite", embedder)
    languages = state["settings"]["languages"]
    scorer = PostScorer(embedder, loaded, store, None if languages is None else tuple(languages))
    counts = PostCounts()
    staged = journal / "staged"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    new_part = staged / "posts-new.parquet"
    writer = PostsWriter(new_part, (embedder.dim, len(_topics(run))))
    vectors = _vectors_file(stored, run, embedder.dim)
    new_vectors = None if vectors is None else RowFile(staged / "vectors-new.f32", 0, embedder.dim)
    new_pages: list[pa.Table] = []
    try:
        with tqdm(
            total=reader.n_records, unit="post", disable=bar_disabled(progress), desc="updating"
        ) as bar:
            for frame in reader.chunks(chunk_size):
                chunk = PostResults(frame, embedder.dim)
                if len(chunk.ok_idx):
                    chunk.take(chunk.ok_idx, scorer(chunk.texts))
                posts = chunk.posts()
                counts.add(posts)
                table = posts_table(posts, chunk.embeddings, chunk.profiles)
                writer.write_table(table)
                if new_vectors is not None:
                    new_vectors.append(chunk.embeddings)
                new_pages.append(_paged(table))
                bar.update(len(frame))
    finally:
        store.close()
        if new_vectors is not None:
            new_vectors.close()
    writer.close()
    scored_s = time.perf_counter() - started

    t = time.perf_counter()
    new = pa.concat_tables(new_pages) if new_pages else None
    touched = sorted(set(new.column("page_id").to_pylist())) if new is not None else []
    pivots, pages, old_pivots, old_pages = _redo_pages(stored, touched, new, config, vectors)
    pivots_s = time.perf_counter() - t

    number = _next_number(folder)
    first_row = int(run["counts"]["read"])
    entry: dict[str, Any] = {
        "update": number,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {**state["input"], **reader.info},
        "rows": [first_row, first_row + counts.read],
        "counts": counts_record(vars(counts)),
        **_time_span(new_part),
        "pages_touched": len(touched),
        "touched_pages": touched,
        "pivots": _pivot_changes(old_pivots, pivots, touched, config),
        "timing": _timing_changes(old_pages, pages, touched),
        "narratives": None,
        "coordination": None,
    }
    entry["narratives"], narrative_posts = _narrative_shares(
        run.get("narrative_posts") or _stored_narratives(stored), counts.narrative_posts()
    )
    new_run = _new_run(run, counts, pivots, pages, config, number)
    new_run["narrative_posts"] = narrative_posts

    moves = _stage_tables(staged, pivots, pages)
    renames, part_name = _posts_part(folder)
    moves.insert(0, ["posts-new.parquet", f"posts/{part_name}"])

    extra_s = time.perf_counter()
    moves += _stage_operators(folder, staged, new_part, entry)
    entry["seconds"] = {
        "scoring": round(scored_s, 3),
        "pivots": round(pivots_s, 3),
        "timing_and_coordination": round(time.perf_counter() - extra_s, 3),
        "total": round(time.perf_counter() - started, 3),
    }
    (staged / "entry.json").write_text(json.dumps(entry, indent=2, default=str) + "\n")
    moves.append(["entry.json", f"{UPDATES}/{number:04d}.json"])
    (staged / "run.json").write_text(json.dumps(new_run, indent=2, default=str) + "\n")
    moves.append(["run.json", "run.json"])  # last: the folder's own "finished" mark
    removes = [
        name for name in ("pivots", "pages") if parts_folder(folder / f"{name}.parquet").is_dir()
    ]
    plan: dict[str, Any] = {"renames": renames, "moves": moves, "removes": removes}
    if vectors is not None:  # the new rows go after the stored ones (and nothing else)
        plan["append"] = ["vectors-new.f32", VECTORS, first_row * embedder.dim * 4]
    with atomic_path(journal / COMMIT) as tmp:
        tmp.write_text(json.dumps(plan, indent=2))
    return _commit(folder, journal)


# -- settings ------------------------------------------------------------------------


def _given(
    columns: Any,
    model: Any,
    embedder: Embedder | None,
    tagger: Any,
    taxonomy: Any,
    tz: str | None,
    batch_size: int | None,
    backend: str | None,
) -> dict[str, Any]:
    """The settings the caller gave (None: not given)."""
    return {
        "columns": None
        if columns is None
        else {k: v for k, v in asdict(ColumnMapping.from_any(columns)).items() if v is not None},
        "model": embedder.model_name if embedder is not None else model and str(model),
        # a loaded embedder's backend is resolved ("auto" made "onnx"): run.json's model
        # info, checked once it is loaded, says whether it is the folder's
        "backend": None if embedder is not None else backend,
        "batch_size": embedder.batch_size if embedder is not None else batch_size,
        "tz": tz,
        "taxonomy": None if taxonomy is None else str(Path(taxonomy).resolve()),
        "tagger": None if tagger is None else describe_tagger(tagger),
    }


def _settings(run: dict[str, Any], given: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The settings of this update: the stored run's, refusing any given that differs."""
    stored = run.get("settings")
    if stored is None:
        raise InputError(
            f"run.json in {str(folder)!r} does not record the settings it was scored with "
            "(it was written by narratives before 0.2); score the posts again with "
            "narratives score to update the folder"
        )
    differ = []
    for key, value in given.items():
        if value is None or key not in stored or stored[key] == value:
            continue
        if key == "tagger" and _same_tagger(stored[key], value):
            continue
        differ.append(f"{key} is {value!r} here and {stored[key]!r} there")
    if differ:
        raise InputError(
            f"new posts must be read and scored as {str(folder)!r} was: "
            + "; ".join(differ)
            + "; leave them out to use the stored ones"
        )
    return {
        "columns": stored.get("columns") or {},
        "model": stored.get("model", "default"),
        "backend": stored.get("backend", "auto"),
        "batch_size": stored.get("batch_size", 32),
        "tz": stored.get("tz"),
        "taxonomy": stored.get("taxonomy"),
        "tagger": stored.get("tagger", "default"),
        "languages": _stored_languages(stored, folder),
    }


def _stored_languages(stored: dict[str, Any], folder: Path) -> list[str] | None:
    """The folder's candidate languages, once its languages are known to be what this
    language identifier finds: new posts identified otherwise would make language pivots
    of the change."""
    languages = stored.get("languages")
    here = identifier_id(languages)
    there = stored.get("langid")
    if there != here:
        found = (
            "langdetect (narratives 0.2)"
            if there is None
            else f"another language identifier ({there})"
        )
        raise InputError(
            f"the languages of {str(folder)!r} were found by {found}, and this narratives "
            f"finds them with {here}: new posts identified otherwise would show language "
            "pivots that are not there; score all the posts again with narratives score"
        )
    return languages


def _same_tagger(stored: str, given: str) -> bool:
    """A tagger given as an object describes itself by its taxonomy: the same as the
    stored name where that name was ``default`` (checked against run.json later)."""
    return stored == "default" and given.startswith("zero-shot tagger of")


def _tagger_of(tagger: Any, settings: dict[str, Any]) -> Any:
    if tagger is not None:
        return tagger
    name = settings["tagger"]
    if name == "none":
        return None
    if name.startswith("zero-shot tagger of"):  # given as an object: the same one is
        return "default"  # built from the taxonomy (run.json's digest is checked)
    if name != "default" and not Path(name).exists():
        raise InputError(
            f"the folder was tagged by {name!r}, which cannot be loaded again by name; "
            "pass the same tagger to update"
        )
    return name


def _check_models(run: dict[str, Any], embedder: Embedder, tagger: Any, folder: Path) -> None:
    """The model and the tagger must be those run.json names."""
    for key, value in model_record(embedder, tagger).items():
        if json.loads(json.dumps(value, default=str)) != run.get(key):
            raise InputError(
                f"the {key} of this update ({value}) is not the one {str(folder)!r} was "
                f"scored with ({run.get(key)}); update with the stored one"
            )


def _stored_config(run: dict[str, Any]) -> dict[str, Any]:
    return dict((run.get("pivots") or {}).get("config") or asdict(PivotConfig()))


def _topics(run: dict[str, Any]) -> list[str]:
    return list(run["topics"])


# -- the journal ---------------------------------------------------------------------


def _begin(journal: Path, state: dict[str, Any], *, resume: bool, force: bool) -> None:
    """Start this update's unfinished work in ``journal``, or take up an interrupted one."""
    if journal.exists():
        path = journal / "state.json"
        before = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if resume:  # its work is kept (the texts it embedded, without a persistent cache)
            if before is not None and before != json.loads(json.dumps(state, default=str)):
                raise OutputError(
                    f"cannot resume the update in {str(journal.parent)!r}: its input or "
                    "settings differ from the interrupted one's; run it with the same "
                    "input, or pass --force to drop it"
                )
        elif force:
            shutil.rmtree(journal)
        else:
            raise OutputError(
                f"an update of {str(journal.parent)!r} was interrupted before it changed "
                "the folder; pass --resume to finish it (the same input) or --force to drop "
                "it and run this one"
            )
    elif resume:
        raise OutputError(f"{str(journal.parent)!r} holds no interrupted update: nothing to resume")
    journal.mkdir(exist_ok=True)
    (journal / "state.json").write_text(json.dumps(state, indent=2, default=str))


def _commit(folder: Path, journal: Path) -> dict[str, Any]:
    """Move an update's staged files into the folder as ``commit.json`` lists them; each
    step is skipped when it is done already, so a commit killed half-way is finished by
    running this again. Returns the update's change log entry."""
    plan = json.loads((journal / COMMIT).read_text(encoding="utf-8"))
    staged = journal / "staged"
    if plan.get("append") and (staged / plan["append"][0]).exists():
        src, dst, offset = plan["append"]
        with (folder / dst).open("r+b") as out, (staged / src).open("rb") as new:
            out.truncate(offset)  # what a killed commit wrote goes first
            out.seek(offset)
            shutil.copyfileobj(new, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        (staged / src).unlink()
    for src, dst in plan["renames"]:
        if (folder / src).exists():
            (folder / dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder / src, folder / dst)
    entry_name = ""
    for src, dst in plan["moves"]:
        if dst.startswith(f"{UPDATES}/"):
            entry_name = dst
        if (staged / src).exists():
            (folder / dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / src, folder / dst)
    for name in plan["removes"]:
        shutil.rmtree(folder / name, ignore_errors=True)
    shutil.rmtree(journal)
    return dict(json.loads((folder / entry_name).read_text(encoding="utf-8")))


def _next_number(folder: Path) -> int:
    done = update_files(folder)
    return int(done[-1].stem) + 1 if done else 1


def _posts_part(folder: Path) -> tuple[list[list[str]], str]:
    """Renames that turn posts.parquet into the first part of ``posts/`` (where it is one
    file), and the name of the part that follows the last."""
    if (folder / "posts.parquet").is_file():
        return [["posts.parquet", "posts/part-00000.parquet"]], "part-00001.parquet"
    parts = table_files(folder / "posts.parquet")
    last = int(parts[-1].stem.removeprefix("part-")) if parts else -1
    return [], f"part-{last + 1:05d}.parquet"


# -- reading ------------------------------------------------------------------------


def _stored_ids(
    stored: ScoredFolder, source: Any, columns: Mapping[str, str], read: dict[str, Any]
) -> dict[str, int]:
    """The stored posts whose ids the new posts give again, with their rows. The new ids
    are read first (the new file is small next to the folder), then the folder's id
    column a batch at a time: nothing held grows with the folder. An id the folder made
    itself for a record without one (``file:row``) is not a given id."""
    ids: set[str] = set()
    for frame in PostReader(source, columns, **read).chunks(65_536):
        ids.update(frame["post_id"].dropna().astype(str))
    if not ids:
        return {}
    wanted = pa.array(sorted(ids), type=pa.string())
    found: dict[str, int] = {}
    for path in table_files(stored.path / "posts.parquet"):
        for batch in pq.ParquetFile(path).iter_batches(
            columns=["post_id", "source_row"], batch_size=65_536
        ):
            hit = pc.fill_null(pc.is_in(batch.column(0), value_set=wanted), False)
            for post_id, row in zip(
                batch.column(0).filter(hit).to_pylist(), batch.column(1).filter(hit).to_pylist()
            ):
                if not post_id.endswith(f":{row}"):
                    found.setdefault(post_id, row)
    return found


def _paged(table: pa.Table) -> pa.Table:
    """The rows of new posts that per-page work reads: scored, with a page."""
    keep = pc.fill_null(
        pc.and_(pc.equal(table.column("status"), "ok"), pc.is_valid(table.column("page_id"))),
        False,
    )
    return table.filter(keep).select([*COLUMNS, "topic_profile", "embedding"])


def _frames(table: pa.Table) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Posts (the columns per-page work reads), their topic profiles and embeddings."""
    profile = table.column("topic_profile").combine_chunks()
    embedding = table.column("embedding").combine_chunks()
    return (
        table.select(list(COLUMNS)).to_pandas(),
        vector_matrix(profile, profile.type.list_size),
        vector_matrix(embedding, embedding.type.list_size),
    )


def _vectors_file(stored: ScoredFolder, run: dict[str, Any], dim: int) -> RowFile | None:
    """The folder's vectors file (:data:`~narratives.scored.VECTORS`), where it holds a
    row for every stored post; None where there is none (a folder the Ray engine wrote)."""
    path = stored.path / VECTORS
    n = int(run["counts"]["read"])
    if not path.is_file() or path.stat().st_size < n * dim * 4:
        return None
    return RowFile.reader(path, n, dim)


def _redo_pages(
    stored: ScoredFolder,
    touched: list[str],
    new: pa.Table | None,
    config: PivotConfig,
    vectors: RowFile | None,
) -> tuple[pa.Table, pa.Table, pd.DataFrame, pd.DataFrame]:
    """Pivots and pages of the whole folder with those of the ``touched`` pages made
    again from their stored posts and the ``new`` ones; and the old rows of the touched
    pages (for the change log). The stored posts' embeddings come from ``vectors`` by
    row where the folder has them there, else from posts.parquet."""
    old_pivots = stored.arrow_table("pivots.parquet")
    old_pages = stored.arrow_table("pages.parquet")
    was_touched = {
        name: pc.fill_null(
            pc.is_in(t.column("page_id"), value_set=pa.array(touched, pa.string())), False
        )
        for name, t in (("pivots", old_pivots), ("pages", old_pages))
    }
    if touched and new is not None:
        rows = stored.rows_of_pages(touched)
        if vectors is None:
            old_rows = stored.take(rows, [*COLUMNS, "topic_profile", "embedding"])
        else:
            old_rows = stored.take(rows, [*COLUMNS, "topic_profile"])
            flat = pa.array(vectors[rows].reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
            old_rows = old_rows.append_column(new.schema.field("embedding"), column)
        both = pa.concat_tables([old_rows.cast(new.schema), new])
        posts, profiles, embeddings = _frames(both)
        pivots_t, pages_t, _ = pages_and_pivots(posts, profiles, embeddings, config)
    else:
        pivots_t = pd.DataFrame(columns=[f.name for f in schema.PIVOTS])
        pages_t = schema.PAGES.empty_table().to_pandas()
    new_pivots = to_table(pivots_t, schema.PIVOTS)
    kept_pivots = _conform(old_pivots.filter(pc.invert(was_touched["pivots"])), schema.PIVOTS)
    pivots = _by_page(pa.concat_tables([kept_pivots, new_pivots]))
    new_pages = to_table(pages_t, schema.PAGES)
    extra = [c for c in old_pages.column_names if c not in schema.PAGES.names]
    for name in extra:  # filled again by the operators that made them
        field = old_pages.schema.field(name)
        new_pages = new_pages.append_column(field, pa.nulls(new_pages.num_rows, field.type))
    kept_pages = old_pages.filter(pc.invert(was_touched["pages"]))
    kept_pages = _conform(kept_pages, new_pages.schema)
    pages = _by_page(pa.concat_tables([kept_pages, new_pages]))
    return (
        pivots,
        pages,
        old_pivots.filter(was_touched["pivots"]).to_pandas(),
        old_pages.filter(was_touched["pages"]).to_pandas(),
    )


def _conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    """``table`` with ``target``'s columns in its order: a column an older version did not
    write comes as nulls."""
    arrays = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in target
    ]
    return pa.Table.from_arrays(arrays, schema=target)


def _by_page(table: pa.Table) -> pa.Table:
    """Rows in page id order, a page's own rows in the order they were (a stable sort)."""
    return table.take(pc.sort_indices(table, sort_keys=[("page_id", "ascending")]))


# -- what changed --------------------------------------------------------------------


def _time_span(path: Path) -> dict[str, str | None]:
    """The first and last time of the new posts (``posts_from``, ``posts_to``)."""
    times = pq.read_table(path, columns=["created_at"]).column("created_at")
    span = pc.min_max(times).as_py()
    return {
        key: None if span[end] is None else span[end].isoformat()
        for key, end in (("posts_from", "min"), ("posts_to", "max"))
    }


def _pivot_row(row: Any) -> dict[str, Any]:
    return {
        "page_id": row["page_id"],
        "at": pd.Timestamp(row["at"]).isoformat(),
        "kind": row["kind"],
        "magnitude": round(float(row["magnitude"]), 4),
        "before_lang": row["before_lang"],
        "after_lang": row["after_lang"],
        "posts_after": None if pd.isna(row["posts_after"]) else int(row["posts_after"]),
        "provisional": bool(row["provisional"]) if pd.notna(row["provisional"]) else None,
    }


def _pivot_changes(
    old: pd.DataFrame, pivots: pa.Table, touched: list[str], config: PivotConfig
) -> dict[str, Any]:
    """Pivots of the touched pages found, confirmed, moved and withdrawn by this update:
    a pivot at the same time as before is the same one (confirmed when it was
    provisional and is no longer); otherwise each new pivot of a page is matched to the
    nearest old one it has left unmatched (moved), and what is left is new or withdrawn."""
    mask = pc.is_in(pivots.column("page_id"), value_set=pa.array(touched, pa.string()))
    now = pivots.filter(pc.fill_null(mask, False)).to_pandas()
    out: dict[str, list] = {"new": [], "confirmed": [], "moved": [], "withdrawn": []}
    olds = {page: rows.to_dict("records") for page, rows in old.groupby("page_id")}
    news = {page: rows.to_dict("records") for page, rows in now.groupby("page_id")}
    for page in touched:
        before, after = olds.get(page, []), news.get(page, [])
        times = {pd.Timestamp(r["at"]): r for r in before}
        left = []
        for row in after:
            was = times.pop(pd.Timestamp(row["at"]), None)
            if was is None:
                left.append(row)
            elif bool(was.get("provisional")) and not bool(row["provisional"]):
                out["confirmed"].append(_pivot_row(row))
        unmatched = list(times.values())
        for row in left:
            if unmatched:
                near = min(
                    unmatched, key=lambda r: abs(pd.Timestamp(r["at"]) - pd.Timestamp(row["at"]))
                )
                unmatched.remove(near)
                out["moved"].append(
                    {**_pivot_row(row), "from": pd.Timestamp(near["at"]).isoformat()}
                )
            else:
                out["new"].append(_pivot_row(row))
        for row in unmatched:
            out["withdrawn"].append(_pivot_row(row))
    return {
        **out,
        "provisional_rule": (
            f"a page's last pivot is reported from {config.min_posts} posts after it and "
            f"stays provisional while at most {config.max_burst_posts} posts (or "
            f"{config.max_burst_share:g} of the regime before) follow it"
        ),
    }


def _timing_changes(old: pd.DataFrame, pages: pa.Table, touched: list[str]) -> dict[str, Any]:
    """Touched pages whose timing estimate (UTC offset) moved by more than an hour, or
    that got or lost one."""
    mask = pc.is_in(pages.column("page_id"), value_set=pa.array(touched, pa.string()))
    now = pages.filter(pc.fill_null(mask, False)).to_pandas().set_index("page_id")
    before = old.set_index("page_id") if len(old) else old
    moved = []
    for page in touched:
        if page not in now.index:
            continue
        to = _hours(now.at[page, "utc_offset_hours"])
        frm = _hours(before.at[page, "utc_offset_hours"]) if page in before.index else None
        if to is None and frm is None:
            continue
        if to is not None and frm is not None and circular_hours(to - frm) <= TIMING_MOVE_HOURS:
            continue
        moved.append(
            {
                "page_id": page,
                "from_hours": frm,
                "to_hours": to,
                "confidence": None
                if pd.isna(now.at[page, "timing_confidence"])
                else round(float(now.at[page, "timing_confidence"]), 3),
            }
        )
    return {"moved_more_than_hours": TIMING_MOVE_HOURS, "pages": moved}


def _hours(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _stored_narratives(stored: ScoredFolder) -> dict[str, Any]:
    """:meth:`PostCounts.narrative_posts` of a folder whose run.json lacks them (the Ray
    engine does not count them): counted over the folder a batch at a time, once."""
    counts = PostCounts()
    for path in table_files(stored.path / "posts.parquet"):
        for batch in pq.ParquetFile(path).iter_batches(
            columns=["narratives", "status", "warning", "top_narrative"], batch_size=65_536
        ):
            counts.add(batch.to_pandas())
    return counts.narrative_posts()


def _narrative_shares(
    before: dict[str, Any], new: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each narrative's share of the new scored posts against its share of those before
    (``before`` and ``new`` as :meth:`PostCounts.narrative_posts` gives them), largest
    rise first; and the counts after this update."""
    shares = []
    ids = sorted({*before["counts"], *new["counts"]})
    for narrative in ids:
        old_n, new_n = before["counts"].get(narrative, 0), new["counts"].get(narrative, 0)
        shares.append(
            {
                "id": narrative,
                "share_new": round(new_n / new["posts"], 4) if new["posts"] else None,
                "share_before": round(old_n / before["posts"], 4) if before["posts"] else None,
                "posts_new": new_n,
            }
        )
    shares.sort(key=lambda s: (-(s["share_new"] or 0) + (s["share_before"] or 0), s["id"]))
    after = {
        "posts": before["posts"] + new["posts"],
        "counts": {k: before["counts"].get(k, 0) + new["counts"].get(k, 0) for k in ids},
    }
    return shares, after


def _new_run(
    run: dict[str, Any],
    counts: PostCounts,
    pivots: pa.Table,
    pages: pa.Table,
    config: PivotConfig,
    number: int,
) -> dict[str, Any]:
    """run.json after the update: the counts of the whole folder, the pivot summary made
    from the whole pages table, and the update's number."""
    out = dict(run)
    total = dict(run["counts"])
    for key, value in counts_record(vars(counts)).items():
        total[key] = total.get(key, 0) + value
    frame = pages.select(["page_id", "pivot_status", "timing_status"]).to_pandas()
    status = frame["pivot_status"].fillna("").astype(str)
    errors = page_errors(frame)
    total.update(pages=pages.num_rows, pivots=pivots.num_rows, page_errors=errors["pages"])
    out["counts"] = total
    out["pivots"] = {
        "config": asdict(config),
        "pages": int((status != "no timed posts").sum()),
        "pages_too_few_posts": int(status.str.startswith("too few posts").sum()),
        "pages_with_errors": int(status.str.startswith("error:").sum()),
        "pivots": pivots.num_rows,
        "seconds": (run.get("pivots") or {}).get("seconds"),
    }
    out["page_errors"] = errors
    out["updates"] = number
    out["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return out


# -- staging -------------------------------------------------------------------------


def _stage_tables(staged: Path, pivots: pa.Table, pages: pa.Table) -> list[list[str]]:
    """pivots.parquet and pages.parquet written into ``staged``; their moves."""
    for table, name in ((pivots, "pivots.parquet"), (pages, "pages.parquet")):
        pq.write_table(table, staged / name)
    return [["pivots.parquet", "pivots.parquet"], ["pages.parquet", "pages.parquet"]]


def _stage_operators(
    folder: Path, staged: Path, new_part: Path, entry: dict[str, Any]
) -> list[list[str]]:
    """timing and coordination, where the folder has them, made again over the folder as
    it will be (a view of it in ``staged/view`` that links the stored files and the new
    ones), with their stored settings; what coordination changed goes into ``entry``."""
    has_timing = (folder / "timing.parquet").is_file()
    has_coordination = (folder / "coordination.parquet").is_file()
    if not (has_timing or has_coordination):
        return []
    from narratives.operators.coordination import update_coordination
    from narratives.operators.timing import rerun_timing

    view = staged / "view"
    (view / "posts").mkdir(parents=True)
    parts = [*table_files(folder / "posts.parquet"), new_part]
    for i, path in enumerate(parts):
        _link(path, view / "posts" / f"part-{i:05d}.parquet")
    for name in ("pivots.parquet", "pages.parquet"):
        _link(staged / name, view / name)
    for name in ("run.json", "coordination.parquet", "coordination_edges.parquet",
                 "timing.parquet"):  # fmt: skip
        if (folder / name).is_file():
            shutil.copy2(folder / name, view / name)
    names = []
    if has_coordination:  # rewrites pages.parquet too (its coordination_clusters)
        entry["coordination"] = update_coordination(view, entry["rows"][0])
        names += ["coordination.parquet", "coordination_edges.parquet", "pages.parquet"]
    if has_timing:
        rerun_timing(view, entry["touched_pages"])
        names += ["timing.parquet", "timing_pairs.parquet"]
    for name in names:
        os.replace(view / name, staged / name)
    shutil.rmtree(view)
    return [[name, name] for name in names if name != "pages.parquet"]  # pages: staged


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a hard link to ``src`` (a copy where the file system has none)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def change_log(scored_dir: str | Path, since: int | str | None = None) -> list[dict[str, Any]]:
    """The change log entries of a scored folder (``updates/NNNN.json``), oldest first:
    all, those after update number ``since`` (an int, or digits), or those made at or
    after the time ``since`` (ISO 8601; UTC when it has no zone)."""
    folder = Path(scored_dir)
    if not folder.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder written by narratives score")
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in update_files(folder)]
    if since is None:
        return entries
    if isinstance(since, int) or str(since).isdigit():
        return [e for e in entries if e["update"] > int(since)]
    try:
        when = pd.Timestamp(str(since))
    except ValueError as exc:
        raise InputError(
            f"--since takes an update number or a time (2026-12-07T06:00), not {since!r}"
        ) from exc
    when = when.tz_localize("UTC") if when.tzinfo is None else when
    return [e for e in entries if pd.Timestamp(e["created"]) >= when]


__all__ = ["change_log", "update"]
