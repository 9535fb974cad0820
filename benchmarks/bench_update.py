"""What an update costs next to scoring everything again, and what its memory grows with.

    python benchmarks/bench_update.py --posts 200000 [--new 0.01] [--touched 0.01 0.1]
    python benchmarks/bench_update.py --posts 100000 200000 400000 --touched 0.01

A folder of N posts (real texts of the state-media posts and the 2019 takedown's tweets,
on pages of 100 posts, one post per page a day, in time order) is scored; then a share
``--new`` of N new posts comes, the next days' posts of a share ``--touched`` of the
pages (a watched set where most pages are quiet on a given day). In fresh processes, on
the same machine, in this order:

1. ``narratives score`` of everything (old and new posts): warms the text cache, so
   that both timed runs below read every text from it;
2. ``narratives score`` of the old posts (the folder);
3. ``narratives score`` of everything again: the baseline, re-scoring with a warm cache;
4. ``narratives update FOLDER NEW``: the update.

Printed: wall time and peak RSS (``ru_maxrss``) of 3 and 4 and their ratio, the
update's own stage timings (its change log's ``seconds``); then the same two from Python
in one process (``narratives.score_into`` and ``narratives.update`` with the model and
tagger loaded once, each timed on its second run), as a service pulling posts every
hour would run them: a fresh process spends about 3 s importing and loading before any work, which
is most of an update of a 200,000-post folder. With ``--operators``, also an update of
a copy of the folder on which ``narratives timing`` and ``coordination`` had run. With
several ``--posts``, the same new posts (same pages, same count) are added to folders of
each size: the update's peak RSS should not grow with the folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import real_texts

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys
from narratives.cli import main
sys.argv = ["narratives", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
#: The same comparison from Python, in one process: the model and the tagger loaded
#: once, as a service that pulls posts every hour would hold them; imports done, both
#: timed on their second run (the first update imports the detector's libraries, which
#: a score of this size leaves to its worker processes).
CHILD_PY = """
import json, shutil, sys, time
import narratives
from narratives.tagging.tagger import default_tagger
folder, both, new, again, target = sys.argv[1:6]
embedder = narratives.Embedder("default")
tagger = default_tagger(embedder)
options = {"embedder": embedder, "tagger": tagger, "progress": False}
narratives.score_into(both, again, force=True, **options)  # warm: imports, numba, cache
t = time.perf_counter()
narratives.score_into(both, again, force=True, **options)
rescore = time.perf_counter() - t
for _ in range(2):  # the first warms what the update needs and a score does not import
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    t = time.perf_counter()
    entry = narratives.update(target, new, **options)
    update = time.perf_counter() - t
print(json.dumps({"rescore": rescore, "update": update, "seconds": entry["seconds"]}))
"""
PAGE_POSTS = 100


def write_posts(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def old_posts(n: int, texts: list[str]):
    """Posts of n // 100 pages, one post per page a day for 100 days, in time order."""
    pages = n // PAGE_POSTS
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    for day in range(PAGE_POSTS):
        for p in range(pages):
            i = day * pages + p
            yield {
                "post_id": f"p{p}-{day}",
                "page_id": f"page{p}",
                "text": texts[(p * 131 + day * 7) % len(texts)],
                "created_at": (start + timedelta(days=day, minutes=p % 1440)).isoformat(),
                "_i": i,
            }


def new_posts(n_new: int, n_touched: int, texts: list[str]):
    """``n_new`` posts on pages 0..n_touched-1 (the same pages for every folder size),
    on the days after the folder's last."""
    start = datetime(2023, 1, 1, tzinfo=timezone.utc) + timedelta(days=PAGE_POSTS)
    per_page = -(-n_new // n_touched)
    k = 0
    for day in range(per_page):
        for p in range(n_touched):
            if k == n_new:
                return
            yield {
                "post_id": f"p{p}-{PAGE_POSTS + day}",
                "page_id": f"page{p}",
                "text": texts[(p * 131 + (PAGE_POSTS + day) * 7) % len(texts)],
                "created_at": (start + timedelta(days=day, minutes=p % 1440)).isoformat(),
            }
            k += 1


def run(args: list[str], env: dict) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, cwd=ROOT
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"narratives {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    rss = int([line for line in done.stdout.splitlines() if line.startswith("RSS ")][-1][4:])
    return {"s": seconds, "rss_mib": rss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[200_000])
    parser.add_argument("--new", type=float, default=0.01, help="new posts, share of --posts")
    parser.add_argument(
        "--touched", type=float, nargs="+", default=[0.01, 0.1], help="shares of pages with news"
    )
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--operators", action="store_true", help="also with timing+coordination")
    parser.add_argument("--no-python", action="store_true", help="only the command line")
    parser.add_argument("--keep", type=Path, help="work here, and keep it")
    args = parser.parse_args()
    texts = real_texts(args.texts)
    base = min(args.posts)
    n_new = int(base * args.new)
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-update-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NARRATIVES_CACHE": str(work / "cache")}
    for n in sorted(args.posts):
        rows = [{k: v for k, v in r.items() if k != "_i"} for r in old_posts(n, texts)]
        old = write_posts(work / f"old-{n}.jsonl", rows)
        folder = work / f"folder-{n}"
        run(["score", str(old), "-o", str(folder), "--force"], env)
        for share in args.touched:
            n_touched = max(1, int(base // PAGE_POSTS * share))
            new = write_posts(work / f"new-{share}.jsonl", new_posts(n_new, n_touched, texts))
            both = work / f"all-{n}-{share}.jsonl"
            shutil.copyfile(old, both)
            with both.open("a", encoding="utf-8") as f, new.open(encoding="utf-8") as g:
                f.write(g.read())
            again = work / f"again-{n}"
            run(["score", str(both), "-o", str(again), "--force"], env)  # warms the cache
            rescore = run(["score", str(both), "-o", str(again), "--force"], env)
            target = work / f"updated-{n}-{share}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)
            update = run(["update", str(target), str(new)], env)
            entry = json.loads((target / "updates" / "0001.json").read_text())
            print(
                f"folder {n:>9,} posts, {n_new:,} new on {n_touched:,} pages ({share:.0%}): "
                f"re-score {rescore['s']:6.1f} s {rescore['rss_mib']:5.0f} MiB | update "
                f"{update['s']:5.1f} s {update['rss_mib']:5.0f} MiB | time ratio "
                f"{update['s'] / rescore['s']:.3f}",
                flush=True,
            )
            print(f"    update stages (s): {entry['seconds']}", flush=True)
            if not args.no_python:
                done = subprocess.run(
                    [sys.executable, "-c", CHILD_PY, str(folder), str(both), str(new),
                     str(again), str(work / "py-target")],
                    env=env, capture_output=True, text=True, cwd=ROOT,
                )  # fmt: skip
                if done.returncode:
                    sys.exit(f"the Python comparison failed:\n{done.stderr[-3000:]}")
                py = json.loads(done.stdout.strip().splitlines()[-1])
                ratio = py["update"] / py["rescore"]
                print(
                    f"    from Python (model loaded once): re-score {py['rescore']:6.1f} s | "
                    f"update {py['update']:5.2f} s | time ratio {ratio:.3f}; "
                    f"stages {py['seconds']}",
                    flush=True,
                )
            if args.operators:
                ops = work / f"ops-{n}-{share}"
                shutil.rmtree(ops, ignore_errors=True)
                shutil.copytree(folder, ops)
                run(["timing", str(ops)], env)
                run(["coordination", str(ops)], env)
                with_ops = run(["update", str(ops), str(new)], env)
                entry = json.loads((ops / "updates" / "0001.json").read_text())
                print(
                    f"    with timing and coordination: update {with_ops['s']:5.1f} s "
                    f"{with_ops['rss_mib']:5.0f} MiB, time ratio "
                    f"{with_ops['s'] / rescore['s']:.3f}; stages {entry['seconds']}",
                    flush=True,
                )
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
