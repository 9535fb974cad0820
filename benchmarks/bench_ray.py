"""The local engine against the Ray engine with 1 and 2 workers, on the same posts.

    python benchmarks/bench_ray.py [--limit 2000]

Scores the same posts (the state-media posts in ../shared, or the bundled sample when
that is absent) with ``narratives.score``: the local engine, then ``engine="ray"`` on a
local Ray instance with ``concurrency`` 1 and 2, all without the persistent cache (each
run embeds every distinct text). The model and the default tagger are built beforehand;
the Ray runs include what Ray adds: starting the actors, each loading the model, and
the Ray Data passes (repeated ids, writing the parts, pivots by page bucket). Prints
posts/s and the ratio to the local engine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _data import benchmark_posts, write_jsonl


def main() -> None:
    import ray

    import narratives
    from narratives.tagging.tagger import default_tagger

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000)
    args = parser.parse_args()
    posts, source_name = benchmark_posts()
    posts = posts.head(args.limit)
    embedder = narratives.Embedder("default")
    tagger = default_tagger(embedder)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(posts, Path(tmp) / "posts.jsonl")
        print(f"{len(posts)} posts from {source_name}, 2 CPUs")
        rates = {}
        for name, options in (
            ("local engine", {}),
            ("ray, 1 worker", {"engine": "ray", "concurrency": 1}),
            ("ray, 2 workers", {"engine": "ray", "concurrency": 2}),
        ):
            t = time.perf_counter()
            result = narratives.score(
                path, embedder=embedder, tagger=tagger, cache=None, progress=False, **options
            )
            seconds = time.perf_counter() - t
            assert result.run["counts"]["ok"] == len(posts)
            rates[name] = len(posts) / seconds
            print(
                f"{name:15s}: {rates[name]:7.1f} posts/s ({seconds:6.1f} s)"
                f"  {rates[name] / rates['local engine']:5.2f}x the local engine"
            )
    ray.shutdown()


if __name__ == "__main__":
    main()
