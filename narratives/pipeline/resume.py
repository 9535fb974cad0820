"""Resume: a run into an output folder that survives being killed.

The run's texts are committed chunk by chunk to the text cache (the persistent one, or
``OUT/.partial/embeddings.sqlite`` without it); posts.parquet, the vectors and the parts
of the pages are made in ``OUT/.partial`` and the outputs are moved or written into
``OUT`` only at the end, ``run.json`` last, after which ``.partial`` goes.
A run killed at any point leaves ``.partial`` behind; resumed with the same input and
settings (checked against ``.partial/state.json``), the texts embedded before the kill
come from the cache and the outputs are written whole, so that no row is lost or written
twice. :func:`narratives.score` with ``output=`` and ``resume=True`` does this.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from narratives.errors import InputError, OutputError
from narratives.scored import PARTIAL, prepare_output_dir


def run_state(source: Any, columns: Mapping[str, str], settings: Mapping[str, Any]) -> dict:
    """What a resumed run must share with the interrupted one: the input file (path, size,
    modification time), the column mapping and the settings that shape the output."""
    if not isinstance(source, (str, Path)):
        raise InputError(
            "a run into an output folder reads a file: save the posts as JSONL, CSV or "
            "Parquet first, or call score() without output= and save the result"
        )
    path = Path(source)
    stat = path.stat()
    return {
        "input": {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        "columns": dict(columns),
        "settings": dict(settings),
    }


def begin_run(out_dir: str | Path, state: dict[str, Any], *, resume: bool, force: bool) -> Path:
    """Prepare ``out_dir`` for a run described by ``state`` (see :func:`run_state`) and
    return its folder of unfinished work, ``OUT/.partial``. With ``resume``, an
    interrupted run's folder is kept when its state is the same, and refused, with the
    differences named, when it is not."""
    out = Path(out_dir)
    partial = out / PARTIAL
    if resume and (partial / "state.json").is_file():
        before = _flat(json.loads((partial / "state.json").read_text(encoding="utf-8")))
        now = _flat(json.loads(json.dumps(state)))
        changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
        if changed:
            raise OutputError(
                f"cannot resume the run in {str(out)!r}: {', '.join(changed)} differ from "
                "the interrupted run's; run it with the same input and options, or pass "
                "--force to start again"
            )
        return partial
    if resume and out.is_dir() and (out / "run.json").is_file() and not partial.exists():
        raise OutputError(f"{str(out)!r} holds a finished run: nothing to resume")
    prepare_output_dir(out, force=force or resume)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    (partial / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    return partial


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def finish_run(partial: Path) -> None:
    """The run's outputs are written: its unfinished work goes."""
    shutil.rmtree(partial, ignore_errors=True)


__all__ = ["begin_run", "finish_run", "run_state"]
