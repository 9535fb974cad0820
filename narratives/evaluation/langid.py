"""Evaluation of :mod:`narratives.embedding.langid` on Lingua's public test data.

The lingua-py repository keeps, for each of its 75 languages, a file of sentences, one of
word pairs and one of single words (``language-testdata/{sentences,word-pairs,
single-words}/<iso 639-1>.txt``, one item a line, 1,000 each): the data behind the
accuracy tables of Lingua's README. Nothing here downloads it; give the path of a clone
(``git clone https://github.com/pemistahl/lingua-py``) or of its ``language-testdata``.

Three identifiers read every item, in the same process:

- ``ours``: :func:`~narratives.embedding.langid.detect_languages` (script rules, then
  Lingua);
- ``langdetect``: langdetect alone (seeded), as narratives used it before; it does not
  know 20 of the 75 languages (Kazakh, Malay, Mongolian...), which it is not judged on;
- ``lingua``: Lingua's high-accuracy mode over all its languages, alone.

An item is right when the code given is its file's. Reported: accuracy per language and
kind, the mean over the languages an identifier knows, the mean over the languages all
three know, the items read a second once the models are loaded, and how much the
process's peak memory (resident set size) grew while each ran: ``ours`` and ``lingua``
share Lingua's models, so the one that runs second adds little.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from narratives.embedding.langid import detect_languages, parse_languages
from narratives.errors import InputError

KINDS = ("sentences", "word-pairs", "single-words")
IDENTIFIERS = ("ours", "langdetect", "lingua")
#: what langdetect names otherwise than Lingua's test files
_LANGDETECT_CODES = {"zh-cn": "zh", "zh-tw": "zh", "no": "nb"}


def find_testdata(path: str | Path) -> Path:
    """The ``language-testdata`` folder in or at ``path``."""
    path = Path(path)
    for candidate in (path, path / "language-testdata"):
        if all((candidate / kind).is_dir() for kind in KINDS):
            return candidate
    raise InputError(
        f"no Lingua test data at {str(path)!r}: give a clone of "
        "https://github.com/pemistahl/lingua-py (or its language-testdata folder), which "
        f"holds {', '.join(KINDS)}/<code>.txt"
    )


def read_testdata(
    path: str | Path, limit: int | None = None, languages: Sequence[str] | None = None
) -> dict[str, dict[str, list[str]]]:
    """Items by kind and language: the first ``limit`` lines of each file (all when None),
    of ``languages`` only (all when None)."""
    root = find_testdata(path)
    wanted = None if languages is None else set(parse_languages(languages) or ())
    data: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        data[kind] = {}
        for file in sorted((root / kind).glob("*.txt")):
            if wanted is not None and file.stem not in wanted:
                continue
            lines = [x.strip() for x in file.read_text(encoding="utf-8").splitlines()]
            data[kind][file.stem] = [x for x in lines if x][:limit]
    if not any(data.values()):
        raise InputError(f"no test files of the languages asked for under {str(root)!r}")
    return data


def _langdetect() -> tuple[Callable[[list[str]], list[str]], frozenset[str]]:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    from langdetect.lang_detect_exception import LangDetectException

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = 0

    def detect(texts: list[str]) -> list[str]:
        out = []
        for text in texts:
            detector = factory.create()
            detector.append(text)
            try:
                code = detector.detect()
            except LangDetectException:
                code = "und"
            out.append(_LANGDETECT_CODES.get(code, code))
        return out

    known = frozenset(_LANGDETECT_CODES.get(x, x) for x in factory.get_lang_list())
    return detect, known


def _lingua() -> tuple[Callable[[list[str]], list[str]], frozenset[str]]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(texts: list[str]) -> list[str]:
        found = detector.detect_languages_in_parallel_of(texts)
        return ["und" if x is None else x.iso_code_639_1.name.lower() for x in found]

    from narratives.embedding.langid import lingua_languages

    return detect, lingua_languages()


def _ours() -> tuple[Callable[[list[str]], list[str]], frozenset[str]]:
    from narratives.embedding.langid import known_languages

    return (lambda texts: detect_languages(texts)[0]), known_languages()


def evaluate(
    path: str | Path,
    *,
    limit: int | None = None,
    languages: Sequence[str] | None = None,
    identifiers: Sequence[str] = IDENTIFIERS,
) -> dict[str, Any]:
    """Accuracy of each identifier on the test data at ``path`` (see the module)."""
    unknown = [x for x in identifiers if x not in IDENTIFIERS]
    if unknown:
        raise InputError(f"identifiers are {', '.join(IDENTIFIERS)}; not {', '.join(unknown)}")
    data = read_testdata(path, limit, languages)
    makers = {"ours": _ours, "langdetect": _langdetect, "lingua": _lingua}
    accuracy: dict[str, dict[str, dict[str, float]]] = {}
    speed: dict[str, float] = {}
    memory: dict[str, float] = {}
    knows: dict[str, list[str]] = {}
    for name in identifiers:
        before = _peak_rss_mib()
        detect, known = makers[name]()
        knows[name] = sorted(known)
        for by_language in data.values():  # models loaded before the clock runs
            for items in by_language.values():
                detect(items[:5])
        accuracy[name] = {}
        n_items, seconds = 0, 0.0
        for kind, by_language in data.items():
            accuracy[name][kind] = {}
            for lang, items in by_language.items():
                t = time.perf_counter()
                got = detect(items)
                seconds += time.perf_counter() - t
                n_items += len(items)
                if lang in known:
                    accuracy[name][kind][lang] = float(np.mean([g == lang for g in got]))
        speed[name] = n_items / seconds if seconds else float("nan")
        memory[name] = _peak_rss_mib() - before
    return {
        "items": {kind: sum(len(v) for v in d.values()) for kind, d in data.items()},
        "languages": {kind: sorted(d) for kind, d in data.items()},
        "accuracy": accuracy,
        "means": _means(accuracy),
        "items_per_s": speed,
        "rss_growth_mib": memory,
        "knows": knows,
    }


def _means(accuracy: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per identifier and kind: the mean over the languages it knows, and over those all
    of them know (``shared``, with how many)."""
    means: dict[str, Any] = {"own": {}, "shared": {}, "n_shared": {}}
    names = list(accuracy)
    for kind in KINDS:
        shared = set.intersection(*(set(accuracy[n].get(kind, {})) for n in names))
        means["n_shared"][kind] = len(shared)
        for name in names:
            scores = accuracy[name].get(kind, {})
            means["own"].setdefault(name, {})[kind] = _mean(scores.values())
            means["shared"].setdefault(name, {})[kind] = _mean(scores[x] for x in shared)
    return means


def _mean(values: Any) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def format_table(result: dict[str, Any], *, per_language: bool = True) -> str:
    """The result as text: per language (when asked), then the means, speed and memory."""
    names = list(result["accuracy"])
    lines = []
    if per_language:
        block = 11 * len(names) - 1
        lines.append(f"{'':8} " + " ".join(f"{k:^{block}}" for k in KINDS))
        lines.append(
            f"{'language':8} " + " ".join(" ".join(f"{n[:10]:>10}" for n in names) for _ in KINDS)
        )
        langs = sorted(set().union(*(set(v) for v in result["languages"].values())))
        for lang in langs:
            cells = []
            for kind in KINDS:
                for name in names:
                    value = result["accuracy"][name][kind].get(lang)
                    cells.append(f"{'-' if value is None else f'{value:.3f}':>10}")
            lines.append(f"{lang:8} " + " ".join(cells))
        lines.append("")
    lines.append(f"{'mean accuracy':44} " + " ".join(f"{k:>13}" for k in KINDS))
    for name in names:
        own = result["means"]["own"][name]
        n = len(result["accuracy"][name][KINDS[0]])
        lines.append(
            f"{name + f' (its {n} languages)':44} " + " ".join(f"{own[k]:13.4f}" for k in KINDS)
        )
    for name in names:
        shared = result["means"]["shared"][name]
        n = result["means"]["n_shared"][KINDS[0]]
        lines.append(
            f"{name + f' (the {n} all know)':44} " + " ".join(f"{shared[k]:13.4f}" for k in KINDS)
        )
    lines.append("")
    for name in names:
        lines.append(
            f"{name:12} {result['items_per_s'][name]:10,.0f} items/s; peak memory grew by "
            f"{result['rss_growth_mib'][name]:,.0f} MiB"
        )
    return "\n".join(lines)


__all__ = ["IDENTIFIERS", "KINDS", "evaluate", "find_testdata", "format_table", "read_testdata"]
