"""narratives eval langid: ours beside langdetect and Lingua on Lingua's test data.

The real data (a clone of lingua-py) is not in this repository: the test that needs it
reads the path in NARRATIVES_LINGUA_TESTDATA and skips with a reason without it; the
others build a small folder of the same shape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narratives.cli import app
from narratives.errors import InputError
from narratives.evaluation.langid import KINDS, evaluate, format_table, read_testdata

ITEMS = {
    "en": (
        ["The riots were organised by foreign forces.", "Prices rose again this week."],
        ["foreign forces", "the government"],
        ["government", "weather"],
    ),
    "kk": (
        ["Алматыдағы тәртіпсіздіктерді шетелдік күштер ұйымдастырды.", "Бағалар тағы өсті."],
        ["шетелдік күштер", "Қазақстан үкіметі"],
        ["үкіметі", "тәртіпсіздік"],
    ),
    "zh": (
        ["新疆棉花是世界上最好的棉花。", "美国的霸权正在衰落。"],
        ["新疆 棉花", "美国 霸权"],
        ["棉花", "霸权"],
    ),
}


def _testdata(root: Path) -> Path:
    for lang, kinds in ITEMS.items():
        for kind, items in zip(KINDS, kinds):
            (root / "language-testdata" / kind).mkdir(parents=True, exist_ok=True)
            (root / "language-testdata" / kind / f"{lang}.txt").write_text(
                "\n".join(items) + "\n\n", encoding="utf-8"
            )
    return root


def test_eval_langid_judges_each_identifier_on_the_languages_it_knows(tmp_path):
    result = evaluate(_testdata(tmp_path))
    assert result["items"] == {kind: 6 for kind in KINDS}
    ours, langdetect, lingua = (result["accuracy"][x] for x in ("ours", "langdetect", "lingua"))
    assert ours["sentences"]["kk"] == 1.0 and lingua["sentences"]["kk"] == 1.0
    # langdetect does not know Kazakh: it is not judged on it, and the shared means leave
    # it out
    assert "kk" not in langdetect["sentences"] and "kk" in result["knows"]["ours"]
    assert result["means"]["n_shared"] == {kind: 2 for kind in KINDS}
    for kind in KINDS:
        assert ours[kind]["zh"] == 1.0, kind  # Chinese by script, whatever its length
    assert result["means"]["own"]["ours"]["sentences"] == pytest.approx(
        sum(ours["sentences"].values()) / 3
    )
    assert set(result["items_per_s"]) == set(result["rss_growth_mib"]) == {*result["accuracy"]}
    table = format_table(result)
    assert "kk" in table and "ours (the 2 all know)" in table and "items/s" in table


def test_eval_langid_reads_the_limit_and_the_languages_asked_for(tmp_path):
    data = read_testdata(_testdata(tmp_path) / "language-testdata", limit=1, languages="kk,zh")
    assert {kind: sorted(d) for kind, d in data.items()} == {kind: ["kk", "zh"] for kind in KINDS}
    assert all(len(items) == 1 for d in data.values() for items in d.values())
    with pytest.raises(InputError, match="identifiers are ours, langdetect, lingua"):
        evaluate(tmp_path, identifiers=["fasttext"])


def test_eval_langid_without_the_data_says_where_to_get_it(tmp_path):
    result = CliRunner().invoke(app, ["eval", "langid", str(tmp_path / "absent")])
    assert result.exit_code != 0
    assert "pemistahl/lingua-py" in result.output and "language-testdata" in result.output


@pytest.mark.slow
def test_ours_is_as_accurate_as_lingua_on_its_test_data():
    """The issue's targets, on 200 items per language and kind (the full run is
    ``narratives eval langid PATH``)."""
    path = os.environ.get("NARRATIVES_LINGUA_TESTDATA")
    if not path or not Path(path).exists():
        pytest.skip(
            "Lingua's test data is not here: set NARRATIVES_LINGUA_TESTDATA to a clone of "
            "https://github.com/pemistahl/lingua-py"
        )
    result = evaluate(path, limit=200, identifiers=["ours", "lingua"])
    ours, lingua = result["means"]["shared"]["ours"], result["means"]["shared"]["lingua"]
    for kind in ("sentences", "single-words"):
        assert ours[kind] >= lingua[kind] - 0.01, (kind, ours, lingua)
    assert result["accuracy"]["ours"]["sentences"]["kk"] >= 0.95
    for kind in KINDS:
        for lang in ("zh", "ja", "ko"):
            assert result["accuracy"]["ours"][kind][lang] >= 0.99, (kind, lang)
