"""A persistent cache of what is computed per text: embedding, and language and its score
by language identifier.

Influence-operation content is copy-pasted at scale, and dumps are re-scored with new
taxonomies and taggers: a text is embedded once per model, ever. Texts are keyed by the
SHA-256 of their normalised form (:func:`normalise`: Unicode NFC, whitespace runs as one
space, no leading or trailing space), which is also the form the encoder reads, so that a
cached vector is exactly what the encoder would give.

One SQLite file per embedder (model id, version, backend, prompt, length limit) under
``<cache>/embeddings/``. SQLite gives atomic commits (a killed run leaves every finished
chunk behind and nothing half-written), a lock between processes, and it ships with
Python. Vectors are stored as float32 bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_SPACE = re.compile(r"\s+")
#: SQLite's default limit on the number of ``?`` in one statement is 32766; stay far below.
_BATCH = 900


def normalise(text: str) -> str:
    """The form of a text that is embedded and keyed: NFC, single spaces, trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def text_key(normalised: str) -> bytes:
    return hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).digest()[:16]


def cache_name(fingerprint: dict) -> str:
    """File name of the cache of an embedder described by ``fingerprint``."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", str(fingerprint.get("id", "model")))[-40:]
    return f"{slug}-{digest[:16]}.sqlite"


def open_cache(cache: bool | str | Path | None, embedder: Any) -> EmbeddingCache:
    """The text cache of ``embedder``'s vectors (anything with ``fingerprint`` and ``dim``):
    ``True`` for its file under ``<cache>/embeddings/`` (kept for later runs), a path for
    that SQLite file, False or None for one in memory (this run only)."""
    from narratives.embedding.model_cache import cache_dir

    if cache is True:
        path: Path | None = cache_dir() / "embeddings" / cache_name(embedder.fingerprint)
    else:
        path = Path(cache) if cache else None
    return EmbeddingCache(path, embedder.dim)


class EmbeddingCache:
    """Vectors (and languages) by text key, in one SQLite file (``None``: in memory)."""

    def __init__(self, path: str | Path | None, dim: int) -> None:
        self.dim = dim
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # several processes (Ray actors) may share one file: wait for each other's commits;
        # an actor is made in one thread and called in another, one call at a time
        self._db = sqlite3.connect(
            ":memory:" if self.path is None else str(self.path),
            timeout=120,
            check_same_thread=False,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # texts.lang and texts.lang_score held narratives 0.2's languages (langdetect's);
        # unused now, they stay so that an older narratives can share the cache folder
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS texts (key BLOB PRIMARY KEY, vector BLOB, "
            "lang TEXT, lang_score REAL) WITHOUT ROWID"
        )
        # languages by identifier: another identifier, or other candidate languages, give
        # other answers
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS langs (identifier TEXT, key BLOB, lang TEXT, "
            "score REAL, PRIMARY KEY (identifier, key)) WITHOUT ROWID"
        )
        self._db.commit()
        self.hits = self.misses = 0

    def _select(self, column: str, keys: Sequence[bytes]) -> list[tuple]:
        unique = list(dict.fromkeys(keys))
        rows: list[tuple] = []
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            rows += self._db.execute(
                f"SELECT key, {column} FROM texts WHERE {column.split(',')[0]} IS NOT NULL "
                f"AND key IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
        return rows

    def get_vectors(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors of those keys that have one."""
        found = {
            key: vector
            for key, blob in self._select("vector", keys)
            if (vector := np.frombuffer(blob, dtype=np.float32)).shape[0] == self.dim
        }
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        return found

    def put_vectors(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store and commit (one transaction: all of them or, if killed, none)."""
        rows = [
            (k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vectors)
        ]
        with self._db:
            self._db.executemany(
                "INSERT INTO texts (key, vector) VALUES (?, ?) ON CONFLICT (key) "
                "DO UPDATE SET vector = excluded.vector WHERE vector IS NULL",
                rows,
            )

    def get_langs(self, keys: Sequence[bytes], identifier: str) -> dict[bytes, tuple[str, float]]:
        """The (language, score) that the language identifier ``identifier``
        (:func:`~narratives.embedding.langid.identifier_id`) gave those keys it has read."""
        unique = list(dict.fromkeys(keys))
        found: dict[bytes, tuple[str, float]] = {}
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            rows = self._db.execute(
                "SELECT key, lang, score FROM langs WHERE identifier = ? "
                f"AND key IN ({','.join('?' * len(part))})",
                [identifier, *part],
            )
            found.update((key, (lang, score)) for key, lang, score in rows)
        return found

    def put_langs(
        self, keys: Sequence[bytes], langs: Sequence[str], scores: Any, identifier: str
    ) -> None:
        rows = [(identifier, k, lang, float(x)) for k, lang, x in zip(keys, langs, scores)]
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO langs (identifier, key, lang, score) VALUES (?, ?, ?, ?)",
                rows,
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(vector) FROM texts").fetchone()[0])

    def close(self) -> None:
        self._db.close()
