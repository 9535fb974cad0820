"""`NarrativeTagger`: multi-label narrative tags for posts, from their embeddings.

The default tagger is zero-shot from the taxonomy: no labelled post is needed. Every
exemplar sentence of the taxonomy (written in English, Chinese, Russian and Spanish),
every definition, and the ``none`` exemplars of harmless posts are embedded; a logistic
head per narrative and per sub-narrative separates them in embedding space (e5's cosine
scale is compressed, unrelated pairs score 0.75 to 0.83, so no raw cosine cut-off is
used). Each label's decision threshold is calibrated out of language: the head is fitted
on three of the four languages and scored on the fourth, in turn, and the threshold that
best tags the held-out language's exemplars is kept. A tagger never sees the evaluation
set.

A tagger is a folder (``save_pretrained`` / ``from_pretrained``): ``config.json``
(labels, thresholds, embedding model, metrics), ``head.safetensors`` (weights),
``taxonomy.json`` and a ``README.md`` model card; a tagger trained with a fine-tuned
encoder also holds it (``encoder/``, a sentence-transformers folder in safetensors) and
embeds the posts it reads with it. Sub-narratives are reported only with their
narrative.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from narratives.errors import InputError, ModelError
from narratives.scored import atomic_path
from narratives.tagging.heads import Head, best_threshold, consistent, fit_head
from narratives.tagging.taxonomy import Taxonomy, load_taxonomy

logger = logging.getLogger(__name__)

FORMAT = "narratives-tagger/1"
#: Version of the zero-shot recipe: cached default taggers of another are rebuilt.
ZERO_SHOT_RECIPE = 5
DEFAULT_TAGGER = "default"


def exemplar_rows(taxonomy: Taxonomy) -> list[tuple[str, str, str | None]]:
    """(language, sentence, node id) of every exemplar and definition (``"en"``) of the
    taxonomy's nodes, then of its harmless ``none`` exemplars (node id None): what the
    zero-shot tagger is fitted on."""
    rows: list[tuple[str, str, str | None]] = []
    for node in taxonomy.nodes:
        for lang, sentence in [*node.all_exemplars(), ("en", f"{node.name}. {node.definition}")]:
            rows.append((lang, sentence, node.id))
    rows += [(lang, sentence, None) for lang, sentence in taxonomy.none.all_exemplars()]
    return rows


def calibration_languages(taxonomy: Taxonomy) -> list[str]:
    """Languages in which every sub-narrative of ``taxonomy`` has exemplars: each takes
    its turn as the held-out language when a tagger is calibrated on the exemplars."""
    subs = [node for node in taxonomy.nodes if node.parent]
    langs = sorted({lang for node in taxonomy.nodes for lang, _ in node.all_exemplars()})
    return [lang for lang in langs if subs and all(node.exemplars.get(lang) for node in subs)]


class NarrativeTagger:
    """Tags posts with narratives of a taxonomy (multi-label, two levels)."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        head: Head,
        thresholds: np.ndarray,
        model: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        kind: str = "zero-shot",
        gate: tuple[Head, float] | None = None,
        *,
        embedder: Any = None,
        chunking: dict[str, int] | None = None,
        encoder_dir: str | Path | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.labels = taxonomy.ids
        self.parents = [taxonomy.node(i).parent for i in self.labels]
        self.head = head
        self.thresholds = np.asarray(thresholds, dtype=np.float32)
        self.model = model  # {"model_id", "model_version", "dim"}
        self.metrics = metrics or {}
        self.kind = kind
        #: the gate: a head telling posts that carry a narrative from those that carry
        #: none, and its threshold (see predict_proba); the zero-shot tagger has one, a
        #: trained one when it helps on its validation split
        self.gate = gate
        #: what embeds texts given without embeddings (the encoder of ``encoder_dir``
        #: when the tagger has one)
        self.embedder = embedder
        #: for taggers trained on long texts: how texts are cut and pooled
        #: (see :mod:`narratives.embedding.chunking`)
        self.chunking = chunking
        #: a fine-tuned encoder of its own (a sentence-transformers folder), or None: the
        #: tagger then reads texts, not the scoring run's embeddings
        self.encoder_dir = None if encoder_dir is None else Path(encoder_dir)

    def with_embedder(self, embedder: Any) -> NarrativeTagger:
        """This tagger reading texts with ``embedder`` (a new object; the heads are
        shared). A tagger with a fine-tuned encoder of its own keeps that encoder."""
        if self.own_encoder or embedder is self.embedder:
            return self
        return NarrativeTagger(
            self.taxonomy,
            self.head,
            self.thresholds,
            self.model,
            self.metrics,
            self.kind,
            self.gate,
            embedder=embedder,
            chunking=self.chunking,
        )

    @property
    def own_encoder(self) -> bool:
        return self.encoder_dir is not None

    # -- building ---------------------------------------------------------------------

    @classmethod
    def zero_shot(cls, taxonomy: Taxonomy | str | Path | None, embedder) -> NarrativeTagger:
        """Build the zero-shot tagger of a taxonomy with an embedder (no labelled posts)."""
        return cls.from_exemplars(taxonomy, embedder)

    @classmethod
    def from_exemplars(
        cls,
        taxonomy: Taxonomy | str | Path | None,
        embedder,
        posts: tuple[list[str], list[str], list[list[str]]] | None = None,
        embeddings: np.ndarray | None = None,
        *,
        chunking: dict[str, int] | None = None,
        notes: dict[str, Any] | None = None,
    ) -> NarrativeTagger:
        """The zero-shot recipe: class-balanced heads on the taxonomy's exemplars and
        definitions (and its harmless ``none`` exemplars), language directions taken out,
        thresholds and the gate calibrated leave-one-language-out. ``posts``: labelled
        posts that join the exemplars, as (texts, languages, label ids of each; empty for
        none), with their ``embeddings`` if made already; a post's sub-narrative carries
        its narrative. This is how ``narratives train --taxonomy`` fits a taxonomy that
        has exemplars (see :mod:`narratives.tagging.trainer`). ``chunking`` is kept with the
        tagger (see :mod:`narratives.embedding.chunking`); ``notes`` join its metrics (the
        model card's record of how it was trained)."""
        if not isinstance(taxonomy, Taxonomy):
            taxonomy = load_taxonomy(taxonomy)
        texts, langs, rows = [], [], []
        labels = taxonomy.ids
        index = {label: k for k, label in enumerate(labels)}

        def targets(node_id: str) -> list[int]:
            parent = taxonomy.node(node_id).parent
            return [index[node_id]] + ([index[parent]] if parent else [])

        for lang, sentence, node_id in exemplar_rows(taxonomy):
            texts.append(sentence)
            langs.append(lang)
            rows.append([] if node_id is None else targets(node_id))
        n_exemplars = len(texts)
        x = embedder.encode(texts)
        if posts is not None:
            post_texts, post_langs, post_labels = posts
            if not (len(post_texts) == len(post_langs) == len(post_labels)):
                raise ValueError("posts: texts, languages and labels must have one entry each")
            texts += list(post_texts)
            langs += list(post_langs)
            rows += [sorted({k for label in row for k in targets(label)}) for row in post_labels]
            if embeddings is None:
                embeddings = embedder.encode(list(post_texts))
            x = np.vstack([x, np.asarray(embeddings, dtype=x.dtype)])
        y = np.zeros((len(texts), len(labels)), dtype=np.float32)
        for i, columns in enumerate(rows):
            y[i, columns] = 1.0
        langs_arr = np.array(langs)
        # thresholds: fitted on the exemplars of all languages but one, scored on that
        # one's, in turn (every language with exemplars of every sub-narrative takes its
        # turn); the gate (any narrative against none) is calibrated the same way. The
        # labelled posts join the final fit only: a calibration that held them out too
        # chose thresholds that tagged unseen posts worse (measured, see the README)
        ex_x, ex_y, ex_langs = x[:n_exemplars], y[:n_exemplars], langs_arr[:n_exemplars]
        held_out = np.zeros_like(ex_y)
        folds = calibration_languages(taxonomy)
        if not folds:
            raise InputError(
                f"taxonomy {taxonomy.id} has no language with exemplars of every "
                "sub-narrative: add exemplars, or train on labelled posts alone"
            )
        for lang in folds:
            test = ex_langs == lang
            head = fit_head(ex_x[~test], ex_y[~test], ex_langs[~test])
            held_out[test] = head.proba(ex_x[test])
        thresholds = np.zeros(len(labels), dtype=np.float32)
        per_label = {}
        for k, label in enumerate(labels):
            thresholds[k], f1 = best_threshold(held_out[:, k], ex_y[:, k] > 0)
            per_label[label] = {"threshold": float(thresholds[k]), "held_out_f1": round(f1, 4)}
        # the gate tells a post that pushes a narrative from ordinary news on the same
        # subjects (the `none` exemplars); the heads tell one narrative's subject from
        # another's
        carries = (y.sum(axis=1) > 0).astype(np.float32)[:, None]
        ex_carries = carries[:n_exemplars]
        gate_held_out = np.zeros(n_exemplars, dtype=np.float32)
        for lang in folds:
            test = ex_langs == lang
            gate_held_out[test] = fit_head(ex_x[~test], ex_carries[~test], ex_langs[~test]).proba(
                ex_x[test]
            )[:, 0]
        in_folds = np.isin(ex_langs, folds)
        gate_threshold, gate_f1 = best_threshold(
            gate_held_out[in_folds], ex_carries[in_folds, 0] > 0
        )
        head = fit_head(x, y, langs_arr)
        gate = fit_head(x, carries, langs_arr)
        metrics = {
            "calibration": "leave-one-language-out over the taxonomy's exemplars "
            f"({', '.join(folds)})"
            + ("; the labelled posts join the final fit" if posts is not None else ""),
            "n_exemplars": n_exemplars,
            "labels": per_label,
            "gate": {"threshold": gate_threshold, "held_out_f1": round(gate_f1, 4)},
        }
        if posts is not None:
            metrics["n_posts"] = len(texts) - n_exemplars
        model = {"model_id": embedder.model_id, "model_version": embedder.model_version}
        model["dim"] = int(x.shape[1])
        kind = "zero-shot" if posts is None else "trained"
        return cls(
            taxonomy,
            head,
            thresholds,
            model,
            {**metrics, **(notes or {})},
            kind,
            (gate, gate_threshold),
            embedder=embedder,
            chunking=chunking,
        )

    # -- storage ------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {
            "weight": self.head.weight,
            "bias": self.head.bias,
            "center": self.head.center,
            "nuisance": self.head.nuisance,
        }
        if self.gate is not None:
            gate = self.gate[0]
            tensors.update(gate_weight=gate.weight, gate_bias=gate.bias)
            tensors.update(gate_center=gate.center, gate_nuisance=gate.nuisance)
        save_file(tensors, str(out / "head.safetensors"))
        (out / "taxonomy.json").write_text(
            json.dumps(self.taxonomy.document, ensure_ascii=False, indent=2) + "\n", "utf-8"
        )
        if (
            self.encoder_dir is not None
            and self.encoder_dir.resolve() != (out / "encoder").resolve()
        ):
            import shutil

            if (out / "encoder").exists():
                shutil.rmtree(out / "encoder")
            shutil.copytree(self.encoder_dir, out / "encoder")
        config = {
            "format": FORMAT,
            "kind": self.kind,
            "labels": self.labels,
            "parents": self.parents,
            "thresholds": [round(float(t), 4) for t in self.thresholds],
            "gate_threshold": None if self.gate is None else round(float(self.gate[1]), 4),
            "model": self.model,
            "taxonomy": {
                "id": self.taxonomy.id,
                "version": self.taxonomy.version,
                "digest": self.taxonomy.digest,
            },
            "metrics": self.metrics,
            "chunking": self.chunking,
            "encoder": None if self.encoder_dir is None else "encoder",
        }
        (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
        (out / "README.md").write_text(self.model_card(), "utf-8")
        return out

    @classmethod
    def from_pretrained(
        cls, folder: str | Path = DEFAULT_TAGGER, embedder=None, taxonomy=None
    ) -> NarrativeTagger:
        """Load a tagger folder; ``"default"`` is the zero-shot tagger of the default (or
        the given) taxonomy for the embedder's model, built once and cached."""
        if str(folder) == DEFAULT_TAGGER:
            return default_tagger(embedder, taxonomy)
        from safetensors.numpy import load_file

        path = Path(folder)
        if not (path / "config.json").is_file() or not (path / "head.safetensors").is_file():
            raise ModelError(
                f"{str(path)!r} is not a narratives tagger folder (config.json and "
                "head.safetensors expected); build one with `narratives train` or use 'default'"
            )
        config = json.loads((path / "config.json").read_text("utf-8"))
        if config.get("format") != FORMAT:
            raise ModelError(f"{str(path)!r}: unknown tagger format {config.get('format')!r}")
        taxonomy_obj = load_taxonomy(path / "taxonomy.json")
        if taxonomy_obj.ids != config["labels"]:
            raise ModelError(f"{str(path)!r}: taxonomy.json does not match the tagger's labels")
        tensors = load_file(str(path / "head.safetensors"))
        head = Head(tensors["weight"], tensors["bias"], tensors["center"], tensors["nuisance"])
        gate = None
        if config.get("gate_threshold") is not None:
            if "gate_weight" not in tensors:
                raise ModelError(
                    f"{str(path)!r}: config.json names a gate that head.safetensors lacks"
                )
            gate_head = Head(
                tensors["gate_weight"],
                tensors["gate_bias"],
                tensors["gate_center"],
                tensors["gate_nuisance"],
            )
            gate = (gate_head, float(config["gate_threshold"]))
        encoder_dir = None
        if config.get("encoder"):
            from narratives.embedding.embedder import Embedder

            encoder_dir = path / "encoder"
            if not (encoder_dir / "model.safetensors").is_file():
                raise ModelError(
                    f"{str(path)!r}: the tagger's fine-tuned encoder is missing "
                    "(encoder/model.safetensors); copy the whole tagger folder"
                )
            embedder = Embedder(encoder_dir, backend="torch", model_id=config["model"]["model_id"])
        return cls(
            taxonomy_obj,
            head,
            np.asarray(config["thresholds"], dtype=np.float32),
            config["model"],
            config.get("metrics"),
            config.get("kind", "trained"),
            gate,
            embedder=embedder,
            chunking=config.get("chunking"),
            encoder_dir=encoder_dir,
        )

    # -- inference ----------------------------------------------------------------------

    def check_embedder(self, embedder) -> None:
        if self.own_encoder:
            return  # it embeds the texts with its own encoder, whatever the run's is
        if embedder is not None and embedder.model_id != self.model.get("model_id"):
            raise ModelError(
                f"this tagger was built on {self.model.get('model_id')!r} embeddings, not "
                f"{embedder.model_id!r}; score with that model or build a tagger for this one"
            )
        built_on = self.model.get("model_version")
        if embedder is not None and built_on and built_on != embedder.model_version:
            logger.warning(
                "this tagger was built on %s vectors and meets %s ones (another backend or "
                "build of the same model): its scores shift slightly",
                built_on,
                embedder.model_version,
            )

    def predict_proba(self, texts=None, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (n, K) of every label (``self.labels``), from texts or from
        embeddings made by the tagger's model. Given both, a tagger with a fine-tuned
        encoder of its own reads the texts (the embeddings come from another encoder).

        A tagger with a gate gives 0 for every label of a post its gate judges to carry
        no narrative, whatever the labels' own heads say."""
        if embeddings is None or (self.own_encoder and texts is not None):
            if texts is None:
                raise ValueError("pass texts or embeddings")
            if self.embedder is None:
                raise ModelError("this tagger has no embedder; pass embedder= when loading it")
            self.check_embedder(self.embedder)
            if self.chunking:
                from narratives.embedding.chunking import embed_long

                embeddings = embed_long(list(texts), self.embedder, **self.chunking)
            else:
                embeddings = self.embedder.encode(list(texts))
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.head.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape (n, {self.head.weight.shape[1]}), got {x.shape}"
            )
        proba = self.head.proba(x).astype(np.float32)
        if self.gate is not None:
            gate, threshold = self.gate
            proba[gate.proba(x)[:, 0] < threshold] = 0.0
        return proba

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Boolean (n, K) tags: above the label's threshold, and a sub-narrative only with
        its narrative."""
        parent_of = np.array([self.labels.index(p) if p else -1 for p in self.parents])
        return consistent(proba >= self.thresholds, parent_of)

    def tag(self, texts=None, embeddings: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Per post: ``narratives`` (tagged ids with their probabilities, narratives before
        their sub-narratives), ``top_narrative`` and ``top_score`` (the most probable tagged
        narrative, or None)."""
        proba = self.predict_proba(texts, embeddings)
        return self.rows(proba)

    def rows(self, proba: np.ndarray) -> list[dict[str, Any]]:
        tags = self.decide(proba)
        top_level = np.array([p is None for p in self.parents])
        out = []
        for p, t in zip(proba, tags):
            chosen = [
                {"id": self.labels[k], "score": round(float(p[k]), 4)} for k in np.flatnonzero(t)
            ]
            level1 = np.flatnonzero(t & top_level)
            if len(level1):
                best = level1[np.argmax(p[level1])]
                out.append(
                    {
                        "narratives": chosen,
                        "top_narrative": self.labels[best],
                        "top_score": float(p[best]),
                    }
                )
            else:
                out.append({"narratives": chosen, "top_narrative": None, "top_score": None})
        return out

    # -- documentation ------------------------------------------------------------------

    def model_card(self) -> str:
        """The tagger's model card (its folder's README.md): how it was built, its labels
        with their thresholds, intended use and limits."""
        from narratives.tagging.model_card import model_card

        return model_card(self)


def default_tagger(embedder=None, taxonomy=None) -> NarrativeTagger:
    """The zero-shot tagger of ``taxonomy`` (default: the shipped one) for ``embedder``'s
    model, built on first use and kept in the cache (keyed by taxonomy digest and model)."""
    import hashlib

    from narratives.embedding.embedder import Embedder
    from narratives.embedding.model_cache import cache_dir

    embedder = embedder or Embedder("default")
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    key = hashlib.sha256(
        json.dumps(
            [tax.digest, embedder.model_id, embedder.model_version, FORMAT, ZERO_SHOT_RECIPE]
        ).encode()
    ).hexdigest()[:16]
    folder = cache_dir() / "taggers" / f"{tax.id}-zero-shot-{key}"
    if (folder / "config.json").is_file():
        try:
            return NarrativeTagger.from_pretrained(folder, embedder)
        except (ModelError, InputError, OSError, ValueError, KeyError) as exc:
            logger.warning("rebuilding the cached tagger in %s: %s", folder, exc)
    logger.info("building the zero-shot tagger of %s %s (once)", tax.id, tax.version)
    tagger = NarrativeTagger.zero_shot(tax, embedder)
    with atomic_path(folder) as tmp:
        tagger.save_pretrained(tmp)
    return tagger


__all__ = [
    "DEFAULT_TAGGER",
    "NarrativeTagger",
    "calibration_languages",
    "default_tagger",
    "exemplar_rows",
]
