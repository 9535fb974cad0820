"""Stress shapes real archives have, through every command: time and peak memory.

    python benchmarks/bench_shapes.py [--shapes long burst repeated] [--scale 1.0]

Shapes (``--scale`` shrinks the post counts, for a quick look):

* ``long``: one page of 30,000 posts, a year of them, whose subject and language change
  at the middle (real English state-media posts, then real Chinese ones);
* ``burst``: 40,000 posts of 4,000 pages inside ten minutes, three in ten of them one of
  40 campaign messages: one coordination window holds every post (800 million pairs);
* ``repeated``: 1,000,000 posts on 20,000 pages of 50, each page posting the same three
  texts again and again, as spam and ad pages do.

The texts are real: the Chinese state-media Facebook posts and the 2019 Twitter takedown's
tweets in ../shared (the bundled sample's when they are absent), embedded once into the
persistent text cache (``--cache``, default ``<cache>/embeddings``, warmed before any timing)
so that the encoder does not hide the pipeline. Each command (``score``, ``pivots``,
``timing``, ``coordination``, ``report``) runs in a fresh process; its wall time, its own
peak resident set size (VmHWM) and the peak of its process tree's (worker processes
included, sampled) are printed. Every command
must finish with exit code 0 and every input row must be in posts.parquet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _data import FB, ROOT, write_jsonl

SHARED = ROOT.parent / "shared/data/external"

CHILD = """
import json, sys
from narratives.cli import main
report, sys.argv = sys.argv[1], ["narratives", *sys.argv[2:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
# this process's own peak (ru_maxrss would carry the parent's over fork and exec)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
json.dump({"code": code, "rss_kb": peak}, open(report, "w"))
"""

START = pd.Timestamp("2023-01-01", tz="UTC")


def text_pool() -> tuple[list[str], list[str]]:
    """Distinct real texts: (English and others, Chinese), from ../shared or the sample."""
    import narratives
    from narratives.embedding.langid import detect_languages

    texts: list[str] = []
    tweets = SHARED / "twitter-io-china-2019/china_082019_1_matched_troll_tweets.csv"
    if FB.exists():
        texts += pd.read_csv(FB, usecols=["CONTENT"])["CONTENT"].dropna().tolist()
    if tweets.exists():
        texts += pd.read_csv(tweets, usecols=["tweet_text"])["tweet_text"].dropna().tolist()
    if not texts:
        sample = narratives.read_posts(ROOT / "samples/posts.jsonl").posts
        texts = sample.loc[sample["status"] == "ok", "text"].tolist()
    texts = list(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip()))
    langs = detect_languages(texts)[0]
    chinese = [t for t, lang in zip(texts, langs) if lang == "zh"]
    other = [t for t, lang in zip(texts, langs) if lang != "zh"]
    return other, chinese


def long_page(n: int, other: list[str], chinese: list[str], rng: np.random.Generator):
    half = n // 2
    texts = [other[i % len(other)] for i in rng.permutation(half)] + [
        chinese[i % len(chinese)] for i in rng.permutation(n - half)
    ]
    seconds = np.sort(rng.uniform(0, 365 * 86400, n))
    return pd.DataFrame(
        {
            "post_id": [f"long-{i}" for i in range(n)],
            "page_id": "one_long_page",
            "text": texts,
            "created_at": START + pd.to_timedelta(seconds, unit="s"),
        }
    )


def burst(n: int, pages: int, texts: list[str], rng: np.random.Generator):
    campaign = rng.choice(len(texts), 40, replace=False)
    pick = rng.integers(0, len(texts), n)
    copied = rng.random(n) < 0.3
    pick[copied] = campaign[rng.integers(0, 40, copied.sum())]
    seconds = np.sort(rng.uniform(0, 600, n))
    return pd.DataFrame(
        {
            "post_id": [f"burst-{i}" for i in range(n)],
            "page_id": [f"acct{p}" for p in rng.integers(0, pages, n)],
            "text": [texts[i] for i in pick],
            "created_at": START + pd.to_timedelta(seconds, unit="s"),
        }
    )


def repeated(pages: int, per_page: int, texts: list[str], rng: np.random.Generator):
    own = rng.integers(0, len(texts), (pages, 3))
    page = np.repeat(np.arange(pages), per_page)
    k = np.tile(np.arange(per_page), pages)
    text_index = own[page, k % 3]
    hours = k * 6 + rng.integers(0, 6, len(k))
    return pd.DataFrame(
        {
            "post_id": [f"r{i}" for i in range(len(page))],
            "page_id": [f"spam{p}" for p in page],
            "text": np.asarray(texts, dtype=object)[text_index],
            "created_at": START + pd.to_timedelta(hours, unit="h"),
        }
    )


def run(args: list[str], report: Path) -> dict:
    """One command in a fresh process (its output in ``report`` with .log): its exit code,
    wall time, its own peak RSS, and the peak of its process tree's summed RSS (worker
    processes included; sampled every 0.1 s)."""
    import psutil

    started = time.perf_counter()
    tree_peak = 0
    with report.with_suffix(".log").open("w") as log:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(report), *args],
                                 stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        while child.poll() is None:
            try:
                main = psutil.Process(child.pid)
                tree = [main, *main.children(recursive=True)]
                total = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                tree_peak = max(tree_peak, total)
            except psutil.Error:
                pass
            time.sleep(0.1)
    took = time.perf_counter() - started
    if not report.exists():  # killed or crashed below Python (a signal: a negative code)
        tail = report.with_suffix(".log").read_text(errors="replace")[-2000:]
        print(f"  {args[0]} died with code {child.returncode}; its log ends:\n{tail}")
        return {"code": child.returncode, "rss_kb": 0, "tree_kb": tree_peak // 1024,
                "seconds": took}  # fmt: skip
    out = json.loads(report.read_text())
    out.update(seconds=took, tree_kb=max(tree_peak // 1024, out["rss_kb"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["long", "burst", "repeated"])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the dumps and outputs here.")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    other, chinese = text_pool()
    texts = other + chinese
    print(f"text pool: {len(other):,} non-Chinese and {len(chinese):,} Chinese real texts")

    def size(n: int) -> int:
        return max(1, round(n * args.scale))

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        pool = pd.DataFrame({"post_id": [f"pool{i}" for i in range(len(texts))],
                             "page_id": "pool", "text": texts, "created_at": START})  # fmt: skip
        warm = write_jsonl(pool, folder / "pool.jsonl")
        took = run(["score", str(warm), "-o", str(folder / "pool"), "--force", "--tagger",
                    "none"], folder / "pool.json")  # fmt: skip
        print(f"cache warmed with the pool in {took['seconds']:.0f} s")
        dumps = {
            "long": lambda: long_page(size(30_000), other, chinese, rng),
            "burst": lambda: burst(size(40_000), size(4_000), texts, rng),
            "repeated": lambda: repeated(size(20_000), 50, texts, rng),
        }
        failed = False
        for shape in args.shapes:
            frame = dumps[shape]()
            src = write_jsonl(frame, folder / f"{shape}.jsonl")
            out = folder / shape
            print(f"\n{shape}: {len(frame):,} posts on {frame['page_id'].nunique():,} pages")
            steps = [
                ["score", str(src), "-o", str(out), "--force"],
                ["pivots", str(out)],
                ["timing", str(out)],
                ["coordination", str(out)],
                ["report", str(out), "--force"],
            ]
            for step in steps:
                got = run(step, folder / f"{shape}-{step[0]}.json")
                failed |= got["code"] != 0
                print(
                    f"  {step[0]:<13} {got['seconds']:8.1f} s   peak RSS "
                    f"{got['rss_kb'] / 1024:7.0f} MiB   with its workers "
                    f"{got['tree_kb'] / 1024:6.0f} MiB   exit {got['code']}"
                )
            posts = pd.read_parquet(out / "posts.parquet", columns=["status"])
            pivots = pd.read_parquet(out / "pivots.parquet")
            clusters = pd.read_parquet(out / "coordination.parquet", columns=["cluster_id"])
            edges = pd.read_parquet(out / "coordination_edges.parquet", columns=["weight"])
            failed |= len(posts) != len(frame)
            print(
                f"  rows {len(posts):,} of {len(frame):,}, pivots {len(pivots):,}, "
                f"coordination clusters {clusters['cluster_id'].nunique():,} "
                f"({len(clusters):,} posts), page pairs {len(edges):,}"
            )
    if failed:
        sys.exit("a command failed or lost rows")


if __name__ == "__main__":
    main()
