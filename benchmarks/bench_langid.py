"""Speed and memory of language identification on real dumps, ours against langdetect.

    python benchmarks/bench_langid.py [--data ../shared/data/external] [--repeat 2]

Reads the posts of the Chinese state-media Facebook pages (15,931 posts, about half of
them without text) and, where present, the tweets of Twitter's 2019 China takedown, and
identifies every post's language with each identifier, each in a fresh process (so that
one's models do not count in another's memory), one after the other in this command:

- ``langdetect``: langdetect alone (seeded), on every text, as narratives used it before
  (its script rules then sent it the texts without CJK or single-language scripts);
- ``ours``: :func:`narratives.embedding.langid.detect_languages`, Lingua on all cores;
- ``ours, 1 thread``: the same, Lingua on one thread (as in a Ray actor on one CPU);
- ``ours --languages en,zh``: the same with two candidates.

For each: posts/s of the first pass (models loaded on the way) and the best of
``--repeat`` later passes, and the process's peak resident memory above what Python with
numpy, regex and pandas holds before (``ru_maxrss``). Prints the ratios to langdetect's
posts/s; the target is at least 1 (issue 24).

It also counts, as a check of accuracy on real posts rather than on clean sentences, how
many English texts each reads as another language: the posts in Latin script without
Han of the six English-language state-media pages, and EUvsDisinfo's English claim
titles (short, full of names).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import regex

ROOT = Path(__file__).resolve().parent.parent
LINKS = regex.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+|(?<!\w)@\w+")
RUNS = {
    "langdetect": ("langdetect", None, None),
    "ours": ("ours", None, None),
    "ours, 1 thread": ("ours", None, "1"),
    "ours --languages en,zh": ("ours", "en,zh", None),
}


def _texts(data: Path) -> dict[str, list[str]]:
    import pandas as pd

    sets = {}
    state = data / "cn-state-media-facebook-2022" / "fb_posts_cn_state_media_2022.csv"
    if not state.exists():
        sys.exit(f"{state} is absent: give --data, the folder of the external data sets")
    sets["state media"] = pd.read_csv(state)["CONTENT"].fillna("").astype(str).tolist()
    tweets = sorted((data / "twitter-io-china-2019").glob("*tweets*.csv*"))
    if tweets:
        frame = pd.read_csv(tweets[0], usecols=["tweet_text"], nrows=20_000)
        sets["takedown tweets"] = frame["tweet_text"].fillna("").astype(str).tolist()
    return sets


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(kind: str, languages: str | None, data: Path, repeat: int) -> None:
    sets = _texts(data)
    import numpy  # noqa: F401  (held by both before the clock runs)

    base = _rss_mib()
    if kind == "langdetect":
        from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        def load():
            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            factory.seed = 0
            return factory

        factory = None

        def detect(texts):
            nonlocal factory
            factory = factory or load()
            out = []
            for text in texts:
                d = factory.create()
                d.set_max_text_length(1000)
                d.append(LINKS.sub(" ", text))  # as narratives 0.2 sent it
                try:
                    out.append(d.detect())
                except LangDetectException:
                    out.append("und")
            return out

    else:
        from narratives.embedding.langid import detect_languages

        def detect(texts):
            return detect_languages(texts, languages.split(",") if languages else None)[0]

    result = {}
    for name, texts in sets.items():
        t = time.perf_counter()
        detect(texts)
        first = len(texts) / (time.perf_counter() - t)
        best = 0.0
        for _ in range(repeat):
            t = time.perf_counter()
            detect(texts)
            best = max(best, len(texts) / (time.perf_counter() - t))
        result[name] = {"posts": len(texts), "first": first, "warm": best}
    result["rss_mib"] = _rss_mib() - base
    for name, texts in _english(data).items():
        result[f"{name}: not en"] = [sum(x != "en" for x in detect(texts)), len(texts)]
    print(json.dumps(result))


def _english(data: Path) -> dict[str, list[str]]:
    import pandas as pd

    frame = pd.read_csv(data / "cn-state-media-facebook-2022" / "fb_posts_cn_state_media_2022.csv")
    english = {"CCTV", "CGTN", "China Daily", "China News", "Global Times", "People's Daily, China"}
    posts = frame.loc[frame["PAGE_NAME"].isin(english), "CONTENT"].dropna().astype(str)
    # with Latin letters outside links and mentions, and no Han
    latin = [t for t in posts if regex.search(r"\p{Latin}", LINKS.sub(" ", t))]
    latin = [t for t in latin if not regex.search(r"\p{Han}", t)]
    sets = {"state-media English pages": latin}
    claims = data / "euvsdisinfo-2021" / "posts.csv"
    if claims.exists():
        sets["EUvsDisinfo titles"] = pd.read_csv(claims)["title"].dropna().astype(str).tolist()
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "external")
    parser.add_argument("--repeat", type=int, default=2, help="warm passes; the best counts")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--languages", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker[0], args.languages, args.data, args.repeat)
        return
    results = {}
    for label, (kind, languages, threads) in RUNS.items():
        env = dict(os.environ)
        if threads:
            env["RAYON_NUM_THREADS"] = threads
        command = [sys.executable, __file__, "--worker", kind, "-", "--data", str(args.data)]
        command += ["--repeat", str(args.repeat)]
        if languages:
            command += ["--languages", languages]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["langdetect"]
    names = [k for k in base if k != "rss_mib" and not k.endswith("not en")]
    print(f"{os.cpu_count()} CPUs; posts/s, first pass (models loaded on the way) / best warm")
    for label, result in results.items():
        cells = []
        for name in names:
            r = result[name]
            ratio = r["warm"] / base[name]["warm"]
            cells.append(
                f"{name} ({r['posts']:,}): {r['first']:7,.0f} / {r['warm']:7,.0f} ({ratio:.2f}x)"
            )
        print(f"{label:24} " + "; ".join(cells) + f"; memory +{result['rss_mib']:,.0f} MiB")
    print("English texts read as another language:")
    for label, result in results.items():
        counts = [f"{k[:-8]} {v[0]} of {v[1]:,}" for k, v in result.items() if k.endswith("not en")]
        print(f"{label:24} " + "; ".join(counts))


if __name__ == "__main__":
    main()
