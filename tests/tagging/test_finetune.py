"""`narratives train`: a tiny end-to-end run, storage, thresholds, hierarchy, bad data,
and the SemEval metric."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from narratives.errors import InputError, ModelError
from narratives.tagging.heads import label_thresholds, level_thresholds, samples_f1
from narratives.tagging.tagger import NarrativeTagger
from narratives.tagging.taxonomy import load_taxonomy
from narratives.tagging.trainer import (
    Trainer,
    TrainingArguments,
    contrastive_pairs,
    read_labels,
)


@pytest.fixture(scope="module")
def labelled():
    """Texts labelled by name with narratives and 'narrative: sub' labels: the default
    taxonomy's exemplars of four narratives, and its harmless posts labelled Other."""
    tax = load_taxonomy()
    rows = []
    for narrative in ("xinjiang", "fukushima", "taiwan", "us_democracy"):
        parent = tax.node(narrative)
        for child in tax.children(narrative):
            sub = f"{parent.name}: {child.name}"
            for _, text in child.all_exemplars():
                rows.append({"text": text, "narratives": [parent.name], "subnarratives": [sub]})
    for _, text in tax.none.all_exemplars():
        rows.append({"text": text, "narratives": ["Other"], "subnarratives": ["Other"]})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def trained(labelled, embedder):
    texts, coarse, fine = read_labels(labelled)
    trainer = Trainer(TrainingArguments(min_examples=3, chunk_chars=400), embedder)
    return trainer, trainer.train(texts, coarse, fine, name="tiny")


def test_tiny_training_run_round_trips(trained, embedder, tmp_path):
    trainer, tagger = trained
    assert len(tagger.labels) == 12  # 4 narratives, 8 sub-narratives; Other is no label
    assert trainer.report["l2"] in TrainingArguments().l2_grid
    folder = tagger.save_pretrained(tmp_path / "tiny")
    card = (folder / "README.md").read_text()
    assert "Trained (head only" in card and "training examples" in card
    again = NarrativeTagger.from_pretrained(folder, embedder)
    texts = ["Japan keeps pouring radioactive water into the sea", "Nice day at the beach"]
    np.testing.assert_array_equal(again.predict_proba(texts), tagger.predict_proba(texts))
    assert again.chunking == {"chunk_chars": 400, "max_chunks": 8}
    rows = again.tag(texts)
    names = {n.id: n.name for n in again.taxonomy.nodes}
    assert names[rows[0]["top_narrative"]].startswith("Japan's Fukushima")
    assert rows[1]["top_narrative"] is None


def test_no_gate_where_it_does_not_help_or_cannot_learn(labelled, embedder):
    """The tiny set's validation split is tagged perfectly without a gate: none is kept,
    and the card says why; with every text labelled there is nothing to gate against."""
    texts, coarse, fine = read_labels(labelled)
    trainer = Trainer(TrainingArguments(l2_grid=(1e-6,), chunk_chars=400), embedder)
    x = trainer.embed(texts)
    tagger = trainer.train(texts, coarse, fine, embeddings=x)
    assert trainer.report["gate"] == {
        "used": False,
        "why": "no better on the validation split",
        "val_samples_f1_without": 1.0,
    }
    assert tagger.gate is None
    assert "No gate: no better on the validation split" in tagger.model_card()
    labelled_only = [i for i, c in enumerate(coarse) if c and c != ["Other"]]
    t2 = Trainer(TrainingArguments(l2_grid=(1e-6,), chunk_chars=400), embedder)
    again = t2.train(
        [texts[i] for i in labelled_only],
        [coarse[i] for i in labelled_only],
        [fine[i] for i in labelled_only],
        embeddings=x[labelled_only],
    )
    assert again.gate is None and t2.report["gate"]["used"] is False
    assert "too few texts" in t2.report["gate"]["why"]
    t3 = Trainer(TrainingArguments(l2_grid=(1e-6,), chunk_chars=400, gate=False), embedder)
    t3.train(texts, coarse, fine, embeddings=x)
    assert t3.report["gate"] == {"used": False, "why": "not asked for"}


def test_gate_used_where_label_heads_tag_everything():
    """Label heads that tag every text, texts of which half carry no label, told apart by
    one direction: the gate is chosen (it lifts the validation F1) and turns those down."""
    from narratives.tagging.heads import Head

    rng = np.random.default_rng(0)
    n, d = 200, 8
    x = rng.standard_normal((n, d)).astype(np.float32)
    carries = x[:, 0] > 0
    y = np.zeros((n, 2), dtype=bool)
    y[carries, 0] = True
    val = rng.random(n) < 0.3
    langs = np.array(["all"] * n)
    always = Head(np.zeros((2, d), np.float32), np.full(2, 5.0, np.float32),
                   np.zeros(d, np.float32), np.zeros((0, d), np.float32))  # fmt: skip
    trainer = Trainer(TrainingArguments(), embedder=object())
    thresholds = np.array([0.5, 0.99], dtype=np.float32)
    gate, report = trainer._gate(x, y, langs, val, 1e-6, always, thresholds, np.array([-1, 0]))
    assert report["used"] and report["val_samples_f1"] > report["val_samples_f1_without"]
    head, threshold = gate
    passed = head.proba(x)[:, 0] >= threshold
    assert (passed == carries).mean() > 0.95


def test_deterministic(labelled, embedder):
    texts, coarse, fine = read_labels(labelled)
    settings = TrainingArguments(l2_grid=(1e-6,), chunk_chars=400, thresholds="labels")
    x = Trainer(settings, embedder).embed(texts)
    a = Trainer(settings, embedder).train(texts, coarse, fine, embeddings=x)
    b = Trainer(settings, embedder).train(texts, coarse, fine, embeddings=x)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    np.testing.assert_array_equal(a.head.weight, b.head.weight)


def test_thresholds_sit_between_the_classes():
    truth = np.array([[True], [True], [True], [False], [False], [False]])
    scores = np.array([[0.9], [0.8], [0.7], [0.3], [0.2], [0.1]])
    (t,) = label_thresholds(scores, truth, min_pos=3)
    assert 0.3 < t <= 0.7
    # too few positives: the global best threshold
    (t2,) = label_thresholds(scores[2:], truth[2:], min_pos=3)
    assert 0.05 <= t2 <= 0.95
    # one threshold per level, for the best per-text F1 of the label sets: narratives
    # separate at 0.5-0.6, the sub-narrative's scores are lower and separate at 0.3
    proba = np.array([[0.9, 0.35], [0.8, 0.12], [0.55, 0.4], [0.22, 0.12]])
    truth2 = np.array([[1, 1], [1, 0], [1, 1], [0, 0]], dtype=bool)
    t_levels = level_thresholds(proba, truth2, np.array([True, False]), np.array([-1, 0]))
    assert 0.22 < t_levels[0] <= 0.55 and 0.12 < t_levels[1] <= 0.35


def test_sub_narratives_need_their_narrative(trained, embedder):
    _, tagger = trained
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, embedder.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tags = tagger.decide(tagger.predict_proba(embeddings=x) * 0 + rng.random((200, 12)))
    index = {label: k for k, label in enumerate(tagger.labels)}
    for k, parent in enumerate(tagger.parents):
        if parent is not None:
            assert not (tags[:, k] & ~tags[:, index[parent]]).any()


def test_bad_label_data_is_explained(tmp_path, embedder):
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"content": "x", "narratives": ["A"]}) + "\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) \['text'\].*--text-col"):
        read_labels(path)
    path.write_text(
        "\n".join(json.dumps({"text": t, "narratives": ["A"]}) for t in ["ok", "  "]) + "\n"
    )
    with pytest.raises(InputError, match="no text"):
        read_labels(path)
    with pytest.raises(InputError, match="not found"):
        read_labels(tmp_path / "missing.csv")
    csv = tmp_path / "labels.csv"
    csv.write_text("text,narratives\nhello,A;B\nworld,B\n")
    texts, coarse, _ = read_labels(csv)
    assert coarse == [["A", "B"], ["B"]]
    few = Trainer(TrainingArguments(min_examples=5), embedder)
    with pytest.raises(InputError, match="no label has 5 examples"):
        few.train(texts, coarse, [[], []])
    with pytest.raises(ValueError, match="val_fraction"):
        TrainingArguments(val_fraction=0.7)


def test_samples_f1_is_the_task_metric():
    gold = [["A", "B"], ["Other"], ["C"]]
    pred = [["A"], ["Other"], ["D"]]
    # per document: 2*1/3, 1, 0
    assert samples_f1(gold, pred) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert samples_f1([["A"]], [[]]) == 0.0
    with pytest.raises(ValueError):
        samples_f1([["A"]], [])


def test_one_samples_f1_for_label_sets_and_matrices():
    """A hand-computed case, with a document that has no label and gets none: SemEval's
    scorer counts it 0 (scikit-learn's average="samples", zero_division=0); calibration
    on posts passes both_empty=1, where abstaining on a harmless post is right."""
    gold = [["A", "B"], [], ["C"], ["A"]]
    pred = [["B", "C"], [], [], ["A", "A"]]
    # per document: 2*1/(2+2) = 0.5, both empty, 2*0/(1+0) = 0, 2*1/(1+1) = 1
    assert samples_f1(gold, pred) == pytest.approx((0.5 + 0 + 0 + 1) / 4)
    assert samples_f1(gold, pred, both_empty=1.0) == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    names = ["A", "B", "C"]
    truth = np.array([[n in g for n in names] for g in gold])
    guess = np.array([[n in p for n in names] for p in pred])
    assert samples_f1(truth, guess) == samples_f1(gold, pred)
    assert samples_f1(truth, guess, both_empty=1.0) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="both as matrices"):
        samples_f1(truth, pred)


@pytest.mark.finetune
def test_cli_train_then_score_with_the_tagger(labelled, embedder, tmp_path):
    from typer.testing import CliRunner

    from narratives.cli import app

    data = tmp_path / "labels.jsonl"
    labelled.to_json(data, orient="records", lines=True, force_ascii=False)
    out = tmp_path / "mine"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", str(data), "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "12 labels" in trained.output and (out / "head.safetensors").is_file()
    again = runner.invoke(app, ["train", "--data", str(data), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    missing = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "x"),
                                  "--text-col", "body"])  # fmt: skip
    assert missing.exit_code == 2 and "--text-col" in missing.output
    bad = runner.invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "y"),
                              "--backend", "tensorrt"])  # fmt: skip
    assert bad.exit_code == 2 and "--backend must be one of" in bad.output
    on_torch = tmp_path / "on-torch"
    torch_run = runner.invoke(app, ["train", "--data", str(data), "--out", str(on_torch),
                                    "--backend", "torch"])  # fmt: skip
    assert torch_run.exit_code == 0, torch_run.output
    built_on = json.loads((on_torch / "config.json").read_text())["model"]["model_version"]
    assert "onnx" not in built_on
    assert "onnx" in json.loads((out / "config.json").read_text())["model"]["model_version"]

    # with a taxonomy that has exemplars, the posts join them (by default) ...
    from importlib import resources

    tax_file = str(resources.files("narratives.tagging") / "taxonomies" / "china-cib.json")
    coarse_only = tmp_path / "coarse.jsonl"
    labelled[["text", "narratives"]].to_json(coarse_only, orient="records", lines=True)
    with_tax = runner.invoke(app, ["train", "--data", str(coarse_only), "--out",
                                   str(tmp_path / "t"), "--taxonomy", tax_file])  # fmt: skip
    assert with_tax.exit_code == 0, with_tax.output
    assert f"{len(labelled)} texts and" in with_tax.output and "exemplars of" in with_tax.output
    card = json.loads((tmp_path / "t" / "config.json").read_text())
    assert card["metrics"]["recipe"] == "exemplars"
    assert len(card["labels"]) == len(load_taxonomy().ids)
    # ... and --no-exemplars trains on the posts alone, keeping the labels they carry
    alone = runner.invoke(app, ["train", "--data", str(coarse_only), "--out",
                                str(tmp_path / "n"), "--taxonomy", tax_file,
                                "--no-exemplars"])  # fmt: skip
    assert alone.exit_code == 0, alone.output
    assert "4 labels" in alone.output and "exemplars of" not in alone.output

    from conftest import SAMPLE

    from narratives import score

    result = score(SAMPLE, embedder=embedder, tagger=str(out), progress=False)
    names = {n.id: n.name for n in NarrativeTagger.from_pretrained(out).taxonomy.nodes}
    tops = result.posts["top_narrative"].dropna()
    assert len(tops) > 0 and set(tops) <= set(names)
    assert result.run["taxonomy"]["id"] == "mine"


def test_labels_checked_against_a_taxonomy(labelled, embedder):
    """With a taxonomy, labels are its ids or names; anything else is an error."""
    tax = load_taxonomy()
    texts, coarse, fine = read_labels(labelled)
    # narratives by name, sub-narratives by id
    by_label = {f"{tax.node(c.parent).name}: {c.name}": c.id for c in tax.nodes if c.parent}
    fine = [[by_label.get(label, label) for label in row] for row in fine]
    settings = TrainingArguments(l2_grid=(1e-6,), chunk_chars=400, exemplars=False)
    x = Trainer(settings, embedder).embed(texts)
    tagger = Trainer(settings, embedder).train(texts, coarse, fine, embeddings=x, taxonomy=tax)
    assert tagger.taxonomy.id == "china-cib"
    assert set(tagger.labels) == {
        n.id
        for n in tax.nodes
        if n.id.split(".")[0] in {"xinjiang", "fukushima", "taiwan", "us_democracy"}
    }
    bad = [*coarse[:-1], ["Xinjiang genocide denial (typo)"]]
    with pytest.raises(InputError, match=r"1 labels are not in taxonomy china-cib.*typo"):
        Trainer(settings, embedder).train(texts, bad, fine, embeddings=x, taxonomy=tax)


def test_labelled_posts_join_the_taxonomy_exemplars(embedder, tmp_path):
    """With a taxonomy that has exemplars, the labelled posts join them in the zero-shot
    recipe: every label of the taxonomy is kept, the calibration is the zero-shot
    tagger's (on the exemplars alone), and the heads learn what the posts teach."""
    tax = load_taxonomy()
    zero_shot = NarrativeTagger.zero_shot(tax, embedder)
    # an analyst's taxonomy reading: posts on Fukushima's fish trade count as the
    # Fukushima narrative (by name), a sub-narrative by id; one harmless post
    fukushima = tax.node("fukushima").name
    sub = tax.children("fukushima")[0].id
    texts = [
        "China stops buying Japanese scallops and the fishermen of Hokkaido are ruined",
        "Seafood exporters in Sendai count their losses after the import ban",
        "Japanese fish sales collapse in Hong Kong markets",
        "Tokyo's seafood auctions fall silent as buyers stay away",
        "Our cat slept on the sofa all afternoon",
    ]
    coarse = [[fukushima], [fukushima], [fukushima], [], ["Other"]]
    fine = [[], [], [], [sub], []]
    langs = ["en"] * len(texts)
    trainer = Trainer(TrainingArguments(), embedder)
    tagger = trainer.train(texts, coarse, fine, taxonomy=tax, languages=langs)
    assert tagger.labels == zero_shot.labels and tagger.kind == "trained"
    np.testing.assert_array_equal(tagger.thresholds, zero_shot.thresholds)
    assert tagger.gate[1] == zero_shot.gate[1]
    assert trainer.report["recipe"] == "exemplars" and trainer.report["n_texts"] == 5
    counts = trainer.report["label_counts"]
    assert counts[fukushima] == 4 and counts[tax.node(sub).name] == 1
    probe = ["Fish markets in Osaka sell almost nothing since the ban on Japanese seafood"]
    k = tagger.labels.index("fukushima")
    before = zero_shot.predict_proba(probe)[0, k]
    after = tagger.predict_proba(probe)[0, k]
    assert after > before + 0.05, (before, after)
    folder = tagger.save_pretrained(tmp_path / "with-exemplars")
    assert "together with the taxonomy's" in (folder / "README.md").read_text()
    again = NarrativeTagger.from_pretrained(folder, embedder)
    np.testing.assert_array_equal(again.predict_proba(probe), tagger.predict_proba(probe))
    # languages are detected when not given: the same posts, the same tagger
    detected = Trainer(TrainingArguments(), embedder).train(texts, coarse, fine, taxonomy=tax)
    np.testing.assert_array_equal(detected.predict_proba(probe), tagger.predict_proba(probe))


def test_contrastive_pairs_share_a_label_or_none():
    y = np.zeros((40, 3), dtype=bool)
    y[:30, 0] = True  # a common label
    y[30:33, 1] = True  # a rare one
    y[30, 2] = y[31, 2] = True  # two texts with two labels
    pairs = contrastive_pairs(y, 400, np.random.default_rng(0))
    assert len(pairs) == 400 and pairs == contrastive_pairs(y, 400, np.random.default_rng(0))
    sets = np.c_[y, ~y.any(axis=1)]
    for i, j, target in pairs:
        assert i != j
        shared, either = (sets[i] & sets[j]).sum(), (sets[i] | sets[j]).sum()
        assert target == pytest.approx(shared / either)
    together = [p for k, p in enumerate(pairs) if k % 2 == 0]
    assert all(t > 0 for *_, t in together) and all(t == 0 for *_, t in pairs[1::2])
    # the rare label (3 texts of 40) is drawn like the others: about a quarter of the
    # pairs that share a label, not 3/40 of them
    rare = sum(1 for i, j, _ in together if y[i, 1] and y[j, 1])
    assert rare > 0.15 * len(together)
    partial = [t for i, j, t in together if y[i, 2] != y[j, 2] and y[i, 1] and y[j, 1]]
    assert partial and all(t == pytest.approx(0.5) for t in partial)


@pytest.mark.finetune
def test_contrastive_fine_tuning_moves_the_encoder_and_travels_with_the_tagger(
    labelled, embedder, tmp_path
):
    """A tiny contrastive run (16 pairs, 32 tokens): the tagger keeps its fine-tuned encoder,
    embeds texts with it after a round trip, and scoring tags posts with it."""
    from narratives import score

    texts, coarse, fine = read_labels(labelled)
    args = TrainingArguments(
        min_examples=3, encoder="contrastive", pairs=16, encoder_batch_size=8,
        encoder_max_tokens=32, encoder_learning_rate=1e-4,
    )  # fmt: skip
    trainer = Trainer(args, embedder)
    tagger = trainer.train(texts, coarse, fine, name="tuned")
    assert tagger.own_encoder and trainer.report["encoder"] == "contrastive"
    probe = ["Japan keeps pouring radioactive water into the sea", "Nice day at the beach"]
    assert np.abs(tagger.embedder.encode(probe) - embedder.encode(probe)).max() > 1e-3
    folder = tagger.save_pretrained(tmp_path / "tuned")
    assert (folder / "encoder" / "model.safetensors").is_file()
    assert not list((folder / "encoder").glob("*.bin"))  # safetensors only, no pickle
    card = (folder / "encoder" / "README.md").read_text()
    assert not any(t[:40] in card for t in texts)  # no training text quoted
    assert "fine-tuned first on 16 contrastive pairs" in (folder / "README.md").read_text()
    again = NarrativeTagger.from_pretrained(folder, embedder)  # the run's embedder is unused
    np.testing.assert_allclose(again.predict_proba(probe), tagger.predict_proba(probe), atol=1e-5)
    again.check_embedder(embedder)  # no error: it reads the texts with its own encoder
    posts = [{"post_id": f"p{i}", "text": t} for i, t in enumerate(probe)]
    result = score(posts, embedder=embedder, tagger=str(folder), progress=False)
    expected = [row["top_narrative"] for row in again.tag(probe)]
    got = [None if pd.isna(x) else x for x in result.posts["top_narrative"]]
    assert got == expected and expected[0] is not None
    (folder / "encoder" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="fine-tuned encoder is missing"):
        NarrativeTagger.from_pretrained(folder, embedder)
    with pytest.raises(InputError, match="embeds the texts itself"):
        Trainer(args, embedder).train(texts, coarse, fine, embeddings=embedder.encode(texts))
    with pytest.raises(ValueError, match="encoder must be"):
        TrainingArguments(encoder="lora")
