"""SemEval-2025 Task 10, subtask 2: train a tagger on the training file, report on EN dev.

    python training/semeval2025.py --out DIR [--data ../shared/data/external/semeval2025-task10]

Trains :class:`narratives.tagging.trainer.Trainer` (head only, on frozen e5-small embeddings of
each article: the article cut into chunks of about 1,000 characters at word boundaries,
at most 8 chunks, their embeddings averaged; e5 reads at most 512 tokens and the
articles average 2,500 characters, so truncation would drop most of the text, and the
mean of the chunks keeps each part's say) on the 859 training articles in five
languages, then writes ``DIR/dev_predictions.jsonl`` (one object per EN dev document:
``doc_id``, ``narratives``, ``subnarratives``) and the tagger (``DIR/tagger``), and
prints the task's metric (samples-averaged F1 over narratives, coarse, and over
sub-narratives, fine) next to the published reference points and a floor: one-vs-rest
logistic regression on the same embeddings (L2 1e-6) at a 0.5 threshold, no tuning (and
no gate). With
``--cv`` it also reports 5-fold cross-validation over the training articles, by language.
With ``--contrastive`` it also trains a tagger whose encoder is fine-tuned first on
``--pairs`` contrastive pairs of the training articles' first chunks (see
:mod:`narratives.tagging.trainer`) and reports it on EN dev, and with ``--cv`` too in the
cross-validation (five more fine-tunings: most of an hour on 2 cores).

Predictions follow the task's conventions: a narrative with no predicted sub-narrative
gets ``<narrative>: Other``; a document with no narrative gets ``Other`` / ``Other``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared/data/external/semeval2025-task10"
REFERENCES = [
    ("SetFit, multilingual (published, EN dev)", 0.392, 0.321),
    ("LLM prompting, GPT-4o-mini / LLaMA-3.1-8B (published, test set)", 0.55, 0.43),
]


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def embeddings(docs: list[dict], embedder, args) -> np.ndarray:
    """Chunk-mean embeddings, cached on disk by text and settings (re-runs skip the
    encoder)."""
    from narratives.embedding.model_cache import cache_dir
    from narratives.tagging.trainer import embed_long

    digest = hashlib.sha256(
        json.dumps(
            [embedder.model_id, embedder.model_version, args.chunk_chars, args.max_chunks]
        ).encode()
    )
    for d in docs:
        digest.update(d["text"].encode("utf-8") + b"\0")
    path = cache_dir() / "eval" / f"semeval-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    vectors = embed_long([d["text"] for d in docs], embedder, args.chunk_chars, args.max_chunks)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors, allow_pickle=False)
    return vectors


def predict(
    tagger, x: np.ndarray, plain: bool = False, texts: list[str] | None = None
) -> list[tuple[list[str], list[str]]]:
    """Label lists in the task's format; ``plain``: every label at 0.5, no hierarchy. A
    tagger with its own fine-tuned encoder reads ``texts``."""
    proba = tagger.predict_proba(texts, embeddings=x)
    tags = proba >= 0.5 if plain else tagger.decide(proba)
    names = [tagger.taxonomy.node(label).name for label in tagger.labels]
    out = []
    for row in tags:
        coarse = [names[k] for k in np.flatnonzero(row) if tagger.parents[k] is None]
        fine = [names[k] for k in np.flatnonzero(row) if tagger.parents[k] is not None]
        if plain:  # a sub-narrative brings its narrative, as the task's labels do
            coarse = sorted({*coarse, *(f.rsplit(": ", 1)[0] for f in fine)})
        for c in coarse:
            if not any(f.startswith(c + ": ") for f in fine):
                fine.append(f"{c}: Other")
        out.append((coarse or ["Other"], fine or ["Other"]))
    return out


def scores(docs: list[dict], preds) -> tuple[float, float]:
    from narratives.tagging.heads import samples_f1

    coarse = samples_f1([d["narratives"] for d in docs], [p[0] for p in preds])
    fine = samples_f1([d["subnarratives"] for d in docs], [p[1] for p in preds])
    return coarse, fine


def train(docs, x, embedder, args, **overrides):
    from narratives.tagging.trainer import Trainer, TrainingArguments

    settings = TrainingArguments(
        seed=args.seed, chunk_chars=args.chunk_chars, max_chunks=args.max_chunks, **overrides
    )
    return Trainer(settings, embedder).train(
        [d["text"] for d in docs],
        [d["narratives"] for d in docs],
        [d["subnarratives"] for d in docs],
        name="semeval2025-task10",
        embeddings=None if overrides.get("encoder") == "contrastive" else x,
    )


def main() -> None:
    from narratives import Embedder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-chars", type=int, default=1000)
    parser.add_argument("--max-chunks", type=int, default=8)
    parser.add_argument("--cv", action="store_true", help="also 5-fold CV on train, by language")
    parser.add_argument(
        "--backend", default="auto", choices=["auto", "onnx", "torch"], help="the encoder"
    )
    parser.add_argument("--contrastive", action="store_true", help="also fine-tune the encoder")
    parser.add_argument("--pairs", type=int, default=512, help="pairs for --contrastive")
    args = parser.parse_args()

    started = time.perf_counter()
    train_docs = load(args.data / "train_subtask2.jsonl")
    dev_docs = load(args.data / "dev_EN_subtask2.jsonl")
    embedder = Embedder("default", backend=args.backend)
    x_train = embeddings(train_docs, embedder, args)
    x_dev = embeddings(dev_docs, embedder, args)
    print(f"embedded {len(train_docs)} train and {len(dev_docs)} dev articles "
          f"in {time.perf_counter() - started:.0f}s")  # fmt: skip

    tagger = train(train_docs, x_train, embedder, args)
    floor = train(train_docs, x_train, embedder, args, l2_grid=(1e-6,), gate=False)
    ours = predict(tagger, x_dev)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "dev_predictions.jsonl").open("w", encoding="utf-8") as f:
        for d, (coarse, fine) in zip(dev_docs, ours):
            row = {"doc_id": d["doc_id"], "narratives": coarse, "subnarratives": fine}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tagger.save_pretrained(args.out / "tagger")

    plain = predict(floor, x_dev, plain=True)
    rows = [
        ("narratives train (head, tuned thresholds)", *scores(dev_docs, ours)),
        ("floor: logistic regression (L2 1e-6) at 0.5", *scores(dev_docs, plain)),
        *REFERENCES,
    ]
    if args.contrastive:
        start = time.perf_counter()
        tuned = train(train_docs, x_train, embedder, args, encoder="contrastive", pairs=args.pairs)
        got = predict(tuned, x_dev, texts=[d["text"] for d in dev_docs])
        name = f"narratives train --contrastive ({args.pairs} pairs)"
        rows.insert(1, (name, *scores(dev_docs, got)))
        tuned.save_pretrained(args.out / "tagger-contrastive")
        print(f"contrastive: trained and predicted in {time.perf_counter() - start:.0f}s")
    print(f"\nSemEval-2025 Task 10 subtask 2, EN dev ({len(dev_docs)} documents), samples F1")
    print(f"{'system':<66} {'coarse':>7} {'fine':>7}")
    for name, coarse, fine in rows:
        print(f"{name:<66} {coarse:7.3f} {fine:7.3f}")
    print(f"(l2 {tagger.metrics['l2']}, {len(tagger.labels)} labels kept, "
          f"dropped: {len(tagger.metrics['dropped_labels'])})")  # fmt: skip

    if args.cv:
        langs = np.array([d["language"] for d in train_docs])
        folds = np.random.default_rng(args.seed).permutation(len(train_docs)) % 5
        systems = [("ours", "narratives train"), ("floor", "floor (LR at 0.5)")]
        if args.contrastive:
            systems.insert(1, ("contrastive", f"--contrastive ({args.pairs} pairs)"))
        got: dict[str, list] = {key: [None] * len(train_docs) for key, _ in systems}
        for f in range(5):
            tr = [i for i in range(len(train_docs)) if folds[i] != f]
            te = [i for i in range(len(train_docs)) if folds[i] == f]
            sub = [train_docs[i] for i in tr]
            m = train(sub, x_train[tr], embedder, args)
            m0 = train(sub, x_train[tr], embedder, args, l2_grid=(1e-6,), gate=False)
            for i, p in zip(te, predict(m, x_train[te])):
                got["ours"][i] = p
            for i, p in zip(te, predict(m0, x_train[te], True)):
                got["floor"][i] = p
            if args.contrastive:  # the slow part: a fine-tuning per fold
                start = time.perf_counter()
                mc = train(
                    sub, x_train[tr], embedder, args, encoder="contrastive", pairs=args.pairs
                )
                texts = [train_docs[i]["text"] for i in te]
                for i, p in zip(te, predict(mc, x_train[te], texts=texts)):
                    got["contrastive"][i] = p
                del mc  # its temporary encoder folder goes with it
                print(
                    f"fold {f + 1}/5 fine-tuned in {time.perf_counter() - start:.0f}s", flush=True
                )
        print("\n5-fold cross-validation over the training articles, samples F1 coarse / fine")
        print(f"{'system':<44}" + "".join(f"{lang:>12}" for lang in [*sorted(set(langs)), "all"]))
        for key, name in systems:
            cells = []
            for lang in [*sorted(set(langs)), "all"]:
                idx = [i for i in range(len(train_docs)) if lang == "all" or langs[i] == lang]
                c, fi = scores([train_docs[i] for i in idx], [got[key][i] for i in idx])
                cells.append(f"{c:.2f}/{fi:.2f}")
            print(f"{name:<44}" + "".join(f"{c:>12}" for c in cells))
    print(f"\ntotal {time.perf_counter() - started:.0f}s; outputs in {args.out}/")


if __name__ == "__main__":
    main()
