"""The int8 ONNX backend, the text cache, and resuming a killed run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

from narratives.embedding.text_cache import EmbeddingCache, normalise, text_key
from narratives.errors import ModelError, OutputError

#: Multilingual probes beyond the converter's: news, ads, slogans, long and mixed text.
MORE_PROBES = [
    "Thousands gathered in Athens to protest against the new school measures.",
    "美国政客炒作所谓“强迫劳动”，实际上是为了打压中国新疆的棉花产业。",
    "Лучшие скидки недели: платья, обувь и сумки со скидкой до 70%!",
    "Los medios occidentales difunden mentiras sobre Hong Kong una y otra vez.",
    "Việt Nam và Trung Quốc ký kết thỏa thuận hợp tác kinh tế mới.",
    "K-pop fans, follow back! 🔥 #BTS #followback",
    "President Biden predicts dire consequences for Russia if it invades Ukraine. " * 20,
    "日本将福岛核污染水排海，严重威胁太平洋沿岸国家人民的健康。",
]


def test_default_backend_is_onnx_int8_and_close_to_torch(embedder, torch_embedder):
    from narratives.embedding.e5convert import PROBE_TEXTS

    assert embedder.backend == "onnx" and "onnx-int8" in embedder.model_version
    texts = list(PROBE_TEXTS) + MORE_PROBES
    cosine = np.einsum("ij,ij->i", embedder.encode(texts), torch_embedder.encode(texts))
    assert cosine.min() >= 0.98, cosine.round(4)
    # the quantised model is not the torch model: a test that cannot tell them apart is void
    assert cosine.mean() < 0.99999


def test_onnx_is_deterministic_and_counts_tokens_like_torch(embedder, torch_embedder):
    texts = [*MORE_PROBES, "short"]
    assert np.array_equal(embedder.encode(texts), embedder.encode(texts))
    assert embedder.token_counts(texts).tolist() == torch_embedder.token_counts(texts).tolist()


def test_backend_choices_are_checked(model_dir):
    from narratives import Embedder

    with pytest.raises(ValueError, match="backend must be one of"):
        Embedder("default", backend="tensorrt")
    with pytest.raises(ModelError, match="--backend torch"):
        Embedder("no-such-org/no-such-model", backend="onnx")


def test_normalised_texts_share_a_key():
    assert normalise("  Taiwan\u3000is\n\npart of\tChina ") == "Taiwan is part of China"
    assert normalise("Cafe\u0301") == "Café"  # NFC
    assert text_key(normalise("a  b")) == text_key(normalise(" a b"))
    assert text_key("a b") != text_key("a c")


def test_identical_texts_are_encoded_once(embedder, monkeypatch):
    seen: list[list[str]] = []
    encode = embedder._encode
    monkeypatch.setattr(embedder, "_encode", lambda texts: seen.append(texts) or encode(texts))
    vectors = embedder.encode(["Xinjiang cotton", " Xinjiang  cotton", "Xinjiang cotton", "x"])
    assert seen == [["Xinjiang cotton", "x"]]
    assert np.array_equal(vectors[0], vectors[1]) and np.array_equal(vectors[0], vectors[2])


def test_cached_vectors_skip_the_encoder(embedder, monkeypatch, tmp_path):
    texts = [
        "Fort Detrick must be investigated",
        "新款连衣裙特价",
        "Fort Detrick must be investigated",
    ]
    cache = EmbeddingCache(tmp_path / "c.sqlite", embedder.dim)
    try:
        first = embedder.encode(texts, cache)
        assert len(cache) == 2
        monkeypatch.setattr(embedder, "_encode", lambda texts: pytest.fail("encoder called"))
        again = embedder.encode(list(reversed(texts)), cache)
    finally:
        cache.close()
    assert np.array_equal(again, first[::-1])
    # a cache written by another model (another dimension) is not used
    other = EmbeddingCache(tmp_path / "c.sqlite", embedder.dim + 1)
    assert other.get_vectors([text_key(normalise(texts[0]))]) == {}


def test_rescoring_from_the_cache_gives_the_same_output(embedder, tagger, tmp_path, monkeypatch):
    from narratives import score

    cache = tmp_path / "cache.sqlite"
    first = score(SAMPLE, embedder=embedder, tagger=tagger, cache=cache, progress=False)
    unique = first.posts.loc[first.posts["status"] == "ok", "text"].map(normalise).nunique()
    assert first.run["cache"]["misses"] >= unique  # and the topic descriptions
    monkeypatch.setattr(embedder, "_encode", lambda texts: pytest.fail("encoder called"))
    monkeypatch.setattr(
        sys.modules["narratives.pipeline.scorer"],
        "detect_languages",
        lambda texts: pytest.fail("langid called"),
    )
    again = score(SAMPLE, embedder=embedder, tagger=tagger, cache=cache, progress=False)
    assert again.run["cache"]["misses"] == 0
    pd.testing.assert_frame_equal(again.posts, first.posts)
    pd.testing.assert_frame_equal(again.pivots, first.pivots)
    assert np.array_equal(again.embeddings, first.embeddings, equal_nan=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "narratives", "score", str(SAMPLE), *args]


def _outputs(out: Path) -> tuple[pa.Table, pa.Table, pa.Table, dict]:
    run = json.loads((out / "run.json").read_text())
    for volatile in ("created", "timings", "cache"):
        run.pop(volatile)
    run["pivots"].pop("seconds")
    return (
        pq.read_table(out / "posts.parquet"),
        pq.read_table(out / "pivots.parquet"),
        pq.read_table(out / "pages.parquet"),
        run,
    )


@pytest.mark.subprocess
def test_a_killed_run_resumes_to_the_same_output(model_dir, tagger, tmp_path):
    """SIGKILL a real run once part of its texts are committed, resume it, and compare
    with an uninterrupted run: every table equal, no row lost or repeated."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    options = ["--no-cache", "--chunk-size", "16", "--batch-size", "8"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_cli("-o", str(whole), *options), check=True, env=env, capture_output=True)

    db = killed / ".partial" / "embeddings.sqlite"
    proc = subprocess.Popen(
        _cli("-o", str(killed), *options),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    committed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            with sqlite3.connect(db) as con:
                try:
                    committed = con.execute("SELECT COUNT(vector) FROM texts").fetchone()[0]
                except sqlite3.OperationalError:
                    committed = 0
            if committed >= 32:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed >= 32
    assert not (killed / "run.json").exists()

    refused = subprocess.run(
        _cli("-o", str(killed), *options), env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--resume" in refused.stderr
    changed = subprocess.run(
        _cli("-o", str(killed), "--resume", "--no-cache", "--chunk-size", "32"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert changed.returncode == 2 and "chunk_size" in changed.stderr.replace("\n", " ")

    subprocess.run(
        _cli("-o", str(killed), "--resume", *options), check=True, env=env, capture_output=True
    )
    assert not (killed / ".partial").exists()
    a, b = _outputs(whole), _outputs(killed)
    for left, right in zip(a[:3], b[:3]):
        assert left.equals(right)
    assert a[3] == b[3]
    rows = b[0].column("source_row").to_pylist()
    assert len(rows) == len(set(rows)) == a[3]["counts"]["read"]


def test_rowfile_reads_and_writes_rows(tmp_path):
    from narratives.rowfile import RowFile

    values = np.arange(24, dtype=np.float32).reshape(6, 4)
    m = RowFile(tmp_path / "v.f32", 6, 4)
    m[0:2] = values[0:2]
    m[np.array([5, 3])] = values[[5, 3]]
    assert np.array_equal(m[[3, 0, 5]], values[[3, 0, 5]])
    assert np.array_equal(m[np.array([False, True, False, False, False, False])], values[[1]])
    assert not m[2:3].any() and not m[4:5].any()  # never written: zeros
    assert np.array_equal(np.asarray(m)[[0, 1, 3, 5]], values[[0, 1, 3, 5]])
    with pytest.raises(IndexError):
        m[[6]]
    m.close()


@pytest.mark.subprocess
def test_cli_keeps_vectors_on_disk_and_matches_the_api(sample_result, tmp_path):
    """The command line keeps a run's vectors in a file, not in memory; the output is the
    same as the in-memory API's."""
    out = tmp_path / "out"
    subprocess.run(_cli("-o", str(out)), check=True, capture_output=True)
    posts = pq.read_table(out / "posts.parquet")
    ok = (sample_result.posts["status"] == "ok").to_numpy()
    vectors = np.array(posts.column("embedding").to_pylist(), dtype=object)
    stored = np.stack(vectors[ok])
    assert np.array_equal(stored, sample_result.embeddings[ok])
    assert all(v is None for v in vectors[~ok])
    assert posts.column("post_id").to_pylist() == sample_result.posts["post_id"].tolist()
    assert pq.read_table(out / "pivots.parquet").num_rows == len(sample_result.pivots)


def test_resume_of_a_finished_run_is_refused(sample_result, tmp_path):
    from narratives.pipeline.score import begin_run

    sample_result.save(tmp_path / "out")
    with pytest.raises(OutputError, match="nothing to resume"):
        begin_run(tmp_path / "out", {"input": 1}, resume=True, force=False)


def test_exports_of_folders_with_one_name_do_not_collide(tmp_path):
    from narratives.embedding.onnx import onnx_dir

    a, b = tmp_path / "a" / "model", tmp_path / "b" / "model"
    for folder in (a, b):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"w")
    assert onnx_dir(a) != onnx_dir(b)
    before = onnx_dir(a)
    os.utime(a / "model.safetensors", ns=(1, 1))  # the folder changed: export again
    assert onnx_dir(a) != before
    assert onnx_dir(a, exact_name=True).name.startswith("model-onnx-int8-o")


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("option", "message"),
    [(["--backend", "tensorrt"], "--backend must be one of"), (["--engine", "spark"], "--engine")],
)
def test_cli_refuses_bad_choices_before_touching_the_output(option, message, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(_cli("-o", str(out), *option), capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr
    assert not out.exists()


def test_a_tagger_met_by_another_backend_says_so(tagger, torch_embedder, embedder, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="narratives.tagging.tagger"):
        tagger.check_embedder(embedder)
        assert not caplog.records
        tagger.check_embedder(torch_embedder)
    assert "another backend" in caplog.text
