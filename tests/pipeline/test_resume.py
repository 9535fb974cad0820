"""Resume from Python: ``narratives.score(..., output=, resume=True)`` finishes a run that
died, from the texts it had committed, to the output of a run that did not."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import SAMPLE

import narratives
from narratives.errors import InputError, OutputError
from narratives.pipeline.scorer import PostScorer


def _tables(out):
    return [pq.read_table(out / f"{name}.parquet") for name in ("posts", "pivots", "pages")]


def test_a_run_that_died_is_resumed_from_python(embedder, tagger, tmp_path, monkeypatch):
    options = {"embedder": embedder, "tagger": tagger, "cache": False, "chunk_size": 64}
    whole = tmp_path / "whole"
    narratives.score(SAMPLE, output=whole, progress=False, **options)

    died = tmp_path / "died"
    real_call = PostScorer.__call__
    calls = []

    def dies_at_the_third_chunk(self, texts):
        calls.append(len(texts))
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real_call(self, texts)

    monkeypatch.setattr(PostScorer, "__call__", dies_at_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        narratives.score(SAMPLE, output=died, progress=False, **options)
    monkeypatch.setattr(PostScorer, "__call__", real_call)
    assert (died / ".partial" / "state.json").is_file() and not (died / "run.json").exists()

    with pytest.raises(OutputError, match="--resume"):  # not without resume or force
        narratives.score(SAMPLE, output=died, progress=False, **options)
    with pytest.raises(OutputError, match=r"settings\.chunk_size"):
        narratives.score(SAMPLE, output=died, resume=True, progress=False,
                         **{**options, "chunk_size": 32})  # fmt: skip

    encoded = []
    real_encode = embedder._encode
    monkeypatch.setattr(
        embedder, "_encode", lambda texts: encoded.extend(texts) or real_encode(texts)
    )
    result = narratives.score(SAMPLE, output=died, resume=True, progress=False, **options)
    unique = result.posts.loc[result.posts["status"] == "ok", "text"].nunique()
    assert 0 < len(encoded) < unique  # the two chunks scored before the kill came back cached
    assert not (died / ".partial").exists()
    for before, after in zip(_tables(whole), _tables(died)):
        assert before.equals(after)
    with pytest.raises(OutputError, match="nothing to resume"):
        narratives.score(SAMPLE, output=died, resume=True, progress=False, **options)


def test_resume_needs_a_folder_and_a_file(embedder, tmp_path):
    with pytest.raises(InputError, match="output="):
        narratives.score(SAMPLE, embedder=embedder, resume=True)
    frame = narratives.read_posts(SAMPLE).posts[["post_id", "page_id", "text", "created_at"]]
    with pytest.raises(InputError, match="save the posts"):
        narratives.score(frame, embedder=embedder, output=tmp_path / "out")
