"""The local engine against the Ray engine with 1 and 2 workers, on the same posts.

    python benchmarks/bench_ray.py [--limit 2000]

Scores the same posts (the state-media posts in ../shared, or the bundled sample when
that is absent) with ``narratives.score``: the local engine, then ``engine="ray"`` on a
local Ray instance with ``concurrency`` 1 and 2, all without the persistent cache (each
run embeds every distinct text). The model and the default tagger are built beforehand;
the Ray runs include what Ray adds: starting the actors, each loading the model, and
moving the vectors back to the driver. Prints posts/s and the ratio to the local engine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FB = (
    ROOT.parent
    / "shared/data/external/cn-state-media-facebook-2022/fb_posts_cn_state_media_2022.csv"
)
FB_COLUMNS = {"post_id": "ID", "page_id": "AUTHOR_ID", "text": "CONTENT", "created_at": "TIME"}


def main() -> None:
    import ray

    import narratives
    from narratives.tagger import default_tagger

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000)
    args = parser.parse_args()
    if FB.exists():
        source, columns, tz = FB, FB_COLUMNS, "Asia/Shanghai"
    else:
        source, columns, tz = ROOT / "samples/posts.jsonl", None, None
    posts = narratives.read_posts(source, columns, tz=tz).posts
    posts = posts[posts["status"] == "ok"].head(args.limit)
    embedder = narratives.Embedder("default")
    tagger = default_tagger(embedder)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "posts.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in posts.itertuples():
                record = {
                    "post_id": row.post_id,
                    "page_id": row.page_id,
                    "text": row.text,
                    "created_at": row.created_at.isoformat(),
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"{len(posts)} posts from {source.name}, 2 CPUs")
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
