"""Trained taggers against the zero-shot tagger on the project's own evaluation set.

    python training/tagger_vs_zero_shot.py [--pairs 512] [--folds 5] [--frozen-only]

The bundled evaluation set (``narratives/evaluation/data/tagger-eval-v2.jsonl``, 374 posts in
six languages) is cut into ``--folds`` folds (seeded; the six renderings of an item
written in every language fall in the same fold, so that no tagger is trained on a
translation of a post it tags). For each fold a tagger is trained
on the other folds' posts together with the taxonomy's exemplars, definitions and harmless
``none`` exemplars (what the zero-shot tagger is built from), labelled with the
taxonomy's ids, and tags the posts of the fold, which it never saw. The predictions of
the folds are pooled, so every post is tagged by a tagger trained on labels disjoint from
it, and scored like ``narratives eval tagger`` scores the zero-shot tagger on the same
posts. Trained taggers: the default recipe with a taxonomy (the zero-shot tagger's, with
the labelled posts joining its exemplars; ``narratives train --taxonomy``), the
validation-split recipe (a head on frozen embeddings, ``--no-exemplars``), and (unless
``--frozen-only``) a head on an encoder fine-tuned first on ``--pairs`` contrastive pairs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def training_set(taxonomy) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """The taxonomy's exemplars and definitions labelled with their node (and its parent),
    and its harmless exemplars with no label."""
    from narratives.tagging.tagger import exemplar_rows

    texts, coarse, fine = [], [], []
    for _, sentence, node_id in exemplar_rows(taxonomy):
        parent = None if node_id is None else taxonomy.node(node_id).parent
        texts.append(sentence)
        coarse.append([] if node_id is None else [parent or node_id])
        fine.append([node_id] if parent else [])
    return texts, coarse, fine


def main() -> None:
    from narratives.embedding.embedder import Embedder
    from narratives.evaluation.tagger import load_eval_set, summarize
    from narratives.tagging.tagger import NarrativeTagger
    from narratives.tagging.taxonomy import load_taxonomy
    from narratives.tagging.trainer import Trainer, TrainingArguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frozen-only", action="store_true")
    args = parser.parse_args()

    embedder = Embedder("default")
    taxonomy = load_taxonomy()
    narratives = [n.id for n in taxonomy.narratives]
    rows = load_eval_set()
    texts = [r["text"] for r in rows]
    truth = np.array([[n in r["labels"] for n in narratives] for r in rows])
    langs = np.array([r["lang"] for r in rows])
    kinds = np.array([r.get("kind", "") for r in rows])
    groups = sorted({r.get("item", r["id"]) for r in rows})
    group_fold = dict(zip(groups, np.random.default_rng(args.seed).permutation(len(groups))))
    fold = np.array([group_fold[r.get("item", r["id"])] % args.folds for r in rows])
    base_texts, base_coarse, base_fine = training_set(taxonomy)

    def pooled(make, exemplars: bool) -> np.ndarray:
        pred = np.zeros_like(truth)
        for k in range(args.folds):
            train = np.flatnonzero(fold != k)
            posts = [texts[i] for i in train]
            labels = [rows[i]["labels"] for i in train]
            if exemplars:  # the recipe adds the taxonomy's exemplars itself
                tagger = make(posts, labels, [[] for _ in train], list(langs[train]))
            else:
                tagger = make(
                    base_texts + posts, base_coarse + labels, base_fine + [[] for _ in train]
                )
            test = np.flatnonzero(fold == k)
            proba = tagger.predict_proba(texts=[texts[i] for i in test])
            columns = [tagger.labels.index(n) for n in narratives]
            pred[test] = tagger.decide(proba)[:, columns]
        return pred

    def trained(encoder: str, exemplars: bool):
        def make(t, c, f, lang=None):
            settings = TrainingArguments(
                min_examples=1,
                encoder=encoder,
                pairs=args.pairs,
                seed=args.seed,
                exemplars=exemplars,
            )
            return Trainer(settings, embedder).train(t, c, f, taxonomy=taxonomy, languages=lang)

        return make

    zero_shot = NarrativeTagger.from_pretrained("default", embedder)
    columns = [zero_shot.labels.index(n) for n in narratives]
    tags = zero_shot.decide(zero_shot.predict_proba(texts))[:, columns]
    methods = [("zero-shot (the default tagger)", tags)]
    runs = [
        ("trained, exemplars + posts (default)", "frozen", True),
        ("trained, validation-split head", "frozen", False),
    ]
    if not args.frozen_only:
        runs.append((f"trained, encoder fine-tuned ({args.pairs} pairs)", "contrastive", False))
    for name, encoder, exemplars in runs:
        start = time.perf_counter()
        methods.append((name, pooled(trained(encoder, exemplars), exemplars)))
        print(f"{name}: {time.perf_counter() - start:.0f} s for {args.folds} folds", flush=True)

    head = f"{'method':<44} {'micro F1':>8} {'macro F1':>8} {'false tags':>10} {'gap':>7}"
    print(f"\n{len(rows)} posts, {args.folds} folds (seed {args.seed}), pooled predictions")
    print(head + "\n" + "-" * len(head))
    parallel = np.array(["item" in r for r in rows])
    gaps = []
    for name, pred in methods:
        m = summarize(truth, pred, narratives, langs, kinds, parallel)
        print(
            f"{name:<44} {m['micro_f1']:8.3f} {m['macro_f1']:8.3f} "
            f"{m['false_tag_rate']:10.3f} {m['cross_lingual_gap']:+7.3f}"
        )
        gaps.append(f"{m['cross_lingual_gap_parallel']:+.3f}")
    print("gap on the items written in every language alone: " + ", ".join(gaps))


if __name__ == "__main__":
    main()
