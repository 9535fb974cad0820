"""The Ray engine gives the local engine's output (a local Ray instance with 2 CPUs)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE

from narratives.errors import InputError


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is an extra: pip install 'narratives[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_gives_the_local_output(ray_local, sample_result, embedder, tagger):
    from narratives import score

    ours = score(
        SAMPLE,
        embedder=embedder,
        tagger=tagger,
        engine="ray",
        chunk_size=64,
        cache=None,  # the actors embed every text themselves
        progress=False,
    )
    local = sample_result
    assert ours.run["timings"]["ray_s"] > 0
    columns = ["post_id", "page_id", "status", "error", "warning", "lang", "topic"]
    columns += ["narratives", "top_narrative", "top_score", "source_row"]
    pd.testing.assert_frame_equal(ours.posts[columns], local.posts[columns])
    ok = (local.posts["status"] == "ok").to_numpy()
    assert np.abs(ours.embeddings[ok] - local.embeddings[ok]).max() <= 1e-5
    assert np.isnan(ours.embeddings[~ok]).all()
    pd.testing.assert_frame_equal(ours.pivots, local.pivots)
    pd.testing.assert_frame_equal(ours.pages, local.pages)


def test_ray_engine_without_ray_names_the_install_line(embedder, monkeypatch):
    from narratives import score

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'narratives\[ray\]'"):
        score(SAMPLE, embedder=embedder, engine="ray", progress=False)
    with pytest.raises(InputError, match="engine must be one of"):
        score(SAMPLE, embedder=embedder, engine="spark", progress=False)


def test_a_killed_ray_worker_loses_and_doubles_no_row(ray_local, sample_result, tmp_path):
    """An actor dies (os._exit) in the middle of its first batch: Ray restarts it and runs
    the batch again; every post comes back once, with the local engine's vectors."""
    from ray import cloudpickle

    from narratives.engines import RayScorer, ray_results

    class DiesOnce(RayScorer):
        def __init__(self, spec):
            super().__init__(spec)
            self.marker = spec["die_once"]

        def __call__(self, batch):
            if os.path.exists(self.marker):
                os.remove(self.marker)
                os._exit(1)
            return super().__call__(batch)

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "die-once"
    marker.write_text("")
    posts = sample_result.posts
    rows = np.flatnonzero((posts["status"] == "ok").to_numpy())
    spec = {
        "model": "default",
        "backend": "auto",
        "batch_size": 32,
        "device": None,
        "tagger": None,
        "taxonomy": None,
        "cache": None,
        "die_once": str(marker),
    }
    got: list[int] = []
    vectors = np.full_like(sample_result.embeddings, np.nan)
    for batch_rows, out in ray_results(
        rows,
        posts["text"].to_numpy()[rows].tolist(),
        spec,
        batch_size=64,
        concurrency=2,
        address=None,
        scorer_class=DiesOnce,
    ):
        got.extend(batch_rows.tolist())
        vectors[batch_rows] = out["embedding"]
    assert not marker.exists(), "no actor died: the test tested nothing"
    assert sorted(got) == rows.tolist()
    assert np.abs(vectors[rows] - sample_result.embeddings[rows]).max() <= 1e-5
