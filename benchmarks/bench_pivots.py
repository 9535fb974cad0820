"""Speed of pivot detection on precomputed topic profiles, next to the embedding step.

    python benchmarks/bench_pivots.py [--copies 200] [--repeat 3] [--scored OUTDIR]

Scores the bundled sample once (embedding its posts, which gives the embedding step's
posts/s on this machine in this run), then runs pivot detection alone on the stored
embeddings and topic profiles of ``--copies`` copies of the sample's pages (each copy a
new page id, so the work grows with the copies). Prints posts/s of both steps and their
ratio; the target is at least 50,000 posts/s for detection, so that it is never the
bottleneck. Detection runs in one process and with the default worker processes (the
same pivots either way); each is timed ``--repeat`` times and the best run counts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import narratives
    from narratives.pivots.detector import PivotDetector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs each; the best counts")
    parser.add_argument(
        "--scored",
        type=Path,
        help="also time detection on the pages of a scored output folder (narratives score -o)",
    )
    args = parser.parse_args()

    embedder = narratives.Embedder("default")
    result = narratives.score(ROOT / "samples/posts.jsonl", embedder=embedder, progress=False)
    ok = result.posts["status"] == "ok"
    texts = result.posts.loc[ok, "text"].tolist()
    embedder.encode(texts[:32])  # warm-up
    t = time.perf_counter()
    embedder.encode(texts)
    embed_rate = len(texts) / (time.perf_counter() - t)

    posts = result.posts[ok].reset_index(drop=True)
    profiles = result.topic_profiles[ok.to_numpy()]
    frames = []
    for c in range(args.copies):
        frames.append(posts.assign(page_id=posts["page_id"] + f"#{c}"))
    many = pd.concat(frames, ignore_index=True)
    many["source_row"] = np.arange(len(many))
    embeddings = result.embeddings[ok.to_numpy()]
    many_profiles = np.tile(profiles, (args.copies, 1))
    many_embeddings = np.tile(embeddings, (args.copies, 1))
    jobs = PivotDetector()._jobs(len(many))
    # the first call in a process pays for imports (ruptures, numba's cached kernel) and
    # for starting the worker processes, which are then kept: timed apart
    warm = 60 * len(posts)
    t = time.perf_counter()
    PivotDetector(n_jobs=jobs).fit(many[:warm], many_profiles[:warm], many_embeddings[:warm])
    cold = time.perf_counter() - t
    print(f"embedding (bare encode, {len(texts)} posts) : {embed_rate:10.1f} posts/s")
    print(f"first call, {warm} posts, {jobs} jobs (imports, workers): {cold:.2f} s")

    def best(run) -> tuple[float, object]:
        """Best of --repeat runs (the machine is noisy), and the last result."""
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - t)
        return min(times), result

    rates = {}
    found = {}
    for label, n_jobs in (("one process", 1), (f"default ({jobs} jobs)", None)):
        seconds, detector = best(
            lambda n_jobs=n_jobs: PivotDetector(n_jobs=n_jobs).fit(
                many, many_profiles, many_embeddings
            )
        )
        rates[label] = len(many) / seconds
        found[label] = detector.pivots_
        print(
            f"pivot detection, {label} ({len(many)} posts, {len(detector.page_status_)} pages, "
            f"{len(detector.pivots_)} pivots): {rates[label]:10.1f} posts/s"
        )
    first, *others = found.values()
    same = all(first.equals(other) for other in others)
    detect_rate = rates[label]
    print(f"same pivots in one process and in workers: {same}")
    print(f"ratio detection (default) / embedding   : {detect_rate / embed_rate:10.1f}x")
    print(
        f"target >= 50,000 posts/s                : {'met' if detect_rate >= 50_000 else 'NOT met'}"
    )
    if args.scored:
        stored = narratives.load_scored(args.scored)
        seconds, detector = best(
            lambda: PivotDetector().fit(stored.posts, stored.topic_profiles, stored.embeddings)
        )
        n_ok = int((stored.posts["status"] == "ok").sum())
        print(
            f"pivot detection on {args.scored} ({n_ok} posts, {len(detector.page_status_)} "
            f"pages, {len(detector.pivots_)} pivots): {n_ok / seconds:10.1f} posts/s"
        )


if __name__ == "__main__":
    main()
