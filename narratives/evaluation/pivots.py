"""`narratives eval pivots`: pivot detection measured on real text with known change points.

Pages are spliced, deterministically from a seed, out of real posts that no one on the
project wrote (``../shared/data/external``):

* harmless material: the English tweets of accounts from Twitter's 2019 China takedown
  from before the operation (K-pop role-play, follow-back trains, customer-service
  replies), and SemEval-2025 climate articles;
* political material: posts of Chinese state-media Facebook pages (English and Chinese,
  as our language identification reads them), EUvsDisinfo claim titles, SemEval-2025
  Ukraine-war articles in five languages.

Page kinds: ``topic`` (harmless -> political in the same language, climate -> war),
``language`` (one newsroom or subject in another language: CCTV -> CCTV 中文, China
News -> 中国新闻社 and back, war articles English -> Russian/Portuguese/...), ``topic+language``
(harmless English -> Chinese or non-English war news), ``stable`` (a real page's or
account's own posts in time order, or one subject from one source), and ``burst``
(a stable page with 1 to 4 foreign posts that revert). Sides have 5 to 250 posts; a
quarter of the pivot pages have only 5 to 8 posts on one side.

Detection is scored with ruptures' ``precision_recall`` definition (a detected change
within ``margin`` posts of a true one), summed over pages; kind accuracy is over the
true pivots found. Plain ruptures on the raw embeddings (KernelCPD with the cosine
kernel, and PELT with the RBF cost) is scored on the same pages at the single penalty
that is best for it on this harness, and at half and double that penalty.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.embedding.model_cache import cache_dir
from narratives.errors import InputError
from narratives.pivots.detector import PivotConfig, PivotDetector
from narratives.scored import atomic_path

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path("../shared/data/external")
MARGIN = 3
POOL_SIZES = {"statemedia_en": 1600, "claims_en": 1200}
#: Page ids of cn-state-media-facebook-2022: CGTN, China Daily, People's Daily, CCTV,
#: China News, Global Times post in English; China Xinhua News, CCTV 中文 and 中国新闻社
#: in Chinese. CCTV (5) and CCTV 中文 (6), China News (7) and 中国新闻社 (8) are the same
#: newsrooms in two languages, the closest the data comes to one subject in two languages.
FB_ENGLISH_PAGES = ["1", "2", "4", "5", "7", "9"]
FB_CHINESE_PAGES = ["3", "6", "8"]
SEMEVAL = [("EN", "URW"), ("EN", "CC"), ("RU", "URW"), ("PT", "URW"), ("PT", "CC"),
           ("BG", "URW"), ("BG", "CC"), ("HI", "URW")]  # fmt: skip
#: (pool before, pool after) for each kind of pivot page.
RECIPES: dict[str, list[tuple[str, str]]] = {
    "topic": [
        ("troll_en", "statemedia_en"),
        ("troll_en", "claims_en"),
        ("semeval_PT_CC", "semeval_PT_URW"),
        ("semeval_BG_CC", "semeval_BG_URW"),
        ("semeval_EN_CC", "semeval_EN_URW"),
    ],
    "language": [
        ("cctv_en", "cctv_zh"),
        ("cctv_zh", "cctv_en"),
        ("cns_en", "cns_zh"),
        ("cns_zh", "cns_en"),
        ("semeval_EN_URW", "semeval_RU_URW"),
        ("semeval_EN_URW", "semeval_PT_URW"),
        ("semeval_BG_URW", "semeval_RU_URW"),
        ("semeval_PT_URW", "semeval_BG_URW"),
        ("semeval_RU_URW", "semeval_HI_URW"),
    ],
    "topic+language": [
        ("troll_en", "statemedia_zh"),
        ("troll_en", "semeval_RU_URW"),
        ("troll_en", "semeval_BG_URW"),
        ("troll_en", "semeval_PT_URW"),
        ("semeval_EN_CC", "semeval_RU_URW"),
    ],
}
STABLE_POOLS = ["statemedia_en", "statemedia_zh", "claims_en", "troll_en", "semeval_RU_URW",
                "semeval_BG_URW", "semeval_PT_URW"]  # fmt: skip


@dataclass
class Page:
    page_id: str
    kind: str  # topic | language | topic+language | stable | burst
    keys: list[tuple[str, int]]  # (pool, index) of each post in time order
    true_cps: list[int] = field(default_factory=list)
    true_kinds: list[str] = field(default_factory=list)


def _require(path: Path) -> Path:
    if not path.exists():
        raise InputError(
            f"evaluation data not found: {path}; pass --data DIR (the folder with "
            "cn-state-media-facebook-2022, twitter-io-china-2019, euvsdisinfo-2021, "
            "semeval2025-task10)"
        )
    return path


def load_pools(data: Path) -> tuple[dict[str, list[str]], dict[str, list[list[int]]]]:
    """Texts per pool, and real timelines (lists of pool indices in time order)."""
    from narratives.embedding.langid import detect_languages
    from narratives.io.read import read_posts

    rng = np.random.default_rng(7)
    fb = read_posts(
        _require(data / "cn-state-media-facebook-2022" / "fb_posts_cn_state_media_2022.csv"),
        {"post_id": "ID", "page_id": "AUTHOR_ID", "text": "CONTENT", "created_at": "TIME"},
        tz="Asia/Shanghai",
    ).posts
    fb = fb[fb["status"] == "ok"].sort_values(["page_id", "created_at", "source_row"])
    fb = fb.assign(lang=detect_languages(fb["text"].tolist())[0])
    pools: dict[str, list[str]] = {}
    timelines: dict[str, list[list[int]]] = {}
    groups = {
        "statemedia_en": (FB_ENGLISH_PAGES, "en"),
        "statemedia_zh": (FB_CHINESE_PAGES, "zh"),
        "cctv_en": (["5"], "en"),
        "cctv_zh": (["6"], "zh"),
        "cns_en": (["7"], "en"),
        "cns_zh": (["8"], "zh"),
    }
    for name, (page_ids, lang) in groups.items():
        part = fb[fb["page_id"].isin(page_ids) & (fb["lang"] == lang)]
        if name in POOL_SIZES and len(part) > POOL_SIZES[name]:
            keep = np.sort(rng.choice(len(part), POOL_SIZES[name], replace=False))
            part = part.iloc[keep]  # still in page and time order
        pools[name] = part["text"].tolist()
        pages = part["page_id"].to_numpy()
        timelines[name] = [
            list(np.flatnonzero(pages == p)) for p in np.unique(pages) if (pages == p).sum() >= 20
        ]
    trolls = pd.read_csv(
        _require(data / "twitter-io-china-2019" / "china_082019_1_matched_troll_tweets.csv")
    ).sort_values(["userid", "tweet_time_utc_from_id", "tweetid"])
    pools["troll_en"] = trolls["tweet_text"].astype(str).tolist()
    users = trolls["userid"].to_numpy()
    timelines["troll_en"] = [
        list(np.flatnonzero(users == u)) for u in np.unique(users) if (users == u).sum() >= 12
    ]
    claims = pd.read_csv(_require(data / "euvsdisinfo-2021" / "posts.csv"))
    claims = claims.sort_values(["date", "id"])
    keep = np.sort(rng.choice(len(claims), POOL_SIZES["claims_en"], replace=False))
    pools["claims_en"] = claims["title"].astype(str).iloc[keep].tolist()
    semeval = _require(data / "semeval2025-task10" / "train_subtask2.jsonl")
    articles = [json.loads(line) for line in semeval.read_text("utf-8").splitlines() if line]
    for lang, domain in SEMEVAL:
        chosen = sorted(
            (a for a in articles if a["language"] == lang and a["domain_from_labels"] == domain),
            key=lambda a: a["doc_id"],
        )
        # an article's opening, about the length of a long post
        pools[f"semeval_{lang}_{domain}"] = [a["text"].strip()[:400] for a in chosen]
    return pools, timelines


def _sizes(rng: np.random.Generator, small: bool, cap_before: int, cap_after: int):
    def one(cap: int) -> int:
        return int(min(cap, round(np.exp(rng.uniform(np.log(5), np.log(250))))))

    before, after = one(cap_before), one(cap_after)
    if small:  # 5 to 8 posts on one side
        if rng.random() < 0.5:
            before = int(rng.integers(5, 9))
        else:
            after = int(rng.integers(5, 9))
    return max(before, 5), max(after, 5)


def build_pages(
    pools: dict[str, list[str]],
    timelines: dict[str, list[list[int]]],
    seed: int = 0,
    n_pivot: int = 300,
    n_stable: int = 120,
    n_burst: int = 80,
) -> list[Page]:
    """Spliced pages with known change points (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    pages: list[Page] = []
    kinds = list(RECIPES)
    for i in range(n_pivot):
        kind = kinds[i % len(kinds)]
        before_pool, after_pool = RECIPES[kind][int(rng.integers(len(RECIPES[kind])))]
        nb, na = _sizes(rng, i % 4 == 0, len(pools[before_pool]), len(pools[after_pool]))
        before = rng.choice(len(pools[before_pool]), nb, replace=False)
        after = rng.choice(len(pools[after_pool]), na, replace=False)
        keys = [(before_pool, int(j)) for j in before] + [(after_pool, int(j)) for j in after]
        pages.append(Page(f"pivot-{i:03d}", kind, keys, [nb], [kind]))
    for i in range(n_stable):
        keys = _stable_keys(rng, pools, timelines, int(np.exp(rng.uniform(np.log(5), np.log(500)))))
        pages.append(Page(f"stable-{i:03d}", "stable", keys))
    for i in range(n_burst):
        keys = _stable_keys(rng, pools, timelines, int(rng.integers(40, 400)))
        pool = keys[0][0]
        other = [p for p in ("statemedia_zh", "troll_en", "claims_en", "semeval_RU_URW")
                 if p != pool]  # fmt: skip
        burst_pool = other[int(rng.integers(len(other)))]
        burst = rng.choice(len(pools[burst_pool]), int(rng.integers(1, 5)), replace=False)
        at = int(rng.integers(len(keys) // 4, 3 * len(keys) // 4))
        keys = keys[:at] + [(burst_pool, int(j)) for j in burst] + keys[at:]
        pages.append(Page(f"burst-{i:03d}", "burst", keys))
    return pages


def _stable_keys(rng, pools, timelines, n: int) -> list[tuple[str, int]]:
    """A real timeline (a page's or account's posts in order) or one subject's posts."""
    pool = STABLE_POOLS[int(rng.integers(len(STABLE_POOLS)))]
    # Real timelines of state-media pages only: the takedown accounts' own timelines are
    # not stable, they hold the accounts' repurposings.
    if pool.startswith("statemedia") and timelines.get(pool) and rng.random() < 0.7:
        real = [t for t in timelines[pool] if len(t) >= min(n, 12)]
        line = real[int(rng.integers(len(real)))]
        n = min(n, len(line))
        start = int(rng.integers(0, len(line) - n + 1))
        return [(pool, int(j)) for j in line[start : start + n]]
    n = min(n, len(pools[pool]))
    # random order: pools are stored by account and date, and sorted draws would splice
    # several accounts' timelines together, which are real changes
    return [(pool, int(j)) for j in rng.choice(len(pools[pool]), n, replace=False)]


def embed_pools(pools: dict[str, list[str]], embedder) -> dict[str, dict[str, np.ndarray]]:
    """Embeddings, languages and topic profiles of every pool text; embeddings and
    languages are cached on disk per pool, profiles are recomputed (they are cheap)."""
    from narratives.embedding.langid import detect_languages
    from narratives.pivots.topics import topic_profiles, topic_prototypes

    model = json.dumps([embedder.model_id, embedder.model_version]).encode()
    prototypes = topic_prototypes(embedder)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in sorted(pools):
        digest = hashlib.sha256(model)
        for text in pools[name]:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        path = cache_dir() / "eval" / f"pool-{name}-{digest.hexdigest()[:16]}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                emb, langs = stored["embedding"], stored["lang"]
        else:
            logger.info("embedding %d texts of %s", len(pools[name]), name)
            emb = embedder.encode(pools[name])
            langs = np.array(detect_languages(pools[name])[0], dtype=str)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, embedding=emb, lang=langs)
        out[name] = {"embedding": emb, "lang": langs, "profile": topic_profiles(emb, prototypes)}
    return out


def _posts_frame(pages: list[Page], data: dict[str, dict[str, np.ndarray]]):
    rows_page, rows_lang, rows_pid, profiles, embeddings, times = [], [], [], [], [], []
    start = np.datetime64("2021-01-01T00:00:00", "us")
    for page in pages:
        for i, (pool, j) in enumerate(page.keys):
            rows_page.append(page.page_id)
            rows_lang.append(str(data[pool]["lang"][j]))
            rows_pid.append(f"{page.page_id}/{i}")
            profiles.append(data[pool]["profile"][j])
            embeddings.append(data[pool]["embedding"][j])
            times.append(start + np.timedelta64(i * 3600, "s"))
    posts = pd.DataFrame(
        {
            "post_id": rows_pid,
            "page_id": rows_page,
            "created_at": pd.to_datetime(times, utc=True),
            "source_row": np.arange(len(rows_pid)),
            "status": "ok",
            "lang": rows_lang,
        }
    )
    return posts, np.asarray(profiles, dtype=np.float32), np.asarray(embeddings, np.float32)


def _true_positives(true: list[int], found: list[int], n: int, margin: int) -> int:
    if not true or not found:
        return 0
    from ruptures.metrics import precision_recall

    precision, _ = precision_recall([*true, n], [*found, n], margin=margin)
    return round(precision * len(found))


def score_detections(
    pages: list[Page], found: dict[str, list[int]], margin: int = MARGIN
) -> dict[str, float]:
    """Precision, recall, F1 (summed over pages), false pivots per stable/burst page."""
    tp = n_found = n_true = 0
    false_stable = false_burst = 0
    small_tp = small_true = 0
    for page in pages:
        cps = found.get(page.page_id, [])
        n = len(page.keys)
        hits = _true_positives(page.true_cps, cps, n, margin)
        tp += hits
        n_found += len(cps)
        n_true += len(page.true_cps)
        if page.kind == "stable":
            false_stable += len(cps)
        elif page.kind == "burst":
            false_burst += len(cps)
        elif min(page.true_cps[0], n - page.true_cps[0]) <= 8:
            small_tp += hits
            small_true += 1
    precision = tp / n_found if n_found else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_stable = sum(p.kind == "stable" for p in pages)
    n_burst = sum(p.kind == "burst" for p in pages)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "recall_5_8": small_tp / small_true if small_true else float("nan"),
        "false_per_stable": false_stable / n_stable if n_stable else float("nan"),
        "false_per_burst": false_burst / n_burst if n_burst else float("nan"),
    }


def run_ours(pages, data, config: PivotConfig | None = None) -> tuple[dict, dict[str, float]]:
    posts, profiles, embeddings = _posts_frame(pages, data)
    detector = PivotDetector(config).fit(posts, profiles, embeddings)
    found: dict[str, list[int]] = {}
    kinds: dict[tuple[str, int], str] = {}
    for row in detector.pivots_.itertuples():
        found.setdefault(row.page_id, []).append(int(row.position))
        kinds[(row.page_id, int(row.position))] = row.kind
    metrics = score_detections(pages, found)
    right = matched = 0
    for page in pages:
        for cp, kind in zip(page.true_cps, page.true_kinds):
            near = [p for p in found.get(page.page_id, []) if abs(p - cp) < MARGIN]
            if near:
                matched += 1
                right += kinds[(page.page_id, near[0])] == kind
    metrics["kind_accuracy"] = right / matched if matched else float("nan")
    return found, metrics


def _replay_page(config: PivotConfig | None, timeline: Any, step: int) -> list[tuple[int, list]]:
    """A page's pivots (position, provisional) after each ``step`` posts, and at its end."""
    from narratives.pivots.timelines import Timeline

    detector = PivotDetector(config, n_jobs=1)
    n = len(timeline)
    out = []
    for end in [*range(step, n, step), n]:
        prefix = Timeline(
            timeline.page_id,
            timeline.rows[:end],
            timeline.post_ids[:end],
            timeline.times[:end],
            timeline.langs[:end],
            timeline.profiles[:end],
            timeline.embeddings[:end],
        )
        rows, _ = detector.detect_page(prefix)
        out.append((end, [(int(r["position"]), bool(r["provisional"])) for r in rows]))
    return out


def replay(
    pages: list[Page], data, config: PivotConfig | None = None, step: int = 24
) -> dict[str, Any]:
    """Early detection: every page replayed as its posts come, ``step`` posts at a time
    (24: a day of the harness's hourly posts), detection run on the posts so far at each
    step, as ``narratives update`` runs it on the pages that received posts.

    Measured: for each true pivot found at the end, the posts after it when a pivot
    within ``MARGIN`` posts was first reported, and whether it was then provisional; of
    the provisional pivots (followed by one track of reports per page, a report within
    ``MARGIN`` posts of the track's last position being the same pivot), the share
    withdrawn by the end (no pivot within ``MARGIN`` at the end); of the pivots reported
    confirmed (not provisional), the share withdrawn; and the final F1, which is the
    all-at-once F1 by construction (the last step holds every post)."""
    from joblib import Parallel, delayed

    from narratives.pivots.timelines import page_timelines

    posts, profiles, embeddings = _posts_frame(pages, data)
    timelines = list(page_timelines(posts, profiles, embeddings))
    histories = Parallel(n_jobs=-1)(delayed(_replay_page)(config, t, step) for t in timelines)
    by_page = {t.page_id: h for t, h in zip(timelines, histories)}
    delays, first_provisional = [], []
    tracks: list[dict[str, Any]] = []
    for page in pages:
        history = by_page[page.page_id]
        final = [q for q, _ in history[-1][1]]
        for cp in page.true_cps:
            if not any(abs(q - cp) < MARGIN for q in final):
                continue
            for end, found in history:
                near = [prov for q, prov in found if abs(q - cp) < MARGIN]
                if near:
                    delays.append(end - cp)
                    first_provisional.append(near[0])
                    break
        page_tracks: list[dict[str, Any]] = []
        for _, found in history:
            for q, prov in found:
                track = next((t for t in page_tracks if abs(t["at"] - q) < MARGIN), None)
                if track is None:
                    track = {"at": q, "provisional": False, "confirmed": False}
                    page_tracks.append(track)
                track["at"] = q
                track["provisional" if prov else "confirmed"] = True
        for track in page_tracks:
            track["kept"] = any(abs(track["at"] - q) < MARGIN for q in final)
            track["kind"] = page.kind
        tracks += page_tracks
    provisional = [t for t in tracks if t["provisional"]]
    confirmed = [t for t in tracks if t["confirmed"]]
    final_found = {page.page_id: [q for q, _ in by_page[page.page_id][-1][1]] for page in pages}
    d = np.array(delays, dtype=float)
    return {
        "step": step,
        "true_pivots": sum(len(p.true_cps) for p in pages),
        "found_at_end": len(delays),
        "posts_after_median": float(np.median(d)) if len(d) else float("nan"),
        "posts_after_p25": float(np.percentile(d, 25)) if len(d) else float("nan"),
        "posts_after_p75": float(np.percentile(d, 75)) if len(d) else float("nan"),
        "posts_after_min": float(d.min()) if len(d) else float("nan"),
        "first_report_provisional": float(np.mean(first_provisional)) if delays else 0.0,
        "provisional_pivots": len(provisional),
        "provisional_withdrawn": float(np.mean([not t["kept"] for t in provisional]))
        if provisional
        else 0.0,
        "provisional_withdrawn_on_true_pivot_pages": float(
            np.mean([not t["kept"] for t in provisional if t["kind"] not in ("stable", "burst")])
        )
        if any(t["kind"] not in ("stable", "burst") for t in provisional)
        else 0.0,
        "confirmed_pivots": len(confirmed),
        "confirmed_withdrawn": float(np.mean([not t["kept"] for t in confirmed]))
        if confirmed
        else 0.0,
        "final": score_detections(pages, final_found),
    }


def format_replay(result: dict[str, Any], all_at_once_f1: float | None = None) -> str:
    r = result
    lines = [
        f"early detection: pages replayed {r['step']} posts (a day of hourly posts) at a time",
        f"  true pivots found at the end: {r['found_at_end']} of {r['true_pivots']}",
        f"  posts after a true pivot when first reported: median {r['posts_after_median']:g} "
        f"(quartiles {r['posts_after_p25']:g}-{r['posts_after_p75']:g}, least "
        f"{r['posts_after_min']:g}); provisional when first reported: "
        f"{r['first_report_provisional']:.1%}",
        f"  provisional pivots: {r['provisional_pivots']}, withdrawn later "
        f"{r['provisional_withdrawn']:.1%} (on pages with a true pivot "
        f"{r['provisional_withdrawn_on_true_pivot_pages']:.1%})",
        f"  pivots reported confirmed: {r['confirmed_pivots']}, withdrawn later "
        f"{r['confirmed_withdrawn']:.1%}",
        f"  final F1 {r['final']['f1']:.3f}"
        + ("" if all_at_once_f1 is None else f" (all posts at once: {all_at_once_f1:.3f})"),
    ]
    return "\n".join(lines)


def run_ruptures(pages, data, kernel: str, penalties: np.ndarray) -> dict[float, dict]:
    """Plain ruptures KernelCPD (PELT search) on raw embeddings, per penalty."""
    import ruptures as rpt

    found: dict[float, dict[str, list[int]]] = {float(p): {} for p in penalties}
    for page in pages:
        signal = np.vstack([data[pool]["embedding"][j] for pool, j in page.keys]).astype(np.float64)
        params = {"gamma": 1.0} if kernel == "rbf" else None
        algo = rpt.KernelCPD(kernel=kernel, params=params).fit(signal)
        for pen in penalties:
            found[float(pen)][page.page_id] = [int(b) for b in algo.predict(pen=pen)[:-1]]
    return {pen: score_detections(pages, f) for pen, f in found.items()}


def evaluate(
    data_dir: Path = DEFAULT_DATA,
    embedder=None,
    seed: int = 0,
    baselines: bool = True,
    config: PivotConfig | None = None,
    replay_step: int | None = None,
) -> dict[str, Any]:
    """Build the harness, run our detector and the ruptures baselines, return the table;
    with ``replay_step``, also the early-detection replay (:func:`replay`)."""
    from narratives.embedding.embedder import Embedder

    pools, timelines = load_pools(Path(data_dir))
    embedder = embedder or Embedder("default")
    data = embed_pools(pools, embedder)
    pages = build_pages(pools, timelines, seed=seed)
    _, ours = run_ours(pages, data, config)
    rows = [{"method": "narratives (defaults)", "penalty": None, **ours}]
    if baselines:
        grid = np.geomspace(0.05, 200.0, 36)
        for label, kernel in (("ruptures KernelCPD cosine", "cosine"),
                              ("ruptures PELT rbf", "rbf")):  # fmt: skip
            by_pen = run_ruptures(pages, data, kernel, grid)
            best = max(by_pen, key=lambda p: (by_pen[p]["f1"], -p))
            extra = run_ruptures(pages, data, kernel, np.array([best / 2, best * 2]))
            for pen, tag in ((best, "best"), (best / 2, "best/2"), (best * 2, "best*2")):
                metrics = by_pen[pen] if tag == "best" else extra[pen]
                rows.append({"method": f"{label} ({tag})", "penalty": pen, **metrics})
    counts = pd.Series([p.kind for p in pages]).value_counts().to_dict()
    out = {"pages": counts, "n_pages": len(pages), "seed": seed, "rows": rows}
    if replay_step:
        out["replay"] = replay(pages, data, config, replay_step)
    return out


def format_table(result: dict[str, Any]) -> str:
    head = (
        f"{'method':<34} {'penalty':>8} {'P':>6} {'R':>6} {'F1':>6} {'R(5-8)':>7} "
        f"{'kind':>6} {'FP/stable':>9} {'FP/burst':>9}"
    )
    lines = [
        f"pivot evaluation: {result['n_pages']} pages (seed {result['seed']}): "
        + ", ".join(f"{k} {v}" for k, v in sorted(result["pages"].items())),
        f"margin {MARGIN} posts (ruptures precision_recall); R(5-8): recall on pages with 5-8 "
        "posts on one side",
        head,
        "-" * len(head),
    ]
    for row in result["rows"]:
        pen = "" if row["penalty"] is None else f"{row['penalty']:.3g}"
        kind = row.get("kind_accuracy")
        lines.append(
            f"{row['method']:<34} {pen:>8} {row['precision']:6.3f} {row['recall']:6.3f} "
            f"{row['f1']:6.3f} {row['recall_5_8']:7.3f} "
            f"{'' if kind is None else f'{kind:.3f}':>6} {row['false_per_stable']:9.3f} "
            f"{row['false_per_burst']:9.3f}"
        )
    if "replay" in result:
        lines += ["", format_replay(result["replay"], result["rows"][0]["f1"])]
    return "\n".join(lines)
