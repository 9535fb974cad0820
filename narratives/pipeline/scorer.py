"""The per-post work, a chunk of texts at a time: language, embedding, topic profile,
narratives, and a note when the model clips a text. The local engine runs one
:class:`PostScorer`; each Ray actor holds its own (see :mod:`narratives.pipeline.engines`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.embedding.embedder import Embedder
from narratives.embedding.langid import detect_languages, identifier_id
from narratives.embedding.text_cache import EmbeddingCache, normalise, text_key
from narratives.errors import InputError
from narratives.pivots.topics import TOPICS, topic_profiles, topic_prototypes
from narratives.tagging.tagger import NarrativeTagger
from narratives.tagging.taxonomy import load_taxonomy


class PostScorer:
    """What is computed for each post. Languages and vectors come from ``store`` (the
    run's text cache) where it has them and are committed to it otherwise; ``tagger`` is
    a :class:`~narratives.tagging.tagger.NarrativeTagger` or None for no tags;
    ``languages`` the candidate languages of language identification (None: all)."""

    def __init__(
        self,
        embedder: Embedder,
        tagger: NarrativeTagger | None,
        store: EmbeddingCache,
        languages: tuple[str, ...] | None = None,
    ) -> None:
        self.embedder, self.tagger, self.store = embedder, tagger, store
        self.languages = languages
        self._identifier = identifier_id(languages)
        self.timings = {"langid_s": 0.0, "embed_s": 0.0, "topics_s": 0.0, "tag_s": 0.0}
        self._prototypes: np.ndarray | None = None  # the topics' anchors, at the first call

    def __call__(self, texts: list[str]) -> dict[str, Any]:
        embedder, store, timings = self.embedder, self.store, self.timings
        chunk = [normalise(t) for t in texts]
        keys = [text_key(t) for t in chunk]
        t = time.perf_counter()
        known = store.get_langs(keys, self._identifier)
        todo = {k: text for k, text in zip(keys, chunk) if k not in known}
        if todo:
            codes, scores = detect_languages(list(todo.values()), self.languages)
            store.put_langs(list(todo), codes, scores, self._identifier)
            known.update(zip(todo, zip(codes, scores)))
        timings["langid_s"] += time.perf_counter() - t
        t = time.perf_counter()
        vectors = embedder.encode(chunk, store)
        notes = self._truncation_notes(chunk)
        timings["embed_s"] += time.perf_counter() - t
        t = time.perf_counter()
        if self._prototypes is None:
            self._prototypes = topic_prototypes(embedder, store)
        profiles = topic_profiles(vectors, self._prototypes)
        timings["topics_s"] += time.perf_counter() - t
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


def bar_disabled(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a run's ``progress``: None (shown only on a terminal) stays."""
    return None if progress is None else not progress


def model_record(embedder: Embedder, tagger: NarrativeTagger | None) -> dict[str, Any]:
    """What run.json says of the model, the taxonomy and the tagger that scored a run
    (what an update's must equal)."""
    return {
        "model": embedder.info,
        "taxonomy": None
        if tagger is None
        else {
            "id": tagger.taxonomy.id,
            "version": tagger.taxonomy.version,
            "digest": tagger.taxonomy.digest,
        },
        "tagger": None if tagger is None else {"kind": tagger.kind, "model": tagger.model},
    }


def counts_record(counts: Mapping[str, int]) -> dict[str, int]:
    """run.json's counts of posts from a :class:`PostCounts` (or the same keys)."""
    return {
        "read": counts["read"],
        "ok": counts["ok"],
        "rejected": counts["read"] - counts["ok"],
        "warned": counts["warned"],
        "tagged": counts["tagged"],
    }


class PostCounts:
    """What run.json counts of the posts, added up a chunk at a time."""

    def __init__(self) -> None:
        self.read = self.ok = self.warned = self.tagged = 0
        #: scored posts per top-level narrative they carry
        self.narratives: dict[str, int] = {}

    def add(self, posts: pd.DataFrame) -> None:
        self.read += len(posts)
        self.ok += int((posts["status"] == "ok").sum())
        self.warned += int(posts["warning"].notna().sum())
        self.tagged += int(posts["top_narrative"].notna().sum())
        for tags in posts["narratives"]:  # a list, or an array where read back; None
            for entry in () if tags is None or isinstance(tags, float) else tags:
                if "." not in entry["id"]:
                    self.narratives[entry["id"]] = self.narratives.get(entry["id"], 0) + 1

    def narrative_posts(self) -> dict[str, Any]:
        """What run.json keeps of them: the scored posts, and per narrative those that
        carry it (what an update compares the share of its new posts with)."""
        return {"posts": self.ok, "counts": dict(sorted(self.narratives.items()))}


class PostResults:
    """The per-post columns of a chunk of read posts, filled with what
    :class:`PostScorer` gives for its scored rows: the rows of posts.parquet."""

    def __init__(self, posts: pd.DataFrame, dim: int) -> None:
        n = len(posts)
        self.input_posts = posts
        self.ok_idx = np.flatnonzero(posts["status"].to_numpy() == "ok")
        self.texts = posts["text"].to_numpy(dtype=object)[self.ok_idx].tolist()
        self.lang = np.full(n, None, dtype=object)
        self.lang_score = np.full(n, np.nan, dtype=np.float32)
        self.embeddings = np.full((n, dim), np.nan, dtype=np.float32)
        self.warnings = np.array(
            [w if isinstance(w, str) else None for w in posts["warning"]], dtype=object
        )
        self.profiles = np.full((n, len(TOPICS)), np.nan, dtype=np.float32)
        self.narratives: list[Any] = [[] if s == "ok" else None for s in posts["status"]]
        self.top_narrative = np.full(n, None, dtype=object)
        self.top_score = np.full(n, np.nan, dtype=np.float32)

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


def describe_tagger(tagger: Any) -> str:
    """A tagger as a run's settings name it (a resumed run or an update must use the same
    one)."""
    if tagger is None:
        return "none"
    if isinstance(tagger, NarrativeTagger):
        taxonomy = tagger.taxonomy
        return f"{tagger.kind} tagger of {taxonomy.id} {taxonomy.version} ({taxonomy.digest})"
    return str(tagger)


def load_tagger(
    tagger: Any, embedder: Embedder, taxonomy: str | Path | None
) -> NarrativeTagger | None:
    """The tagger a run asks for: None (no tags), ``"default"`` (the zero-shot tagger of
    ``taxonomy``), a tagger folder, or a :class:`NarrativeTagger`; it reads texts with
    ``embedder`` unless it has a fine-tuned encoder of its own. Refuses a tagger built
    for another taxonomy than ``taxonomy``, or on another model's embeddings."""
    if tagger is None:
        return None
    built_from_taxonomy = str(tagger) == "default"  # the zero-shot tagger of `taxonomy`
    if not isinstance(tagger, NarrativeTagger):
        tagger = NarrativeTagger.from_pretrained(tagger, embedder, taxonomy)
    other = taxonomy is not None and not built_from_taxonomy
    if other and load_taxonomy(taxonomy).digest != tagger.taxonomy.digest:
        raise InputError(
            f"the tagger was built for taxonomy {tagger.taxonomy.id} "
            f"{tagger.taxonomy.version}, not {str(taxonomy)!r}; drop --taxonomy or "
            "use the tagger 'default', which is built from the taxonomy you give"
        )
    if tagger.embedder is None:
        tagger = tagger.with_embedder(embedder)
    tagger.check_embedder(embedder)  # not for a tagger with its own fine-tuned encoder
    return tagger


def actor_spec(
    embedder: Embedder,
    tagger: NarrativeTagger | None,
    store: EmbeddingCache,
    tmp: Path,
    languages: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """How a Ray actor makes the same embedder, tagger, cache and language candidates
    as this process."""
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
        "languages": None if languages is None else list(languages),
    }


def _count(count: int, limit: int) -> str:
    return f"more than {limit}" if count == limit + 1 else str(count)


__all__ = [
    "PostCounts",
    "PostResults",
    "PostScorer",
    "actor_spec",
    "bar_disabled",
    "counts_record",
    "describe_tagger",
    "load_tagger",
    "model_record",
]
