"""The zero-shot narrative tagger: storage, hierarchy, languages, harmless posts, the
evaluation set, and its place in `narratives score`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from narratives.errors import InputError, ModelError
from narratives.tagging.tagger import NarrativeTagger


def test_save_and_load_round_trip(tagger, embedder, tmp_path):
    folder = tagger.save_pretrained(tmp_path / "t")
    assert {p.name for p in folder.iterdir()} == {
        "config.json",
        "head.safetensors",
        "taxonomy.json",
        "README.md",
    }
    config = json.loads((folder / "config.json").read_text())
    assert config["labels"] == tagger.labels and config["taxonomy"]["id"] == "china-cib"
    assert "leave-one-language-out" in (folder / "README.md").read_text()
    again = NarrativeTagger.from_pretrained(folder, embedder)
    texts = ["The so-called forced labour in Xinjiang is a lie", "Lovely weather today"]
    np.testing.assert_allclose(again.predict_proba(texts), tagger.predict_proba(texts), atol=1e-6)
    emb = embedder.encode(texts)
    np.testing.assert_allclose(tagger.predict_proba(embeddings=emb), tagger.predict_proba(texts))
    assert tagger.predict_proba(embeddings=emb).shape == (2, len(tagger.labels))


def test_the_gate_turns_down_news_and_keeps_narratives(tagger, embedder, tmp_path):
    """The zero-shot tagger's gate (any narrative against none): a post it turns down
    gets no label at all, however its subject scores; the gate is stored and loaded with
    the head; a folder whose config names a gate its weights lack is refused."""
    texts = [
        "Taiwan's central bank kept its policy rate unchanged on Thursday",  # news
        "Xinjiang's cotton harvest started early this year, local farmers said",  # news
        "Taiwan is an inalienable part of China, separatists will fail",  # narrative
    ]
    x = embedder.encode(texts)
    gate, threshold = tagger.gate
    passed = gate.proba(x)[:, 0] >= threshold
    assert passed.tolist() == [False, False, True]
    ungated = tagger.head.proba(x)
    proba = tagger.predict_proba(embeddings=x)
    assert (proba[~passed] == 0).all() and (proba[passed] == ungated[passed]).all()
    assert ungated[~passed].max() > 0.01  # without the gate they would score something
    assert [r["top_narrative"] for r in tagger.tag(embeddings=x)] == [None, None, "taiwan"]
    folder = tagger.save_pretrained(tmp_path / "t")
    again = NarrativeTagger.from_pretrained(folder, embedder)
    assert again.gate[1] == pytest.approx(threshold, abs=1e-4)
    np.testing.assert_allclose(again.predict_proba(embeddings=x), proba, atol=1e-6)
    assert "gate: any narrative" in (folder / "README.md").read_text()
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / "head.safetensors"))
    save_file({k: v for k, v in tensors.items() if not k.startswith("gate")},
              str(folder / "head.safetensors"))  # fmt: skip
    with pytest.raises(ModelError, match="names a gate"):
        NarrativeTagger.from_pretrained(folder, embedder)


def test_not_a_tagger_folder_and_wrong_model(tmp_path, tagger):
    with pytest.raises(ModelError, match="not a narratives tagger folder"):
        NarrativeTagger.from_pretrained(tmp_path)

    class Other:
        model_id = "someone/other-model"

    with pytest.raises(ModelError, match="built on"):
        tagger.check_embedder(Other())
    with pytest.raises(ValueError, match="shape"):
        tagger.predict_proba(embeddings=np.zeros((2, 10), dtype=np.float32))


CROSS_LINGUAL = [
    ("en", "Xinjiang has no camps, the genocide story is a Western fabrication"),
    ("en", "I travelled around Xinjiang, the Uyghurs live well, there are no concentration camps"),
    # e5-small reads this one poorly ("Tân Cương" sits closer to Taiwan than to Xinjiang):
    ("vi", "Tân Cương không hề có diệt chủng, đó là chuyện bịa đặt của phương Tây"),
    ("vi", "Tôi vừa đi Tân Cương về, người Duy Ngô Nhĩ sống rất tốt, làm gì có trại tập trung"),
    ("de", "In Xinjiang gibt es keinen Völkermord, das ist eine Erfindung des Westens"),
    ("de", "Die Uiguren in Xinjiang leben in Frieden, die Lagergeschichten sind Lügen"),
    ("ru", "В Синьцзяне нет никакого геноцида, это выдумка Запада"),
    ("ru", "Уйгуры в Синьцзяне живут спокойно, рассказы о лагерях ложь"),
]


def test_same_narrative_across_languages(tagger):
    """A post about Xinjiang denial is tagged alike in English, Vietnamese, German and
    Russian (German has no exemplars in the taxonomy)."""
    rows = tagger.tag([text for _, text in CROSS_LINGUAL])
    hits = [r["top_narrative"] == "xinjiang" for r in rows]
    assert sum(hits) >= len(hits) - 1, list(zip(hits, CROSS_LINGUAL))
    for lang in {lang for lang, _ in CROSS_LINGUAL}:
        assert any(h for h, (l2, _) in zip(hits, CROSS_LINGUAL) if l2 == lang), lang


HARMLESS = [
    "Buy one get one free on all summer dresses this week!",
    "这家火锅店的毛肚特别新鲜，推荐！",
    "Hoy entrenamos dos horas, ¡qué cansancio!",
    "Подписывайтесь, взаимная подписка",
    "Le marché de Noël ouvre vendredi place Kléber.",
]


def test_harmless_posts_get_no_narrative(tagger):
    rows = tagger.tag(HARMLESS)
    assert [r["narratives"] for r in rows] == [[]] * len(HARMLESS)
    assert all(r["top_narrative"] is None and r["top_score"] is None for r in rows)


def test_sub_narratives_only_with_their_narrative(tagger, embedder):
    from narratives.evaluation.tagger import load_eval_set

    texts = [r["text"] for r in load_eval_set()] + [t for _, t in CROSS_LINGUAL]
    proba = tagger.predict_proba(embeddings=embedder.encode(texts))
    tags = tagger.decide(proba)
    index = {label: k for k, label in enumerate(tagger.labels)}
    for k, parent in enumerate(tagger.parents):
        if parent is not None:
            assert not (tags[:, k] & ~tags[:, index[parent]]).any(), tagger.labels[k]
    assert tags.any()  # the check is not vacuous


def test_evaluation_set_meets_targets_and_beats_the_baseline(tagger, embedder):
    """374 labelled posts in six languages, none used to build or calibrate the tagger (240
    of them 40 items written in every language)."""
    from narratives.evaluation.tagger import evaluate_tagger, load_eval_set

    rows = load_eval_set()
    assert len({r["lang"] for r in rows}) >= 6
    result = evaluate_tagger(tagger, rows, embedder.encode([r["text"] for r in rows]))
    ours, base = result["tagger"], result["baseline"]
    assert ours["micro_f1"] >= 0.75, ours
    assert ours["micro_f1"] > base["micro_f1"] + 0.3
    # the target is 3% (at most 4 of the 144 posts without a narrative); measured 0 with
    # the gate, while the baseline, its cut-off chosen on this very set for F1, tags 10-14%
    assert ours["false_tag_rate"] <= 0.03, ours
    assert ours["false_tag_rate_harmless"] == 0.0
    assert ours["false_tag_rate"] <= base["false_tag_rate"]
    # the cross-lingual gap (non-English minus English) within 0.10, on the whole set and
    # on the items written in every language, where content does not differ (measured
    # -0.002 and -0.060 on the int8 vectors, +0.021 and -0.028 on torch's)
    assert abs(ours["cross_lingual_gap"]) <= 0.10, ours
    assert abs(ours["cross_lingual_gap_parallel"]) <= 0.10, ours


def test_score_fills_narratives(sample_result):
    posts = sample_result.posts
    ok = posts["status"] == "ok"
    tagged = posts[posts["top_narrative"].notna()]
    assert len(tagged) > 20
    assert posts.loc[~ok, "narratives"].isna().all()
    for row in tagged.itertuples():
        ids = [n["id"] for n in row.narratives]
        assert row.top_narrative in ids and 0.0 < row.top_score <= 1.0
    # a harmless shop before its pivot carries no narrative, the political posts after do
    pivots = sample_result.pivots.set_index("page_id")
    assert pivots.loc["lace_boutique", "before_narratives"] == []
    assert pivots.loc["lace_boutique", "after_narratives"]
    pages = sample_result.pages.set_index("page_id")
    assert pages.loc["cafe_sol", "top_narratives"] == []
    assert sample_result.run["taxonomy"]["id"] == "china-cib"


def test_cli_eval_tagger(tagger):
    from typer.testing import CliRunner

    from narratives.cli import app

    out = CliRunner().invoke(app, ["eval", "tagger", "--no-baseline"])
    assert out.exit_code == 0, out.output
    assert "micro F1" in out.output and "xinjiang" in out.output


def test_score_with_a_taxonomy_of_ones_own(embedder, tmp_path):
    """--taxonomy FILE: the zero-shot tagger is built from that file, and a tagger built
    for another taxonomy is refused."""
    from conftest import SAMPLE

    from narratives import score
    from narratives.errors import InputError
    from narratives.tagging.taxonomy import read_document

    doc = read_document(None)
    doc["id"], doc["version"] = "mine", "0.1"
    doc["narratives"] = [n for n in doc["narratives"] if n["id"] in ("xinjiang", "taiwan")]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    result = score(SAMPLE, embedder=embedder, taxonomy=path, progress=False)
    assert result.run["taxonomy"]["id"] == "mine"
    tagged = {n["id"] for row in result.posts["narratives"].dropna() for n in row}
    assert tagged and tagged <= {"xinjiang", "taiwan"} | {
        c["id"] for n in doc["narratives"] for c in n["children"]
    }
    with pytest.raises(InputError, match="was built for taxonomy china-cib"):
        from narratives.tagging.tagger import default_tagger

        score(SAMPLE, embedder=embedder, taxonomy=path, tagger=default_tagger(embedder))


def test_evaluation_reports_the_posts_that_oppose_a_narrative(tagger, embedder):
    """On v3's stance items the harness counts how often a critic of a narrative is
    tagged with it, and says when the tagger reports no opposing stance."""
    from importlib import resources

    from narratives.evaluation.tagger import evaluate_tagger, format_report, load_eval_set

    path = resources.files("narratives.evaluation") / "data" / "tagger-eval-v3.jsonl"
    rows = [r for r in load_eval_set(str(path)) if r["id"].startswith("s-xinjiang-")]
    assert len(rows) == 30
    result = evaluate_tagger(tagger, rows, embedder.encode([r["text"] for r in rows]),
                             baseline=False)  # fmt: skip
    opposing = result["opposing"]
    assert opposing["posts"] == 12
    tagged = [r for r in rows if r.get("opposes")]
    assert 0.0 <= opposing["tagged_with_opposed"] <= opposing["tagged"] <= 1.0
    assert opposing["opposes_recall"] is None  # this tagger reads no stance yet
    report = format_report(result)
    assert "opposing posts" in report and "reports no opposing stance" in report
    assert len(tagged) == opposing["posts"]


def test_phrase_cross_check_counts_tagged_phrases_by_label(tagger, tmp_path):
    from narratives.evaluation.tagger import format_report, phrase_check

    csv = tmp_path / "ccp_alignment_phrases.csv"
    csv.write_text(
        "Type,Phrase Type,Label,Topic,Parent,Label Explanation,"
        "English,French,Spanish,Italian,Arabic\n"
        "Phrase,N,O,Xinjiang,,,Uyghur genocide,génocide ouïghour,,,\n"
        "Phrase,N,A,Xinjiang,,,vocational education and training centres,,,,\n"
        "Phrase,N,R,Xinjiang,,,dropped phrase,,,,\n"
        "Entity,,,Taiwan,,,Taiwan Affairs Office,,,,\n",
        "utf-8",
    )
    result = phrase_check(tagger, tmp_path)  # the folder or the file
    assert result["opposed"]["phrases"] == 2 and result["aligned"]["phrases"] == 1
    assert set(result["opposed"]["by_language"]) == {"en", "fr"}
    assert 0.0 <= result["opposed"]["tagged"] <= 1.0
    shown = format_report({**_minimal_result(), "phrases": result})
    assert "Doublethink Lab phrases" in shown and "of 2" in shown
    with pytest.raises(InputError, match="phrase list not found"):
        phrase_check(tagger, tmp_path / "absent")


def _minimal_result() -> dict:
    metrics = {"micro_f1": 1.0, "macro_f1": 1.0, "false_tag_rate": 0.0, "per_label": {},
               "micro_f1_by_lang": {}}  # fmt: skip
    return {"n_posts": 0, "n_with_narrative": 0, "languages": [], "tagger": metrics}


def test_every_card_says_stance_is_not_checked(tagger):
    """Until a tagger reads stance, its card says so; a schema-1 taxonomy's card says what
    the taxonomy lacks."""
    from conftest import schema_1

    from narratives.tagging.taxonomy import read_document, taxonomy_from_document

    assert "**Stance is not checked.**" in tagger.model_card()
    assert "counter-exemplars), but this tagger does not read it" in tagger.model_card()
    old = taxonomy_from_document(schema_1(read_document(None)))
    on_old = NarrativeTagger(old, tagger.head, tagger.thresholds, tagger.model, tagger.metrics,
                             tagger.kind, tagger.gate)  # fmt: skip
    assert "has no counter-exemplars (schema `narratives-taxonomy/1`)" in on_old.model_card()
