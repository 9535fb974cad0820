"""`narratives eval tagger`: narrative tags measured on labelled posts.

The bundled evaluation set (``narratives/evaluation/data/tagger-eval-v2.jsonl``) holds 374
short posts in six languages (English, Chinese, Russian, Spanish, French, Vietnamese;
the taxonomy's exemplars cover all but French), written for
evaluation apart from the taxonomy's exemplars and never used to build or calibrate a
tagger: 230 posts that carry one or two narratives, 78 harmless posts (ads, sport,
recipes, follow-back spam) and 66 near-misses (neutral news about China, the US, Japan,
Hong Kong or Taiwan). The first 134 are v1 (``tagger-eval-v1.jsonl``), each written in
its own language; the other 240 are 40 items written once in each of the six languages
(the same content, marked by their ``item``), so that their cross-lingual gap is the
languages' alone. Labels are narrative-level ids of the default taxonomy.

Metrics are narrative-level: per-narrative precision, recall and F1, micro and macro
F1, the false-tag rate (share of posts without a narrative that get any tag), and the
cross-lingual gap (micro F1 on non-English posts minus English; also on the posts of
items written in every language alone, where given). The naive baseline
scores each post by cosine similarity to one English sentence per narrative (its name)
and tags every narrative above one global cut-off chosen on the evaluation set itself.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from narratives.errors import InputError

DEFAULT_EVAL = "tagger-eval-v2"


def load_eval_set(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Labelled posts: ``text``, ``labels`` (narrative ids, empty for none), ``lang``."""
    if path is None:
        text = (
            resources.files("narratives.evaluation")
            .joinpath(f"data/{DEFAULT_EVAL}.jsonl")
            .read_text("utf-8")
        )
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"evaluation file not found: {str(p)!r}")
        text = p.read_text("utf-8")
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"evaluation file line {n}: not JSON ({exc})") from None
        if not isinstance(row.get("text"), str) or not isinstance(row.get("labels"), list):
            raise InputError(f"evaluation file line {n}: needs 'text' and a 'labels' list")
        row.setdefault("lang", "und")
        rows.append(row)
    return rows


def _metrics(truth: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    tp = (truth & pred).sum(axis=0)
    fp = (~truth & pred).sum(axis=0)
    fn = (truth & ~pred).sum(axis=0)
    per_label = {}
    f1s = []
    for k, label in enumerate(labels):
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 0.0
        r = tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_label[label] = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f1),
            "support": int(truth[:, k].sum()),
        }
        if truth[:, k].any():
            f1s.append(f1)
    denom = 2 * tp.sum() + fp.sum() + fn.sum()
    none = ~truth.any(axis=1)
    return {
        "micro_f1": float(2 * tp.sum() / denom) if denom else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "false_tag_rate": float(pred[none].any(axis=1).mean()) if none.any() else float("nan"),
        "per_label": per_label,
    }


def _gap(
    truth: np.ndarray, pred: np.ndarray, narratives: list[str], langs: np.ndarray
) -> tuple[float, float, float] | None:
    """Micro F1 of English posts, of the others, and the gap (others minus English)."""
    english = langs == "en"
    if not english.any() or english.all():
        return None
    en = _metrics(truth[english], pred[english], narratives)["micro_f1"]
    other = _metrics(truth[~english], pred[~english], narratives)["micro_f1"]
    return en, other, other - en


def summarize(
    truth: np.ndarray,
    pred: np.ndarray,
    narratives: list[str],
    langs: np.ndarray,
    kinds: np.ndarray,
    parallel: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of narrative-level predictions: micro and macro F1, the false-tag rate
    (overall and on harmless and near-miss posts), micro F1 by language and the
    cross-lingual gap (non-English minus English); with ``parallel`` (a mask of the posts
    of items written in every language), the same gap and F1 by language on those."""
    out = _metrics(truth, pred, narratives)
    gap = _gap(truth, pred, narratives, langs)
    if gap is not None:
        out["micro_f1_en"], out["micro_f1_non_en"], out["cross_lingual_gap"] = gap
    if parallel is not None and parallel.any():
        gap = _gap(truth[parallel], pred[parallel], narratives, langs[parallel])
        if gap is not None:
            out["cross_lingual_gap_parallel"] = gap[2]
        by_lang = {}
        for lang in sorted(set(langs[parallel])):
            rows = parallel & (langs == lang)
            by_lang[lang] = _metrics(truth[rows], pred[rows], narratives)["micro_f1"]
        out["micro_f1_by_lang_parallel"] = by_lang
    out["micro_f1_by_lang"] = {
        lang: _metrics(truth[langs == lang], pred[langs == lang], narratives)["micro_f1"]
        for lang in sorted(set(langs))
    }
    for kind in ("harmless", "near_miss"):
        part = kinds == kind
        if part.any():
            out[f"false_tag_rate_{kind}"] = float(pred[part].any(axis=1).mean())
    return out


def evaluate(
    tagger: Any = "default",
    data: str | Path | None = None,
    taxonomy: str | Path | None = None,
    baseline: bool = True,
    phrases: str | Path | None = None,
) -> dict[str, Any]:
    """``narratives eval tagger``: a tagger (``"default"``: the zero-shot tagger of
    ``taxonomy``, a tagger folder, or a :class:`~narratives.NarrativeTagger`) measured on
    the labelled posts of ``data`` (default: the bundled evaluation set), with the default
    model's embeddings, beside the naive baseline; with ``phrases`` (Doublethink Lab's
    phrase list, see :func:`phrase_check`), the cross-check on it too."""
    from narratives.embedding.embedder import Embedder
    from narratives.tagging.tagger import NarrativeTagger

    rows = load_eval_set(data)
    embedder = Embedder("default")
    if not isinstance(tagger, NarrativeTagger):
        tagger = NarrativeTagger.from_pretrained(tagger, embedder, taxonomy)
    if tagger.embedder is None:
        tagger = tagger.with_embedder(embedder)
    embeddings = embedder.encode([r["text"] for r in rows])
    result = evaluate_tagger(tagger, rows, embeddings, baseline=baseline, embedder=embedder)
    if phrases is not None:
        result["phrases"] = phrase_check(tagger, phrases)
    return result


#: The languages of Doublethink Lab's phrase list, by its column names.
PHRASE_LANGUAGES = {"English": "en", "French": "fr", "Spanish": "es", "Italian": "it",
                    "Arabic": "ar"}  # fmt: skip


def phrase_check(tagger: Any, path: str | Path) -> dict[str, Any]:
    """A cross-check on text no one on the team wrote: Doublethink Lab's phrases that
    signal alignment with CCP positions (label ``A``) or opposition to them (``O``), in
    five languages (``ccp_alignment_phrases.csv``, see its SOURCE.md). Each phrase is
    tagged as a post; an opposed phrase should get no tag. Never used to fit or tune.
    Returns, per label, the phrases tagged and their count, overall and by language."""
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "ccp_alignment_phrases.csv"
    if not path.is_file():
        raise InputError(
            f"phrase list not found: {str(path)!r}; give the ccp-aligned-phrases-doublethink "
            "folder or its ccp_alignment_phrases.csv"
        )
    table = pd.read_csv(path)
    table = table[(table["Type"] == "Phrase") & table["Label"].isin(["A", "O"])]
    texts, labels, langs = [], [], []
    for column, lang in PHRASE_LANGUAGES.items():
        for label, text in zip(table["Label"], table[column]):
            if isinstance(text, str) and text.strip():
                texts.append(text.strip())
                labels.append(label)
                langs.append(lang)
    tagged = np.array([bool(row["narratives"]) for row in tagger.tag(texts)])
    labels_arr, langs_arr = np.array(labels), np.array(langs)
    out: dict[str, Any] = {}
    for label, name in (("O", "opposed"), ("A", "aligned")):
        part = labels_arr == label
        out[name] = {
            "phrases": int(part.sum()),
            "tagged": float(tagged[part].mean()) if part.any() else float("nan"),
            "by_language": {
                lang: float(tagged[part & (langs_arr == lang)].mean())
                for lang in PHRASE_LANGUAGES.values()
                if (part & (langs_arr == lang)).any()
            },
        }
    return out


def evaluate_tagger(
    tagger,
    rows: list[dict[str, Any]],
    embeddings: np.ndarray,
    baseline: bool = True,
    embedder: Any = None,
) -> dict[str, Any]:
    """Narrative-level metrics of ``tagger`` (and of the naive baseline) on ``rows``.

    ``embeddings`` are the rows' vectors by ``embedder`` (default: the tagger's), which
    the baseline compares with its names; a tagger with a fine-tuned encoder of its own
    reads the texts instead."""
    narratives = [n.id for n in tagger.taxonomy.narratives]
    index = {label: k for k, label in enumerate(narratives)}
    # labels may be given by id or, for taggers trained on named labels, by name
    index.update({n.name: index[n.id] for n in tagger.taxonomy.narratives})
    unknown = sorted({lab for r in rows for lab in r["labels"]} - set(index))
    if unknown:
        raise InputError(
            f"the evaluation labels {unknown} are not narratives of taxonomy "
            f"{tagger.taxonomy.id}; label with its narrative-level ids"
        )
    truth = np.zeros((len(rows), len(narratives)), dtype=bool)
    for i, r in enumerate(rows):
        truth[i, [index[lab] for lab in r["labels"]]] = True
    langs = np.array([r["lang"] for r in rows])
    kinds = np.array([r.get("kind", "") for r in rows])
    parallel = np.array(["item" in r for r in rows])
    columns = [tagger.labels.index(n) for n in narratives]
    proba = tagger.predict_proba([r["text"] for r in rows], embeddings)
    pred = tagger.decide(proba)[:, columns]

    def summary(pred: np.ndarray) -> dict[str, Any]:
        return summarize(truth, pred, narratives, langs, kinds, parallel)

    result: dict[str, Any] = {
        "n_posts": len(rows),
        "n_with_narrative": int(truth.any(axis=1).sum()),
        "n_parallel_items": len({r["item"] for r in rows if "item" in r}),
        "languages": sorted(set(langs)),
        "tagger": summary(pred),
    }
    if any(r.get("opposes") for r in rows):
        result["opposing"] = _opposing(tagger, rows, pred, embeddings, narratives)
    if baseline:
        embedder = embedder or tagger.embedder
        anchors = embedder.encode([tagger.taxonomy.node(n).name for n in narratives])
        cosine = np.asarray(embeddings) @ anchors.T
        best_cut, best_f1 = 0.0, -1.0
        for cut in np.round(np.arange(0.70, 0.95, 0.0025), 4):
            f1 = _metrics(truth, cosine >= cut, narratives)["micro_f1"]
            if f1 > best_f1:
                best_cut, best_f1 = float(cut), f1
        result["baseline"] = {"cutoff": best_cut, **summary(cosine >= best_cut)}
    return result


def _opposing(
    tagger: Any,
    rows: list[dict[str, Any]],
    pred: np.ndarray,
    embeddings: np.ndarray,
    narratives: list[str],
) -> dict[str, Any]:
    """On the posts that argue against a narrative (``opposes`` in the set): the share
    tagged with any narrative, the share tagged with the one they oppose, and the recall
    of ``opposes`` (None for a tagger that reports none)."""
    where = [i for i, r in enumerate(rows) if r.get("opposes")]
    column = {n: k for k, n in enumerate(narratives)}
    same = [any(pred[i, column[n]] for n in rows[i]["opposes"]) for i in where]
    texts = [rows[i]["text"] for i in where]
    found = tagger.tag(texts, np.asarray(embeddings)[where])
    recall = None
    if all("opposes" in row for row in found):  # a tagger that reads stance reports it
        reported = [{o["id"] for o in row["opposes"]} for row in found]
        recall = float(np.mean([set(rows[i]["opposes"]) <= got for i, got in zip(where, reported)]))
    return {
        "posts": len(where),
        "tagged": float(pred[where].any(axis=1).mean()),
        "tagged_with_opposed": float(np.mean(same)),
        "opposes_recall": recall,
    }


def format_report(result: dict[str, Any]) -> str:
    head = f"{'method':<44} {'micro F1':>8} {'macro F1':>8} {'false tags':>10} {'gap':>7}"
    lines = [
        f"tagger evaluation: {result['n_posts']} posts ({result['n_with_narrative']} with a "
        f"narrative), languages {', '.join(result['languages'])}",
        head,
        "-" * len(head),
    ]
    rows = [("narratives tagger (nothing tuned on this set)", result["tagger"])]
    if "baseline" in result:
        b = result["baseline"]
        rows.append((f"baseline: cosine to names, cut-off {b['cutoff']:.4f}*", b))
    for name, m in rows:
        lines.append(
            f"{name:<44} {m['micro_f1']:8.3f} {m['macro_f1']:8.3f} "
            f"{m['false_tag_rate']:10.3f} {m.get('cross_lingual_gap', float('nan')):+7.3f}"
        )
    lines.append(
        "false tags: share of posts without a narrative that get one; gap: micro F1 on "
        "non-English posts minus English"
    )
    if "cross_lingual_gap_parallel" in result["tagger"]:
        gaps = [f"ours {result['tagger']['cross_lingual_gap_parallel']:+.3f}"]
        if "baseline" in result:
            gaps.append(f"baseline {result['baseline']['cross_lingual_gap_parallel']:+.3f}")
        lines.append(
            f"gap on the {result['n_parallel_items']} items written in every language alone: "
            + ", ".join(gaps)
        )
    if "baseline" in result:
        lines.append("* the baseline's cut-off is chosen on this evaluation set itself")
    t = result["tagger"]
    lines += [
        "",
        "micro F1 by language: "
        + ", ".join(f"{k} {v:.3f}" for k, v in t["micro_f1_by_lang"].items()),
    ]
    if "micro_f1_by_lang_parallel" in t:
        lines.append(
            "on the items written in every language: "
            + ", ".join(f"{k} {v:.3f}" for k, v in t["micro_f1_by_lang_parallel"].items())
        )
    false_tags = (
        f"false-tag rate: harmless {t.get('false_tag_rate_harmless', float('nan')):.3f}, "
        f"near-miss news {t.get('false_tag_rate_near_miss', float('nan')):.3f}"
    )
    opposing = result.get("opposing")
    if opposing:
        false_tags += (
            f", opposing posts {opposing['tagged']:.3f} (with the narrative they oppose "
            f"{opposing['tagged_with_opposed']:.3f})"
        )
    lines += [false_tags]
    if opposing:
        recall = opposing["opposes_recall"]
        lines.append(
            f"opposes recall on the {opposing['posts']} opposing posts: "
            + ("- (this tagger reports no opposing stance)" if recall is None else f"{recall:.3f}")
        )
    if "phrases" in result:
        p = result["phrases"]
        lines.append(
            "Doublethink Lab phrases (cross-check, never tuned on): tagged, opposed "
            f"{p['opposed']['tagged']:.3f} of {p['opposed']['phrases']}, aligned "
            f"{p['aligned']['tagged']:.3f} of {p['aligned']['phrases']}"
        )
    lines += [
        "",
        f"{'narrative':<22} {'P':>6} {'R':>6} {'F1':>6} {'n':>4}",
    ]
    for label, m in t["per_label"].items():
        lines.append(
            f"{label:<22} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['support']:4d}"
        )
    return "\n".join(lines)


__all__ = [
    "evaluate",
    "evaluate_tagger",
    "format_report",
    "load_eval_set",
    "phrase_check",
    "summarize",
]
