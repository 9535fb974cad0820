"""Same input, two versions of the code: are posts.parquet, pivots.parquet and
pages.parquet equal?

    python benchmarks/compare_outputs.py --base de25d30                # the bundled sample
    python benchmarks/compare_outputs.py --base de25d30 --input dump.jsonl --input other.csv

``--base`` is a commit of this repository: it is checked out in a temporary worktree and
run with the same Python, so both runs share the environment and the text cache; the
working tree's code is the other side. Each input is scored by both with ``narratives
score`` (default options), and the three tables are compared cell by cell, schema
included (run.json differs by nature: times, versions, cache hits). Exit 1 when any
table differs, with the first differences.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("posts.parquet", "pivots.parquet", "pages.parquet")


def run_score(code: Path, source: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "narratives", "score", str(source), "-o", str(out)]
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 3):  # 3: written, with page errors
        raise SystemExit(f"{' '.join(command)} (in {code}) failed:\n{done.stderr[-3000:]}")


def differences(a: Path, b: Path) -> list[str]:
    """What differs between the tables of two scored folders (empty: none)."""
    found = []
    for name in TABLES:
        left, right = pq.read_table(a / name), pq.read_table(b / name)
        if left.schema != right.schema:
            found.append(f"{name}: schemas differ\n  {left.schema}\n  {right.schema}")
            continue
        if left.num_rows != right.num_rows:
            found.append(f"{name}: {left.num_rows} rows against {right.num_rows}")
            continue
        for column in left.column_names:
            if not left.column(column).equals(right.column(column)):
                x, y = left.column(column).to_pylist(), right.column(column).to_pylist()
                row = next(i for i, (p, q) in enumerate(zip(x, y)) if p != q)
                found.append(f"{name}: column {column} differs first at row {row}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--input", type=Path, action="append", help="default: the sample")
    args = parser.parse_args()
    inputs = [p.resolve() for p in (args.input or [ROOT / "samples" / "posts.jsonl"])]
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        try:
            for k, source in enumerate(inputs):
                before, after = Path(tmp) / f"before-{k}", Path(tmp) / f"after-{k}"
                run_score(base, source, before)
                run_score(ROOT, source, after)
                found = differences(before, after)
                rows = pq.read_metadata(after / "posts.parquet").num_rows
                verdict = "equal" if not found else "DIFFERENT"
                print(f"{source.name}: {rows} posts; posts/pivots/pages {verdict}")
                for line in found[:20]:
                    print(f"  {line}")
                failed |= bool(found)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
