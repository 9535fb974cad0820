"""Training taggers on labelled posts: ``narratives train``.

Labels are read from JSONL, CSV, Parquet or a saved Hugging Face dataset: a text column
and one or two label columns, each holding a list of labels (or a ``;``-separated
string). With two columns, the second holds sub-narratives, each written as
``<narrative>: <sub-narrative>`` (SemEval-2025 Task 10's convention); a sub-narrative is
tied to the narrative its label starts with.

With a taxonomy that has exemplars (``taxonomy=``, ``--taxonomy``), the labelled texts
join the taxonomy's exemplars in the zero-shot tagger's recipe
(:meth:`~narratives.tagging.tagger.NarrativeTagger.from_exemplars`): measured better than both
the zero-shot tagger and the recipe below on the project's evaluation set (README).

Otherwise this trains the head only, on frozen embeddings (seconds to minutes on a
laptop CPU): long texts are cut into chunks and their embeddings averaged. A logistic head
per label is fitted; its L2 penalty and the decision thresholds (one per level by default,
or one per label) are chosen on a validation split carved from the training data, for the
best per-text F1 of the predicted label sets, and the head is then refitted on all the
data. Sub-narratives are only predicted with their narrative. Labels with fewer than
``min_examples`` examples are dropped and reported. The result is a
:class:`~narratives.tagging.tagger.NarrativeTagger` folder whose taxonomy is the set of labels.

With ``encoder="contrastive"`` the encoder body is fine-tuned first, SetFit style, with
sentence-transformers' own trainer (its ``SentenceTransformerTrainer`` and
``CosineSimilarityLoss``; the ``setfit`` library would add a dependency whose multi-label
pairs and thresholds we need to control anyway): ``pairs`` pairs of training texts (the
validation split kept out) are drawn, half sharing a label (the label drawn uniformly
first, so rare labels get their share, ``none`` counting as a label) and half sharing
none, and the cosine of each pair is trained towards the Jaccard overlap of their label
sets (1 for the same labels, 0 for none in common). Memory and time grow with ``pairs``,
not with the square of the texts. The fine-tuned encoder is saved inside the tagger
folder (safetensors) and embeds the posts the tagger reads.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from narratives.embedding.chunking import chunks, embed_long
from narratives.errors import InputError
from narratives.tagging.heads import (
    consistent,
    fit_head,
    label_thresholds,
    level_thresholds,
    samples_f1,
)
from narratives.tagging.tagger import NarrativeTagger, calibration_languages
from narratives.tagging.taxonomy import SCHEMA, Taxonomy, load_taxonomy, taxonomy_from_document

logger = logging.getLogger(__name__)

NONE_LABELS = {"", "none", "other"}


@dataclass
class TrainingArguments:
    """Settings of :class:`Trainer` (checked when made)."""

    #: L2 penalties tried; the one whose head, with its tuned thresholds, tags the
    #: validation split best is kept.
    l2_grid: tuple[float, ...] = (1e-7, 1e-6, 1e-5)
    #: Weigh each label's positives up to its negatives (helps rare labels recall, costs
    #: precision: measured worse on SemEval-2025 cross-validation, so off by default).
    balanced: bool = False
    #: ``"levels"``: one threshold for narratives and one for sub-narratives, chosen for
    #: the best per-text F1 of the label sets (the SemEval metric); ``"labels"``: one
    #: threshold per label for its own F1 (labels with too few validation positives fall
    #: back on the best single threshold).
    thresholds: str = "levels"
    #: Fit a gate (any label against none) and keep it where it tags the validation split
    #: better (see ``Trainer._gate``); False: never.
    gate: bool = True
    #: Share of the training data held out to choose the penalty and the thresholds (the
    #: head is then refitted on all of it).
    val_fraction: float = 0.2
    #: Labels with fewer examples are dropped (and reported).
    min_examples: int = 3
    #: Validation positives a label needs for a threshold of its own (``"labels"``).
    min_val_positives: int = 3
    #: Characters per chunk of a long text, and the most chunks kept per text.
    chunk_chars: int = 1000
    max_chunks: int = 8
    #: With a taxonomy that has exemplars in some language for every sub-narrative and a
    #: frozen encoder: fit the zero-shot tagger's recipe with the labelled texts joining
    #: the taxonomy's exemplars (see ``NarrativeTagger.from_exemplars``) instead of the
    #: validation-split recipe (which needs many labels per class: measured worse than
    #: zero-shot on the project's evaluation set, see the README). False: never.
    exemplars: bool = True
    #: ``"frozen"``: the head on the encoder's embeddings as they are; ``"contrastive"``:
    #: fine-tune the encoder on pairs of training texts first (see the module).
    encoder: str = "frozen"
    #: Pairs drawn for contrastive fine-tuning: half share a label, half share none.
    pairs: int = 1000
    encoder_epochs: int = 1
    encoder_batch_size: int = 16
    encoder_learning_rate: float = 2e-5
    #: Tokens of each text the encoder reads while it is fine-tuned (chunks are cut).
    encoder_max_tokens: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.l2_grid or any(v <= 0 for v in self.l2_grid):
            raise ValueError("l2_grid must hold positive penalties")
        if self.thresholds not in ("levels", "labels"):
            raise ValueError("thresholds must be 'levels' or 'labels'")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError("val_fraction must lie between 0 and 0.5")
        if self.min_examples < 1 or self.min_val_positives < 1:
            raise ValueError("min_examples and min_val_positives must be at least 1")
        if self.chunk_chars < 50 or self.max_chunks < 1:
            raise ValueError("chunk_chars must be at least 50 and max_chunks at least 1")
        if self.encoder not in ("frozen", "contrastive"):
            raise ValueError("encoder must be 'frozen' or 'contrastive'")
        if self.pairs < 2 or self.encoder_epochs < 1 or self.encoder_batch_size < 1:
            raise ValueError("pairs must be at least 2, encoder epochs and batch size at least 1")
        if not 0.0 < self.encoder_learning_rate < 1.0 or self.encoder_max_tokens < 16:
            raise ValueError(
                "encoder_learning_rate must lie between 0 and 1, encoder_max_tokens >= 16"
            )


# -- reading labels ----------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return [p.strip() for p in text.split(";") if p.strip()]
        else:
            return [p.strip() for p in text.split(";") if p.strip()]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value).strip()]


def read_labels(
    source: str | Path | pd.DataFrame,
    text_col: str = "text",
    label_cols: tuple[str, ...] = ("narratives", "subnarratives"),
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Texts, narrative label lists and sub-narrative label lists of a labelled file."""
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"label file not found: {str(path)!r}")
        name = path.name.lower()
        try:
            if path.is_dir():
                from datasets import load_from_disk

                frame = load_from_disk(str(path)).to_pandas()  # type: ignore[union-attr]
            elif name.endswith((".jsonl", ".jsonl.gz", ".json")):
                frame = pd.read_json(path, lines=not name.endswith(".json"))
            elif name.endswith(".parquet"):
                frame = pd.read_parquet(path)
            elif name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
                frame = pd.read_csv(path, sep="\t" if ".tsv" in name else ",")
            else:
                raise InputError(
                    f"{str(path)!r}: use JSONL, CSV/TSV, Parquet or a saved dataset folder"
                )
        except (ValueError, OSError) as exc:
            raise InputError(f"cannot read labels from {str(path)!r}: {exc}") from None
    missing = [c for c in (text_col, label_cols[0]) if c not in frame.columns]
    if missing:
        raise InputError(
            f"label data lacks column(s) {missing}; it has {list(frame.columns)}. "
            "Name them with --text-col / --label-col"
        )
    texts = frame[text_col].tolist()
    empty = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if empty:
        raise InputError(
            f"{len(empty)} labelled rows have no text (first at row {empty[0]}); "
            "drop them or fill the text column"
        )
    coarse = [_as_list(v) for v in frame[label_cols[0]]]
    fine: list[list[str]] = [[] for _ in texts]
    if len(label_cols) > 1 and label_cols[1] in frame.columns:
        fine = [_as_list(v) for v in frame[label_cols[1]]]
    return texts, coarse, fine


# -- the label taxonomy ------------------------------------------------------------------


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "label"
    return slug if slug[0].isalpha() else f"n_{slug}"


def label_taxonomy(
    coarse: list[list[str]], fine: list[list[str]], name: str = "trained"
) -> tuple[dict[str, Any], dict[str, str]]:
    """A taxonomy document of kind ``labels`` for the labels seen, and the label -> id map.
    A sub-narrative is placed under the longest narrative label it starts with."""
    parents = sorted({c for row in coarse for c in row if c.strip().lower() not in NONE_LABELS})
    ids: dict[str, str] = {}
    used: set[str] = set()

    def unique(base: str) -> str:
        candidate, k = base, 2
        while candidate in used:
            candidate, k = f"{base}_{k}", k + 1
        used.add(candidate)
        return candidate

    narratives: list[dict[str, Any]] = []
    for label in parents:
        ids[label] = unique(_slug(label))
        narratives.append({"id": ids[label], "name": label, "definition": "", "children": []})
    children: dict[str, list[dict[str, str]]] = {n["id"]: [] for n in narratives}
    for label in sorted({f for row in fine for f in row}):
        parent = max((p for p in parents if label.startswith(p + ":")), key=len, default=None)
        if parent is None:
            continue  # "Other" or a sub-narrative of no known narrative
        child = unique(f"{ids[parent]}.{_slug(label[len(parent) + 1 :])}")
        ids[label] = child
        children[ids[parent]].append({"id": child, "name": label, "definition": ""})
    for n in narratives:
        n["children"] = children[n["id"]]
    doc = {
        "schema": SCHEMA,
        "kind": "labels",
        "id": name,
        "version": "1",
        "title": f"Labels of {name}",
        "sources": [],
        "narratives": narratives,
    }
    return doc, ids


def taxonomy_labels(
    taxonomy: Taxonomy, coarse: list[list[str]], fine: list[list[str]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A ``labels`` document over a given taxonomy's nodes (same ids and names), and the
    label -> id map; a label that is neither an id nor a name of the taxonomy is an error."""
    lookup: dict[str, str] = {}
    for node in taxonomy.nodes:
        lookup[node.name] = node.id
    for node in taxonomy.nodes:
        lookup[node.id] = node.id
    used = {label for rows in (coarse, fine) for row in rows for label in row}
    unknown = sorted(
        label for label in used if label not in lookup and label.strip().lower() not in NONE_LABELS
    )
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10])
        raise InputError(
            f"{len(unknown)} labels are not in taxonomy {taxonomy.id} {taxonomy.version}: "
            f"{shown}{' ...' if len(unknown) > 10 else ''}; label with its ids or names "
            "(narratives taxonomy show --taxonomy FILE lists them), or train without "
            "--taxonomy to take the labels as they come"
        )
    narratives = [
        {
            "id": n.id,
            "name": n.name,
            "definition": n.definition,
            "children": [
                {"id": c.id, "name": c.name, "definition": c.definition}
                for c in taxonomy.children(n.id)
            ],
        }
        for n in taxonomy.narratives
    ]
    doc = {
        "schema": SCHEMA,
        "kind": "labels",
        "id": taxonomy.id,
        "version": taxonomy.version,
        "title": taxonomy.title,
        "sources": list(taxonomy.sources),
        "narratives": narratives,
    }
    return doc, {label: lookup[label] for label in used if label in lookup}


# -- training ----------------------------------------------------------------------------


def contrastive_pairs(
    y: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> list[tuple[int, int, float]]:
    """(i, j, target) pairs of texts with label matrix ``y`` (texts x labels): even draws
    share a label (one drawn uniformly among those with two texts or more; ``none``, no
    label, counts as one), odd draws share none; target = Jaccard overlap of the label
    sets."""
    sets = np.c_[y.astype(bool), ~y.any(axis=1)]
    members = [np.flatnonzero(sets[:, c]) for c in range(sets.shape[1])]
    shared = [c for c in range(sets.shape[1]) if len(members[c]) >= 2]
    out: list[tuple[int, int, float]] = []
    for draw in range(n_pairs):
        if draw % 2 == 0 and shared:
            c = shared[int(rng.integers(len(shared)))]
            i, j = (int(v) for v in rng.choice(members[c], 2, replace=False))
        else:
            i = int(rng.integers(len(sets)))
            apart = np.flatnonzero(~(sets & sets[i]).any(axis=1))
            if not len(apart):
                continue
            j = int(apart[int(rng.integers(len(apart)))])
        overlap = float((sets[i] & sets[j]).sum() / (sets[i] | sets[j]).sum())
        out.append((i, j, overlap))
    return out


def fine_tune_encoder(
    embedder, texts: list[str], y: np.ndarray, args: TrainingArguments, folder: Path
) -> Path:
    """Fine-tune ``embedder``'s model on pairs of ``texts`` (first chunk of each) and save
    it as a sentence-transformers folder (safetensors) in ``folder``."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    except ImportError:  # 3.x to 5.x
        from sentence_transformers.losses import CosineSimilarityLoss  # type: ignore[no-redef]

    pairs = contrastive_pairs(y, args.pairs, np.random.default_rng(args.seed))
    if not pairs:
        raise InputError("no pairs to fine-tune on: the texts need at least two labels")
    first = [(chunks(t, args.chunk_chars, 1) or [""])[0] for t in texts]
    prompt = embedder.prompt  # e5 reads "query: " before every text, as when embedding
    data = Dataset.from_dict(
        {
            "sentence1": [prompt + first[i] for i, _, _ in pairs],
            "sentence2": [prompt + first[j] for _, j, _ in pairs],
            "score": [target for _, _, target in pairs],
        }
    )
    base = embedder.model  # loads the torch model (the onnx backend has none to train)
    model = SentenceTransformer(
        embedder.path,
        device="cpu" if base.device.type == "cpu" else str(base.device),
        trust_remote_code=False,
        model_kwargs={"use_safetensors": True},
    )
    model.max_seq_length = min(args.encoder_max_tokens, model.max_seq_length or 512)
    settings = SentenceTransformerTrainingArguments(
        output_dir=str(folder / "trainer"),
        num_train_epochs=args.encoder_epochs,
        per_device_train_batch_size=args.encoder_batch_size,
        learning_rate=args.encoder_learning_rate,
        warmup_steps=0.1,
        seed=args.seed,
        data_seed=args.seed,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=settings, train_dataset=data, loss=CosineSimilarityLoss(model)
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints the run's summary on stdout
    result = trainer.train()
    model.max_seq_length = base.max_seq_length  # reads as much as the base when embedding
    out = folder / "encoder"
    model.save(str(out), safe_serialization=True)
    # sentence-transformers' own card quotes training texts: labelled posts can be
    # sensitive, and a tagger folder gets shared; the tagger's card describes the run
    (out / "README.md").write_text(
        f"# Encoder of a narratives tagger\n\n{embedder.model_id} fine-tuned by "
        f"`narratives train --contrastive` on {len(pairs)} pairs; see the tagger's "
        "README.md (one folder up).\n",
        "utf-8",
    )
    logger.info("encoder fine-tuned on %d pairs, loss %.4f", len(pairs), result.training_loss)
    return out


class Trainer:
    """Fit a tagger head on labelled texts (see the module docstring)."""

    def __init__(self, args: TrainingArguments | None = None, embedder=None) -> None:
        self.args = args or TrainingArguments()
        self.embedder = embedder
        self.report: dict[str, Any] = {}

    def encoder(self):
        """The embedder of the training texts: the one given, or the default model's."""
        if self.embedder is None:
            from narratives.embedding.embedder import Embedder

            self.embedder = Embedder("default")
        return self.embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        return embed_long(texts, self.encoder(), self.args.chunk_chars, self.args.max_chunks)

    def train(
        self,
        texts: list[str],
        coarse: list[list[str]],
        fine: list[list[str]] | None = None,
        name: str = "trained",
        embeddings: np.ndarray | None = None,
        taxonomy: Taxonomy | str | Path | None = None,
        languages: list[str] | None = None,
    ) -> NarrativeTagger:
        """Train on ``texts`` with their narrative (``coarse``) and sub-narrative
        (``fine``) labels. With a ``taxonomy``, labels are its ids or names, and any other
        label is an error; without, the labels themselves make the taxonomy. ``languages``:
        the texts' languages, for the exemplars recipe (detected when not given)."""
        args = self.args
        given = None
        if taxonomy is not None:
            given = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
        fine = fine or [[] for _ in texts]
        if not (len(texts) == len(coarse) == len(fine)):
            raise InputError("texts and label lists must have the same length")
        if given is None:
            doc, ids = label_taxonomy(coarse, fine, name)
        else:
            doc, ids = taxonomy_labels(given, coarse, fine)
        if (
            given is not None
            and args.exemplars
            and args.encoder == "frozen"
            and calibration_languages(given)
        ):
            return self._with_exemplars(given, ids, texts, coarse, fine, embeddings, languages)
        taxonomy = taxonomy_from_document(doc, "of the labels")
        labels = taxonomy.ids
        index = {label: k for k, label in enumerate(labels)}
        y = np.zeros((len(texts), len(labels)), dtype=bool)
        unknown: set[str] = set()
        for i, row in enumerate(zip(coarse, fine)):
            for label in [*row[0], *row[1]]:
                if label in ids:
                    node = taxonomy.node(ids[label])
                    y[i, index[node.id]] = True
                    if node.parent is not None:  # a sub-narrative carries its narrative
                        y[i, index[node.parent]] = True
                elif label.strip().lower() not in NONE_LABELS and not label.endswith(": Other"):
                    unknown.add(label)
        counts = y.sum(axis=0)
        keep = counts >= args.min_examples
        dropped = [taxonomy.node(labels[k]).name for k in np.flatnonzero(~keep)]
        if not keep.any():
            raise InputError(
                f"no label has {args.min_examples} examples; label more posts or lower "
                "--min-examples"
            )
        if dropped:
            doc["narratives"] = [
                {**n, "children": [c for c in n["children"] if keep[index[c["id"]]]]}
                for n in doc["narratives"]
                if keep[index[n["id"]]]
            ]
            taxonomy = taxonomy_from_document(doc, "of the labels")
            y = y[:, keep]
            labels = taxonomy.ids
        langs = np.array(["all"] * len(texts))
        rng = np.random.default_rng(args.seed)
        parents = [taxonomy.node(lab).parent for lab in labels]
        level = np.array([p is None for p in parents])
        parent_of = np.array([labels.index(p) if p else -1 for p in parents])
        # penalty and thresholds on a validation split, then the head on everything
        val = rng.random(len(texts)) < args.val_fraction
        if val.sum() < 2 or (~val).sum() < 2:
            raise InputError(f"too few labelled texts ({len(texts)}) for a validation split")
        encoder_report: dict[str, Any] = {"encoder": args.encoder}
        reader = self.encoder()  # the encoder whose embeddings the head reads
        if args.encoder == "contrastive":
            if embeddings is not None:
                raise InputError("contrastive fine-tuning embeds the texts itself: pass texts")
            reader = self._fine_tuned([t for t, v in zip(texts, val) if not v], y[~val])
            encoder_report.update(
                base_model=self.embedder.model_id,
                base_version=self.embedder.model_version,
                pairs=args.pairs,
                epochs=args.encoder_epochs,
                learning_rate=args.encoder_learning_rate,
                max_tokens=args.encoder_max_tokens,
            )
        if embeddings is None:
            x = embed_long(texts, reader, args.chunk_chars, args.max_chunks)
        else:
            x = np.asarray(embeddings, np.float32)
        tried: dict[float, tuple[float, np.ndarray, Any]] = {}
        for l2 in args.l2_grid:
            head = fit_head(
                x[~val], y[~val].astype(np.float32), langs[~val], l2=l2, balanced=args.balanced
            )
            proba = head.proba(x[val])
            if args.thresholds == "levels":
                t = level_thresholds(proba, y[val], level, parent_of)
            else:
                t = label_thresholds(proba, y[val], args.min_val_positives)
            f1 = samples_f1(y[val], consistent(proba >= t, parent_of), both_empty=1.0)
            tried[l2] = (f1, t, head)
        l2 = max(args.l2_grid, key=lambda v: (tried[v][0], v))
        thresholds = tried[l2][1]
        head = fit_head(x, y.astype(np.float32), langs, l2=l2, balanced=args.balanced)
        split_head = tried[l2][2]
        gate, gate_report = self._gate(x, y, langs, val, l2, split_head, thresholds, parent_of)
        self.report = {
            "n_texts": len(texts),
            "l2": l2,
            "val_samples_f1_by_l2": {str(k): round(v[0], 4) for k, v in tried.items()},
            "thresholds": args.thresholds,
            "balanced": args.balanced,
            "label_counts": {
                taxonomy.node(lab).name: int(c) for lab, c in zip(labels, y.sum(axis=0))
            },
            "dropped_labels": dropped,
            "unknown_labels": sorted(unknown),
            "val_size": int(val.sum()),
            "gate": gate_report,
            **encoder_report,
        }
        model = {"model_id": reader.model_id, "model_version": reader.model_version}
        model["dim"] = int(x.shape[1])
        own_encoder = reader is not self.embedder
        tagger = NarrativeTagger(
            taxonomy,
            head,
            thresholds,
            model,
            self.report,
            kind="trained",
            gate=gate,
            embedder=reader,
            chunking={"chunk_chars": args.chunk_chars, "max_chunks": args.max_chunks},
            encoder_dir=Path(reader.path) if own_encoder else None,
        )
        if own_encoder:
            import shutil
            import weakref

            # the encoder (about 470 MB) waits in a temporary folder until saved with the
            # tagger: removed when the tagger goes (or the process ends)
            weakref.finalize(tagger, shutil.rmtree, Path(reader.path).parent, True)
        return tagger

    def _with_exemplars(
        self,
        taxonomy: Taxonomy,
        ids: dict[str, str],
        texts: list[str],
        coarse: list[list[str]],
        fine: list[list[str]],
        embeddings: np.ndarray | None,
        languages: list[str] | None,
    ) -> NarrativeTagger:
        """The zero-shot recipe with the labelled texts joining the taxonomy's exemplars
        (every label of the taxonomy is kept: its exemplars stand for it)."""
        from collections import Counter

        args = self.args
        if languages is None:
            from narratives.embedding.langid import detect_languages

            languages = detect_languages(texts)[0]
        if len(languages) != len(texts):
            raise InputError("texts and languages must have the same length")
        # every other label is a none label: taxonomy_labels stopped the run on strays
        labels = [
            sorted({ids[lab] for lab in [*c, *f] if lab in ids}) for c, f in zip(coarse, fine)
        ]
        x = self.embed(texts) if embeddings is None else np.asarray(embeddings, np.float32)
        counts = Counter(label for row in labels for label in row)
        for post in labels:  # a sub-narrative carries its narrative
            parents = {taxonomy.node(label).parent for label in post}
            for parent in sorted(p for p in parents if p is not None and p not in post):
                counts[parent] += 1
        notes = {
            "recipe": "exemplars",
            "n_texts": len(texts),
            "languages": dict(sorted(Counter(languages).items())),
            "label_counts": {taxonomy.node(k).name: int(counts[k]) for k in taxonomy.ids},
            "dropped_labels": [],
            "unknown_labels": [],
            "encoder": "frozen",
        }
        tagger = NarrativeTagger.from_exemplars(
            taxonomy,
            self.encoder(),
            (texts, list(languages), labels),
            x,
            chunking={"chunk_chars": args.chunk_chars, "max_chunks": args.max_chunks},
            notes=notes,
        )
        self.report = {**notes, **{k: tagger.metrics[k] for k in ("n_exemplars", "calibration")}}
        return tagger

    def _gate(
        self,
        x: np.ndarray,
        y: np.ndarray,
        langs: np.ndarray,
        val: np.ndarray,
        l2: float,
        split_head: Any,
        thresholds: np.ndarray,
        parent_of: np.ndarray,
    ) -> tuple[tuple[Any, float] | None, dict[str, Any]]:
        """A gate head (any label against none, class-balanced as the zero-shot tagger's
        is), when the texts with and without a label are each at least ``min_examples``
        and it tags the validation split better: its threshold is chosen there for the
        per-text F1 of the label sets (``split_head``: the label heads fitted without the
        validation split), 0 (no gate) among the choices; then it is refitted on all the
        texts."""
        if not self.args.gate:
            return None, {"used": False, "why": "not asked for"}
        carries: np.ndarray = np.asarray(y.any(axis=1))
        if min(carries.sum(), (~carries).sum()) < self.args.min_examples:
            return None, {"used": False, "why": "too few texts with and without a label"}
        target = carries[:, None].astype(np.float32)
        fitted = fit_head(x[~val], target[~val], langs[~val], l2=l2)
        proba = fitted.proba(x[val])[:, 0]
        tags = consistent(split_head.proba(x[val]) >= thresholds, parent_of)
        grid = np.round(np.arange(0.0, 0.96, 0.05), 2)
        scores = [samples_f1(y[val], tags & (proba >= g)[:, None], both_empty=1.0) for g in grid]
        best = int(np.argmax(scores))  # the lowest of the best: no gate wins ties
        report = {"val_samples_f1_without": round(scores[0], 4)}
        if best == 0:
            return None, {"used": False, "why": "no better on the validation split", **report}
        threshold = float(grid[best])
        gate = fit_head(x, target, langs, l2=l2)
        report.update(used=True, threshold=threshold, val_samples_f1=round(scores[best], 4))
        return (gate, threshold), report

    def _fine_tuned(self, texts: list[str], y: np.ndarray):
        """The embedder of a copy of this trainer's encoder fine-tuned on pairs of
        ``texts`` (see :func:`fine_tune_encoder`), kept in a temporary folder."""
        import shutil
        import tempfile

        from narratives.embedding.embedder import Embedder

        work = Path(tempfile.mkdtemp(prefix="narratives-encoder-"))
        try:
            folder = fine_tune_encoder(self.embedder, texts, y, self.args, work)
            return Embedder(
                folder,
                backend="torch",
                batch_size=self.embedder.batch_size,
                model_id=f"{self.embedder.model_id} (fine-tuned)",
            )
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


def train_tagger(
    data: Any,
    output: str | Path,
    args: TrainingArguments | None = None,
    *,
    text_col: str = "text",
    label_cols: tuple[str, str] = ("narratives", "subnarratives"),
    taxonomy: Taxonomy | str | Path | None = None,
    backend: str = "auto",
    force: bool = False,
) -> tuple[NarrativeTagger, dict[str, Any]]:
    """``narratives train``: read labelled posts from ``data`` (see :func:`read_labels`),
    train a tagger on the default model (``backend`` for a frozen encoder; a fine-tuned
    one trains with torch) and save it in the folder ``output`` (replaced only with
    ``force``). Returns the tagger and the trainer's report of how it went."""
    from narratives.embedding.embedder import Embedder
    from narratives.errors import OutputError

    args = args or TrainingArguments()
    out = Path(output)
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputError(f"output folder {str(out)!r} is not empty; pass --force to overwrite")
    texts, coarse, fine = read_labels(data, text_col, label_cols)
    contrastive = args.encoder == "contrastive"
    trainer = Trainer(args, Embedder("default", backend="torch" if contrastive else backend))
    tagger = trainer.train(texts, coarse, fine, name=out.name or "trained", taxonomy=taxonomy)
    tagger.save_pretrained(out)
    return tagger, trainer.report


__all__ = [
    "Trainer",
    "TrainingArguments",
    "contrastive_pairs",
    "fine_tune_encoder",
    "label_taxonomy",
    "read_labels",
    "train_tagger",
]
