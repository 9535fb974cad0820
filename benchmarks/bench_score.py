"""Throughput of `narratives score` against a bare SentenceTransformer.encode, same run.

    python benchmarks/bench_score.py [--limit 2000] [--input PATH --text-col ...]

By default the posts are the captioned, timed posts of the Chinese state-media Facebook
pages in ../shared (or the bundled sample when that is absent), de-duplicated so that the
pipeline's text cache gives it no unfair edge. Both sides use the same loaded model, the
same texts, the same batch size and the same prompt; the model is loaded once and warmed
up before either is timed. The pipeline side includes reading the file, language
identification, truncation checks, narrative tagging (the default zero-shot tagger,
built beforehand), pivots and the page table. The printed ratio is pipeline posts/s over
bare posts/s (1.0 means no overhead). A third side runs the pipeline without the tagger,
which prints what tagging adds to the run (target: at most 10%).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _data import benchmark_posts, write_jsonl


def main() -> None:
    import narratives

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="posts to time (0 = all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of each side")
    args = parser.parse_args()

    posts, source_name = benchmark_posts()
    posts = posts.drop_duplicates("text")
    if args.limit:
        posts = posts.head(args.limit)
    texts = posts["text"].tolist()
    print(f"posts: {len(texts)} unique texts from {source_name}")

    # the torch backend: this measures the pipeline's overhead over the same encoder
    embedder = narratives.Embedder("default", batch_size=args.batch_size, backend="torch")
    embedder.model.encode(texts[:64], prompt_name=embedder.prompt_name)  # warm-up
    from narratives.tagging.tagger import default_tagger

    t = time.perf_counter()
    tagger = default_tagger(embedder)  # built once per taxonomy and model, then cached
    print(f"default tagger ready in {time.perf_counter() - t:.1f}s (a first run builds it)")

    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(posts, Path(tmp) / "posts.jsonl")
        bare_s, pipe_s, untagged_s = [], [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            embedder.model.encode(
                texts,
                prompt_name=embedder.prompt_name,
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
            bare_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            result = narratives.score(
                path, embedder=embedder, tagger=tagger, cache=None, progress=False
            )
            pipe_s.append(time.perf_counter() - t)
            assert result.run["counts"]["ok"] == len(texts)
            t = time.perf_counter()
            narratives.score(path, embedder=embedder, tagger=None, cache=None, progress=False)
            untagged_s.append(time.perf_counter() - t)
    bare, pipe = len(texts) / min(bare_s), len(texts) / min(pipe_s)
    timings = result.run["timings"]
    print(f"bare SentenceTransformer.encode : {bare:8.1f} posts/s")
    print(f"narratives score (whole run)    : {pipe:8.1f} posts/s")
    print(
        f"  of which read {timings['read_s']:.2f}s, langid {timings['langid_s']:.2f}s, "
        f"embed+token counts {timings['embed_s']:.2f}s"
    )
    print(f"ratio score/bare                : {pipe / bare:8.3f}  (target >= 0.8)")
    untagged = len(texts) / min(untagged_s)
    print(f"narratives score without tagger : {untagged:8.1f} posts/s")
    print(
        f"tagging adds                    : {100 * (untagged / pipe - 1):+7.1f}% to the run "
        f"(tagging step alone {timings['tag_s']:.3f}s; target <= 10%)"
    )


if __name__ == "__main__":
    main()
