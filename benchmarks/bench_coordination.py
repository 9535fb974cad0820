"""Coordination search: 1 million posts with precomputed embeddings, and the windowed
search against a brute-force pairwise search on 20,000 posts, in the same run.

    python benchmarks/bench_coordination.py [--posts 1000000] [--days 365] [--pages 20000]

The posts are synthetic so that a million fit on a small machine and the run needs no
encoder: 384-dimensional unit vectors (the shape of multilingual-e5-small's) with e5's
geometry, a direction all posts share, one per language (three) and one per topic (50),
plus noise, so that unrelated posts score 0.71, two on one topic in two languages 0.89
(the cross-language candidates the margin test has to turn down) and in one language 0.94;
spread over ``--days`` on ``--pages`` pages, with 5% planted near copies (a later post
within minutes whose vector is an earlier one's plus noise, cosine about 0.99, two in
three in another language: a translation) and 2% exact copies of an earlier post's text.
Timed: ``find_coordination`` end to end (text keys, the windowed search, the margin test,
clusters, page edges) on the million; then
``coordinated_pairs`` and ``brute_force_pairs`` on the first 20,000, with the links
compared.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from narratives.operators.coordination import (
    CoordinationConfig,
    brute_force_pairs,
    coordinated_pairs,
    find_coordination,
    text_keys,
)


def synthetic(n: int, days: float, pages: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, days * 86400, n))
    basis = np.linalg.qr(rng.standard_normal((384, 54)))[0].T.astype(np.float32)
    langs = rng.integers(0, 3, n)
    topics = rng.integers(0, 50, n)
    vectors = rng.standard_normal((n, 384)).astype(np.float32)
    vectors *= 0.6 / np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors += 2.0 * basis[0] + 0.5 * basis[1 + langs] + 1.0 * basis[4 + topics]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = np.array([f"post {i}" for i in range(n)], dtype=object)
    copies = rng.choice(n - 10, n // 20, replace=False)
    later = copies + rng.integers(1, 10, len(copies))
    noise = rng.standard_normal((len(copies), 384)).astype(np.float32) * 0.006
    vectors[later] = vectors[copies] + noise
    vectors[later] /= np.linalg.norm(vectors[later], axis=1, keepdims=True)
    exact = rng.choice(n - 10, n // 50, replace=False)
    texts[exact + 1] = texts[exact]
    posts = pd.DataFrame(
        {
            "post_id": [f"p{i}" for i in range(n)],
            "page_id": rng.integers(0, pages, n).astype(str),
            "created_at": pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s"),
            "status": "ok",
            "text": texts,
            "lang": np.array(["en", "zh", "ru"])[langs],
        }
    )
    return posts, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--brute", type=int, default=20_000)
    args = parser.parse_args()
    cfg = CoordinationConfig()
    posts, vectors = synthetic(args.posts, args.days, args.pages)
    start = time.perf_counter()
    clusters, edges = find_coordination(posts, vectors, cfg)
    took = time.perf_counter() - start
    print(
        f"{args.posts:,} posts over {args.days:g} days, window {cfg.window_minutes:g} min: "
        f"{took:.1f} s ({args.posts / took:,.0f} posts/s), {clusters['cluster_id'].nunique():,} "
        f"clusters, {len(edges):,} page pairs"
    )
    sub = posts.head(args.brute)
    times = sub["created_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    pages = pd.factorize(sub["page_id"])[0]
    keys = text_keys(sub["text"])
    langs = pd.factorize(sub["lang"])[0]
    vec = vectors[: args.brute]
    start = time.perf_counter()
    fast = coordinated_pairs(times, pages, keys, vec, cfg, langs)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = brute_force_pairs(times, pages, keys, vec, cfg, langs)
    slow_s = time.perf_counter() - start
    same = set(zip(*(x.tolist() for x in fast))) == set(zip(*(x.tolist() for x in slow)))
    print(
        f"{args.brute:,} posts: windowed {fast_s:.2f} s, brute force {slow_s:.2f} s, "
        f"{slow_s / fast_s:.1f}x; {len(fast[0]):,} links, identical: {same}"
    )


if __name__ == "__main__":
    main()
