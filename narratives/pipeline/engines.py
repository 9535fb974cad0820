"""Where the per-post work runs: in this process, or on a Ray cluster with Ray Data.

The Ray engine is Ray Data's recipe for batch inference: the posts that passed reading
become a dataset of (row, text), and ``map_batches`` runs :class:`RayScorer`, a callable
class, in a pool of actors, each loading the model and the tagger once and running the
same :class:`~narratives.pipeline.scorer.PostScorer` as the local engine. Results come back with
their row numbers and are put in place by row, so a batch that Ray runs twice (after a
worker dies) writes the same values to the same rows: no row is lost, none doubled, and
the driver checks that every row came back once. The input is read by Ray Data tasks
too (:mod:`narratives.io.ray`); pivots and the output files stay on the driver.

Ray is an optional extra: ``pip install 'narratives[ray]'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from narratives.errors import InputError

ENGINES = ("local", "ray")
RAY_INSTALL = "pip install 'narratives[ray]'"


def require_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise InputError(f"--engine ray needs Ray Data: {RAY_INSTALL}") from exc
    return ray


def start_ray(address: str | None) -> Any:
    """Ray, joined to the cluster at ``address`` (or a local one) unless already started."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # score shows its own
    context.print_on_execution_start = False
    return ray


class RayScorer:
    """One actor's model, tagger and cache; called on a batch of {row, text}."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from narratives.embedding.embedder import Embedder
        from narratives.embedding.text_cache import open_cache
        from narratives.pipeline.scorer import PostScorer, load_tagger

        embedder = Embedder(
            spec["model"],
            device=spec["device"],
            batch_size=spec["batch_size"],
            backend=spec["backend"],
            threads=spec["threads"],
        )
        tagger = load_tagger(spec["tagger"], embedder, spec["taxonomy"])
        self.scorer = PostScorer(embedder, tagger, open_cache(spec["cache"], embedder))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.scorer([str(t) for t in batch["text"]])
        tags = out["tags"]
        return {
            "row": np.asarray(batch["row"], dtype=np.int64),
            "lang": np.array(out["lang"], dtype=object),
            "lang_score": out["lang_score"],
            "embedding": out["embedding"],
            "topic_profile": out["topic_profile"],
            "note": np.array(out["note"], dtype=object),
            # list-of-dict cells travel as JSON: Arrow would otherwise give them one schema
            "tags": np.array(
                [json.dumps(t) for t in tags] if tags is not None else [""] * len(out["lang"]),
                dtype=object,
            ),
        }


def ray_results(
    rows: np.ndarray,
    texts: list[str],
    spec: dict[str, Any],
    *,
    batch_size: int,
    concurrency: int | None,
    address: str | None,
    scorer_class: type = RayScorer,
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Run :class:`RayScorer` (or ``scorer_class``) over (row, text) with Ray Data; yield
    (rows, results) per batch, in the shape :class:`~narratives.pipeline.scorer.PostScorer`
    returns. Raises if a row comes back twice with different results or not at all."""
    import pandas as pd

    ray = start_ray(address)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    if concurrency is None:
        concurrency = max(1, gpus or cpus)
    spec = {**spec, "threads": 1 if not gpus else None}
    if gpus and spec["device"] is None:
        spec["device"] = "cuda"
    frame = pd.DataFrame({"row": rows, "text": texts})
    # blocks of one batch each, so that every actor gets work (split here: a split by
    # Ray would need a CPU that the actors may all hold)
    data = ray.data.from_pandas(
        [frame.iloc[i : i + batch_size] for i in range(0, max(len(frame), 1), batch_size)]
    )
    mapped = data.map_batches(
        scorer_class,
        fn_constructor_kwargs={"spec": spec},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency,
        num_cpus=1,
        num_gpus=1 if gpus else 0,
        # Ray Data restarts a dead actor and runs its batches again (its actor pools
        # default to max_restarts=-1, max_task_retries=-1): results go by row, so a batch
        # run twice writes the same rows twice, and none is lost
    )
    seen = np.zeros(len(rows), dtype=bool)
    position = {int(r): i for i, r in enumerate(rows)}
    for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
        got = batch["row"].astype(np.int64)
        where = [position[int(r)] for r in got]
        if seen[where].any():
            raise RuntimeError("Ray returned some posts twice; run again")
        seen[where] = True
        yield (
            got,
            {
                "lang": [str(x) for x in batch["lang"]],
                "lang_score": batch["lang_score"].astype(np.float32),
                "embedding": np.asarray(batch["embedding"], dtype=np.float32),
                "topic_profile": np.asarray(batch["topic_profile"], dtype=np.float32),
                "note": [x if isinstance(x, str) else None for x in batch["note"]],
                "tags": None if spec["tagger"] is None else [json.loads(t) for t in batch["tags"]],
            },
        )
    if not seen.all():
        raise RuntimeError(f"Ray returned no result for {int((~seen).sum())} posts; run again")
