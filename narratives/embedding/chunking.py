"""Long texts for an encoder that reads 512 tokens: cut into chunks at whitespace, each
embedded, and the chunks' vectors averaged (news articles run to thousands of tokens).
Taggers trained on long texts keep their chunking (``chunk_chars``, ``max_chunks``) and
embed texts the same way when they tag."""

from __future__ import annotations

from typing import Any

import numpy as np


def chunks(text: str, chunk_chars: int, max_chunks: int) -> list[str]:
    """A text cut at whitespace near every ``chunk_chars`` characters, at most
    ``max_chunks`` pieces."""
    pieces: list[str] = []
    rest = text.strip()
    while rest and len(pieces) < max_chunks:
        cut = len(rest)
        if cut > chunk_chars:
            space = rest.rfind(" ", chunk_chars // 2, chunk_chars)
            cut = space if space > 0 else chunk_chars
        pieces.append(rest[:cut])
        rest = rest[cut:].strip()
    return pieces


def embed_long(texts: list[str], embedder: Any, chunk_chars: int, max_chunks: int) -> np.ndarray:
    """Mean of the embeddings of a text's chunks (cut at whitespace near ``chunk_chars``),
    renormalised: the encoder reads at most 512 tokens, news articles run to thousands."""
    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        for piece in chunks(text, chunk_chars, max_chunks):
            pieces.append(piece)
            owner.append(i)
    vectors = embedder.encode(pieces)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
    np.add.at(out, np.array(owner), vectors)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


__all__ = ["chunks", "embed_long"]
