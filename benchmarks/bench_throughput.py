"""Encoder throughput on one machine: torch, our default path, ONNX int8, the text cache.

    python benchmarks/bench_throughput.py [--limit 1000] [--rounds 3]

All figures come from one process, on the same texts, with the models loaded and warmed
up beforehand; the sides alternate for ``--rounds`` rounds and each keeps its fastest
round (the machines are noisy). The texts are the captioned posts of the Chinese
state-media Facebook pages in ../shared (the bundled sample when that is absent),
de-duplicated, in file order.

1. bare ``SentenceTransformer.encode`` (torch, batch 32, the e5 ``query:`` prompt);
2. our default path (``Embedder("default").encode``: whatever backend it picks);
3. the ONNX int8 path, with its lowest and mean cosine to the torch vectors;
4. data with 50% duplicated texts (every text twice): our default path with the text
   cache against the same path without it (every post encoded);
5. ``narratives.score`` on those posts, first with an empty persistent cache, then again
   with another tagger (the cache serves every text): the re-scoring speed-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _data import benchmark_posts, write_jsonl


def best(seconds: list[float]) -> float:
    return min(seconds)


def main() -> None:
    import narratives
    from narratives.embedding.text_cache import EmbeddingCache, normalise
    from narratives.tagging.tagger import NarrativeTagger, default_tagger

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000, help="unique posts (0 = all)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    posts, source_name = benchmark_posts()
    posts = posts[~posts["text"].map(normalise).duplicated()]
    if args.limit:
        posts = posts.head(args.limit)
    texts = [normalise(t) for t in posts["text"]]
    print(f"{len(texts)} unique texts from {source_name}")

    torch_embedder = narratives.Embedder("default", backend="torch")
    onnx_embedder = narratives.Embedder("default", backend="onnx")
    default = narratives.Embedder("default")
    st = torch_embedder.model
    prompt = torch_embedder.prompt_name
    print(f"default backend: {default.backend}")
    warm = texts[:64]
    st.encode(warm, prompt_name=prompt)
    onnx_embedder.encode(warm)
    default.encode(warm)
    doubled = [t for t in texts for _ in range(2)]

    sides: dict[str, list[float]] = {k: [] for k in ("bare", "default", "onnx", "dup", "nodup")}
    reference = np.empty(0)
    ours = np.empty(0)
    for _ in range(args.rounds):
        t = time.perf_counter()
        reference = st.encode(texts, prompt_name=prompt, batch_size=32, normalize_embeddings=True)
        sides["bare"].append(time.perf_counter() - t)
        t = time.perf_counter()
        default.encode(texts)
        sides["default"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = onnx_embedder.encode(texts)
        sides["onnx"].append(time.perf_counter() - t)
        fresh = EmbeddingCache(None, default.dim)  # a fresh in-memory cache
        t = time.perf_counter()
        default.encode(doubled, fresh)
        sides["dup"].append(time.perf_counter() - t)
        t = time.perf_counter()
        default._encode(doubled)  # the same path, every post encoded
        sides["nodup"].append(time.perf_counter() - t)
    rate = {
        k: (len(doubled) if k in ("dup", "nodup") else len(texts)) / best(v)
        for k, v in sides.items()
    }
    cosine = np.einsum("ij,ij->i", reference, ours)
    print(f"bare SentenceTransformer.encode (torch) : {rate['bare']:8.1f} posts/s")
    print(
        f"our default path ({default.backend:5s})              : {rate['default']:8.1f} posts/s"
        f"  {rate['default'] / rate['bare']:5.2f}x"
    )
    print(
        f"ONNX int8 path                          : {rate['onnx']:8.1f} posts/s"
        f"  {rate['onnx'] / rate['bare']:5.2f}x  (target >= 2.5x)"
    )
    print(
        f"  cosine to torch: lowest {cosine.min():.4f}, mean {cosine.mean():.4f}  (target >= 0.98)"
    )
    print(
        f"50% duplicated texts, with the cache    : {rate['dup']:8.1f} posts/s"
        f"  {rate['dup'] / rate['nodup']:5.2f}x the same path without it"
        f" ({rate['nodup']:.1f}; target >= 1.8x)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(posts, Path(tmp) / "posts.jsonl")
        first_tagger = default_tagger(default)
        other = Path(tmp) / "other-tagger"
        first_tagger.save_pretrained(other)
        new_tagger = NarrativeTagger.from_pretrained(other, default)
        cache = Path(tmp) / "cache.sqlite"
        t = time.perf_counter()
        narratives.score(path, embedder=default, tagger=first_tagger, cache=cache, progress=False)
        first = time.perf_counter() - t
        t = time.perf_counter()
        again = narratives.score(
            path, embedder=default, tagger=new_tagger, cache=cache, progress=False
        )
        second = time.perf_counter() - t
    print(f"narratives score, empty cache           : {first:8.2f} s")
    print(
        f"re-scored with another tagger           : {second:8.2f} s  "
        f"{first / second:5.1f}x faster (target >= 20x; "
        f"cache hits {again.run['cache']['hits']}, misses {again.run['cache']['misses']})"
    )


if __name__ == "__main__":
    main()
