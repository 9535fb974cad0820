"""Peak memory of the `narratives score` command for 10k and 100k posts.

    python benchmarks/bench_memory.py [--sizes 10000 100000]

Writes dumps of N posts (the bundled sample's texts, spread over N/100 pages of 100
posts, one post an hour), then runs ``narratives score`` on each in a fresh process with
a shared persistent cache (warmed first, so that the encoder's time does not hide the
pipeline's memory), and prints each run's peak resident set size (``ru_maxrss``) and the
ratio of the largest to the smallest. Target: 100k posts within 1.3x the peak of 10k.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys
from narratives.cli import main
sys.argv = ["narratives", "score", sys.argv[1], "-o", sys.argv[2], "--force"]
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
ok = json.load(open(sys.argv[4] + "/run.json"))["counts"]["ok"]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ok)
"""


def write_dump(path: Path, n: int, texts: list[str]) -> None:
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            record = {
                "post_id": f"p{i}",
                "page_id": f"page{i // 100}",
                "text": texts[(i * 7919) % len(texts)],
                "created_at": (start + timedelta(hours=i % 100)).isoformat(),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def main() -> None:
    import narratives

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    sample = narratives.read_posts(ROOT / "samples/posts.jsonl").posts
    texts = sample.loc[sample["status"] == "ok", "text"].drop_duplicates().tolist()
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in [min(args.sizes), *args.sizes]:  # the first run warms the cache
            dump = Path(tmp) / f"posts-{n}.jsonl"
            write_dump(dump, n, texts)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(dump), str(Path(tmp) / f"out-{n}")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
            peaks[n] = int(out[-2]) / 1024  # kilobytes on Linux
            print(f"{n:>8} posts: peak RSS {peaks[n]:8.1f} MiB ({out[-1]} scored)")
    small, large = min(args.sizes), max(args.sizes)
    print(f"peak RSS {large} / {small} posts: {peaks[large] / peaks[small]:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
