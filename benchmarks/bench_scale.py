"""Peak memory and time of `narratives score` as the dump grows, and throughput against
another commit.

    python benchmarks/bench_scale.py --sizes 100000 1000000 [--new 0.1]
    python benchmarks/bench_scale.py --base db6bb8b --sizes 100000 --new 0
    python benchmarks/bench_scale.py --engine ray --workers 2 --sizes 100000 1000000 --new 0

Dumps of N posts are built from a few thousand real texts (the state-media posts and the
2019 Twitter takedown's tweets in ../shared/data/external), on pages of 100 posts, one
post an hour; a share ``--new`` of the posts gets a text of its own (a real text with a
number; ``--new-chars`` shortens them, so that the encoder's time does not dwarf the
rest), so that the encoder runs on them and the rest come from the cache. The cache is
a fresh folder, warmed on the real texts first. Each run is ``narratives score DUMP -o
OUT`` in a fresh process; printed: wall time, posts/s, the command's own peak RSS
(``ru_maxrss``; pivot detection's worker processes, which hold a part of the pages
each, are not in it), the stage timings of run.json, and the ratio of each size's peak
to the smallest size's.

With ``--engine ray`` the runs are ``narratives score --engine ray --concurrency
WORKERS`` (a local Ray instance the command starts): the command's peak RSS is then the
driver's, and beside it are printed the peak RSS of the largest Ray worker process and
the peak of all of them together (``ray::`` processes, polled every half second; the
object store's shared memory counts in each process that maps it), the largest
worker's USS (its own memory, without that shared memory) and what it was running, and
Ray's own processes (raylet, GCS...).

With ``--base COMMIT`` the same dumps are also scored by that commit's code (a temporary
worktree, the same Python and cache), each size by both in turn, base first, after one
warming run, so that both read the same cache: the throughput ratio of the working tree
to the base is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT.parent / "shared" / "data" / "external"

CHILD = """
import json, resource, sys
from narratives.cli import main
sys.argv = ["narratives", "score", sys.argv[1], "-o", sys.argv[2], "--force", *sys.argv[3:]]
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run = json.load(open(sys.argv[4] + "/run.json"))
print(json.dumps(run["timings"]))
print(own, run["counts"]["ok"])
"""


def real_texts(limit: int, seed: int = 0) -> list[str]:
    """Distinct texts of the state-media posts and the takedown's tweets."""
    csv.field_size_limit(1 << 30)
    found: dict[str, None] = {}
    sources = [
        (EXTERNAL / "cn-state-media-facebook-2022" / "fb_posts_cn_state_media_2022.csv", "CONTENT"),
        (EXTERNAL / "twitter-io-china-2019" / "china_082019_1_matched_troll_tweets.csv", None),
    ]
    for path, column in sources:
        if not path.exists():
            continue
        with path.open(encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.DictReader(f)
            name = column or next(
                (c for c in reader.fieldnames or [] if c in ("tweet_text", "text")), None
            )
            if name is None or name not in (reader.fieldnames or []):
                continue
            for row in reader:
                text = (row.get(name) or "").strip()
                if 20 <= len(text) <= 600:
                    found[text] = None
    if not found:
        sys.exit(f"no texts found under {EXTERNAL}: this benchmark needs shared/data/external")
    texts = sorted(found)
    random.Random(seed).shuffle(texts)
    return texts[:limit]


def write_dump(
    path: Path, n: int, texts: list[str], new: float, tag: str, new_chars: int | None = None
) -> None:
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    rng = random.Random(n)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = texts[(i * 7919) % len(texts)]
            if rng.random() < new:
                text = f"{text[:new_chars]} ({tag} {i})"
            record = {
                "post_id": f"p{i}",
                "page_id": f"page{i // 100}",
                "text": text,
                "created_at": (start + timedelta(hours=i % 100 + 100 * (i % 7))).isoformat(),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def run(code: Path, dump: Path, out: Path, env: dict, options: tuple[str, ...] = ()) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(dump), str(out), *options],
            cwd=code,
            env={**env, "PYTHONPATH": str(code)},
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        peaks = _watch(child)
        stdout.seek(0), stderr.seek(0)
        if child.returncode:
            sys.exit(f"narratives score failed on {dump.name}:\n{stderr.read()[-3000:]}")
        # the last two lines the child printed (Ray may print its own among them)
        lines = stdout.read().strip().splitlines()
        counts = [line for line in lines if re.fullmatch(r"\d+ \d+", line)][-1]
        own, ok = (int(x) for x in counts.split())
        timings = json.loads([line for line in lines if line.startswith('{"')][-1])
    seconds = time.perf_counter() - started
    return {"s": seconds, "own": own / 1024, "ok": ok, "timings": timings, **peaks}


def _watch(child: subprocess.Popen) -> dict:
    """Wait for ``child``, polling the memory of the processes it started: Ray's workers
    (``ray::...``) and its other processes, in MiB at their peak. A worker's RSS counts
    the object store's shared memory it maps; its USS (``uss``) does not."""
    import psutil

    peak = {"worker": 0.0, "uss": 0.0, "workers": 0.0, "services": 0.0, "name": ""}
    while child.poll() is None:
        total = {"ray::": 0.0, "other": 0.0}
        try:
            for proc in psutil.Process(child.pid).children(recursive=True):
                try:
                    name = proc.name()
                    kind = "ray::" if name.startswith("ray::") else "other"
                    if kind == "ray::":
                        full = proc.memory_full_info()
                        rss, uss = full.rss / 2**20, full.uss / 2**20
                        if uss > peak["uss"]:
                            peak["uss"], peak["name"] = uss, " ".join(proc.cmdline())[:80]
                        peak["worker"] = max(peak["worker"], rss)
                    else:
                        rss = proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total[kind] += rss
        except psutil.Error:
            pass
        peak["workers"] = max(peak["workers"], total["ray::"])
        peak["services"] = max(peak["services"], total["other"])
        time.sleep(0.5)
    return peak


def show(label: str, n: int, r: dict) -> None:
    ray = (
        f"  largest worker {r['worker']:6.0f} MiB  all workers {r['workers']:6.0f} MiB"
        f"  other processes {r['services']:6.0f} MiB\n"
        f"       largest worker USS {r['uss']:6.0f} MiB ({r['name']})"
        if r["workers"]
        else ""
    )
    print(
        f"{label:>6} {n:>9,} posts: {r['s']:8.1f} s  {n / r['s']:7.0f} posts/s  "
        f"peak RSS {r['own']:7.0f} MiB{ray}",
        flush=True,
    )
    stages = ", ".join(f"{k} {v:.0f}" for k, v in r["timings"].items() if k.endswith("_s"))
    print(f"       run.json timings (s): {stages}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--new", type=float, default=0.1, help="share of posts with new texts")
    parser.add_argument("--texts", type=int, default=3000, help="real texts to repeat")
    parser.add_argument(
        "--new-chars", type=int, help="new texts keep this many characters of the real one"
    )
    parser.add_argument("--base", help="a commit to compare throughput with")
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (--engine ray)")
    args = parser.parse_args()
    options = (
        ("--engine", "ray", "--concurrency", str(args.workers)) if args.engine == "ray" else ()
    )
    texts = real_texts(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {**os.environ, "NARRATIVES_CACHE": str(tmp_path / "cache")}
        if "NARRATIVES_CACHE" in os.environ:  # the converted model, not its text cache
            models = Path(os.environ["NARRATIVES_CACHE"]) / "models"
            if models.is_dir():
                (tmp_path / "cache").mkdir()
                os.symlink(models, tmp_path / "cache" / "models")
        warm = tmp_path / "warm.jsonl"
        write_dump(warm, len(texts), texts, 0.0, "warm")
        run(ROOT, warm, tmp_path / "out-warm", env)  # the real texts into the cache
        base = None
        if args.base:
            base = tmp_path / "base"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(base), args.base],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
        try:
            results = {}
            for n in args.sizes:
                dump = tmp_path / f"posts-{n}.jsonl"
                write_dump(dump, n, texts, args.new, f"new-{n}", args.new_chars)
                if base is not None:  # the new texts cached first, so both read them
                    run(ROOT, dump, tmp_path / f"out-{n}", env, options)
                    b = run(base, dump, tmp_path / f"out-base-{n}", env, options)
                    show("base", n, b)
                results[n] = run(ROOT, dump, tmp_path / f"out-{n}", env, options)
                show("head", n, results[n])
                if base is not None:
                    ratio = b["s"] / results[n]["s"]
                    print(f"       throughput head / base: {ratio:.2f}x", flush=True)
                dump.unlink()
        finally:
            if base is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
        small = min(args.sizes)
        for n in args.sizes:
            if n != small:
                ratio = results[n]["own"] / results[small]["own"]
                who = "of the driver " if args.engine == "ray" else ""
                print(f"peak RSS {who}{n:,} / {small:,} posts: {ratio:.2f}x")


if __name__ == "__main__":
    main()
