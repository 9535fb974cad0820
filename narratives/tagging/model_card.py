"""A tagger's model card (the README.md of its folder), from the template
``model_card.md`` beside this module: how the tagger was built (the zero-shot recipe,
the exemplars recipe with labelled posts, or a head trained on labelled posts alone), its
labels with their thresholds, and its intended use and limits."""

from __future__ import annotations

from importlib import resources
from string import Template
from typing import Any

from narratives.tagging.heads import L2


def model_card(tagger: Any) -> str:
    """The card of a :class:`~narratives.tagging.tagger.NarrativeTagger`."""
    tax = tagger.taxonomy
    template = resources.files("narratives.tagging").joinpath("model_card.md").read_text("utf-8")
    return Template(template).substitute(
        kind=tagger.kind,
        taxonomy_id=tax.id,
        taxonomy_version=tax.version,
        title=tax.title,
        digest=tax.digest[:16],
        n_narratives=len(tax.narratives),
        n_subs=len(tax.nodes) - len(tax.narratives),
        model_id=tagger.model.get("model_id"),
        model_version=tagger.model.get("model_version"),
        how=_how(tagger),
        label_rows="\n".join(_label_rows(tagger)),
        stance=_stance(tax),
    )


def _stance(taxonomy: Any) -> str:
    """The warning every card carries while no tagger reads stance."""
    if taxonomy.has_counter_stance:
        return (
            "**Stance is not checked.** The taxonomy describes the opposing stance of each "
            "narrative (counter-exemplars), but this tagger does not read it: a post that "
            "argues against a narrative (a critic, a journalist, a human-rights report) can "
            "be tagged with it (the default tagger tags 59.7% of the opposing posts of the "
            "evaluation set v3, 50.0% with the narrative they oppose). Read a tag as the "
            "post's subject, not as proof that it pushes the narrative."
        )
    return (
        "**Stance is not checked.** The taxonomy has no counter-exemplars (schema "
        "`narratives-taxonomy/1`), so a post that argues against a narrative can be tagged "
        "with it; `narratives taxonomy validate` says what to add. Read a tag as the post's "
        "subject, not as proof that it pushes the narrative."
    )


def _how(tagger: Any) -> str:
    """How the tagger was built, by its recipe."""
    if tagger.kind == "zero-shot":
        lines = [
            "No labelled posts. The taxonomy's exemplar sentences (en, zh, ru, es, vi), "
            "definitions and harmless `none` exemplars are embedded; a class-balanced "
            f"logistic head per label (L2 {L2}) separates them, and a gate head tells "
            "posts that push any narrative from the harmless ones (ordinary news on the "
            "same subjects included): a post the gate turns down gets no tag. Thresholds "
            "(the gate's too) are calibrated leave-one-language-out on the exemplars.",
            "",
        ]
    elif tagger.metrics.get("recipe") == "exemplars":
        m = tagger.metrics
        lines = [
            f"Trained on {m.get('n_texts')} labelled texts (languages "
            f"{m.get('languages')}) together with the taxonomy's {m.get('n_exemplars')} "
            "exemplar sentences, definitions and harmless `none` exemplars, the way the "
            f"zero-shot tagger is built: a class-balanced logistic head per label (L2 {L2}) "
            "on frozen embeddings with the directions that tell languages apart taken "
            "out, and a gate head (any narrative against none). Thresholds (the gate's "
            f"too) are calibrated {m.get('calibration')}.",
            "",
            "| label | labelled texts |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in (m.get("label_counts") or {}).items()),
            "",
        ]
    else:
        m = tagger.metrics
        if m.get("encoder") == "contrastive":
            how = (
                f"with its encoder ({m.get('base_model')}, {m.get('base_version')}) "
                f"fine-tuned first on {m.get('pairs')} contrastive pairs of the training "
                f"texts ({m.get('epochs')} epoch, learning rate {m.get('learning_rate')}, "
                f"{m.get('max_tokens')} tokens; saved in `encoder/`), then a head"
            )
        else:
            how = "head only, on frozen embeddings"
        lines = [
            f"Trained ({how}) on {m.get('n_texts')} labelled texts; L2 {m.get('l2')} "
            "chosen by the samples F1 on the validation split "
            f"{m.get('val_samples_f1_by_l2')}; thresholds tuned on that split of "
            f"{m.get('val_size')} texts carved from the training data (kept out of the "
            "encoder's fine-tuning).",
            "",
            _gate_line(m.get("gate")),
            "",
            f"Labels dropped for too few examples: {m.get('dropped_labels') or 'none'}. "
            f"Labels in the data that fit no narrative: {m.get('unknown_labels') or 'none'}.",
            "",
            "| label | training examples |",
            "|---|---|",
            *(f"| {k} | {v} |" for k, v in (m.get("label_counts") or {}).items()),
            "",
        ]
    return "\n".join(lines[:-1])  # the template leaves the blank line after it


def _label_rows(tagger: Any) -> list[str]:
    rows = []
    per_label = tagger.metrics.get("labels", {})
    for label, threshold in zip(tagger.labels, tagger.thresholds):
        f1 = per_label.get(label, {}).get("held_out_f1")
        rows.append(f"| `{label}` | {threshold:.2f} | {'' if f1 is None else f1} |")
    if tagger.gate is not None:
        f1 = tagger.metrics.get("gate", {}).get("held_out_f1")
        rows.append(f"| gate: any narrative | {tagger.gate[1]:.2f} | {'' if f1 is None else f1} |")
    return rows


def _gate_line(report: dict[str, Any] | None) -> str:
    """The model card's line on a trained tagger's gate (see Trainer._gate)."""
    if not report:
        return "No gate (trained before taggers had one)."
    if not report.get("used"):
        return f"No gate: {report.get('why')}."
    return (
        "A gate head (any label against none) must pass before any tag: threshold "
        f"{report['threshold']}, chosen on the validation split (samples F1 "
        f"{report['val_samples_f1_without']} without the gate, {report['val_samples_f1']} "
        "with it)."
    )


__all__ = ["model_card"]
