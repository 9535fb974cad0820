"""The shipped taxonomy and the schema check; `narratives taxonomy` commands."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import schema_1
from typer.testing import CliRunner

from narratives.cli import app
from narratives.errors import InputError
from narratives.tagging.taxonomy import REQUIRED_LANGUAGES, load_taxonomy, read_document, validate

#: Narrative ids are a contract with users' filters and stored outputs: changing one is a
#: new taxonomy version, and this list changes with it on purpose.
STABLE_IDS = [
    "china_success",
    "xinjiang",
    "hong_kong",
    "taiwan",
    "covid_origin",
    "us_social_decay",
    "us_democracy",
    "us_hegemony",
    "western_media",
    "critics_attacks",
    "fukushima",
    "sanctions_backfire",
]


def test_default_taxonomy_is_valid_and_complete():
    doc = read_document(None)
    assert validate(doc) == []
    tax = load_taxonomy()
    assert [n.id for n in tax.narratives] == STABLE_IDS
    assert tax.version == "1.2.0" and len(tax.digest) == 64
    assert tax.has_counter_stance
    for node in tax.nodes:
        assert node.definition.count(" ") >= 10, node.id  # a paragraph, not a label
        if node.parent is None:
            assert node.sources and len(tax.children(node.id)) >= 2
        else:
            assert node.id.startswith(node.parent + ".")
            for lang in REQUIRED_LANGUAGES:
                assert len(node.exemplars[lang]) >= 2, (node.id, lang)
    for narrative in tax.narratives:  # the opposing stance, in every exemplar language
        assert narrative.counter_definition.count(" ") >= 10, narrative.id
        langs = {lang for lang, _ in tax.counter_exemplars(narrative)}
        assert langs >= set(REQUIRED_LANGUAGES) | {"vi"}, narrative.id
        assert not {s for _, s in tax.counter_exemplars(narrative)} & {
            s for _, s in tax.exemplars(narrative)
        }
        for child in tax.children(narrative.id):  # and of each sub-narrative
            assert child.counter_definition and set(child.counter_exemplars) == langs
    assert {s["id"] for s in tax.sources} >= {"meta-2023-q2", "doublethink-2022"}
    assert len(tax.none.all_exemplars()) >= 40


def _broken(change) -> list[str]:
    doc = copy.deepcopy(read_document(None))
    change(doc)
    return validate(doc)


def test_validate_reports_each_problem():
    def dup(doc):
        doc["narratives"][1]["id"] = doc["narratives"][0]["id"]

    def child(doc):
        doc["narratives"][0]["children"][0]["id"] = "elsewhere.child"

    def lang(doc):
        del doc["narratives"][2]["children"][0]["exemplars"]["ru"]

    def source(doc):
        doc["narratives"][3]["sources"] = ["nobody-2020"]

    assert any("duplicate id" in p for p in _broken(dup))
    assert any("must be 'china_success.<name>'" in p for p in _broken(child))
    assert any("no exemplars in 'ru'" in p for p in _broken(lang))
    assert any("unknown source 'nobody-2020'" in p for p in _broken(source))
    assert validate([]) == ["the file must hold a JSON object"]


def test_the_opposing_stance_is_checked_in_schema_2():
    def no_counter_definition(doc):
        del doc["narratives"][4]["counter_definition"]

    def no_counters(doc):
        for entry in [doc["narratives"][5], *doc["narratives"][5]["children"]]:
            entry.pop("counter_exemplars")

    def counters_not_lists(doc):
        doc["narratives"][6]["counter_exemplars"] = {"en": "one sentence"}

    def counters_on_a_child_only(doc):
        narrative = doc["narratives"][7]
        narrative["children"][0]["counter_exemplars"] = narrative.pop("counter_exemplars")

    assert any("'covid_origin': 'counter_definition'" in p for p in _broken(no_counter_definition))
    assert any("us_social_decay': no 'counter_exemplars'" in p for p in _broken(no_counters))
    assert any("must map languages to lists" in p for p in _broken(counters_not_lists))
    assert _broken(counters_on_a_child_only) == []


def test_a_schema_1_taxonomy_still_loads_and_says_what_it_lacks(tmp_path):
    from narratives.tagging.taxonomy import advice, check_file

    doc = schema_1(read_document(None))
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc), "utf-8")
    problems, notes, tax = check_file(old)
    assert problems == [] and tax is not None and not tax.has_counter_stance
    assert notes == advice(doc) and "counter_exemplars" in notes[0]
    shown = CliRunner().invoke(app, ["taxonomy", "validate", str(old)])
    assert shown.exit_code == 0 and "note: schema 'narratives-taxonomy/1'" in shown.output
    assert advice(read_document(None)) == []


def test_bad_files_raise_input_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", "utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_taxonomy(bad)
    bad.write_text(json.dumps({"schema": "narratives-taxonomy/1"}), "utf-8")
    with pytest.raises(InputError, match="narratives taxonomy validate"):
        load_taxonomy(bad)
    with pytest.raises(InputError, match="not found"):
        load_taxonomy(tmp_path / "missing.json")


def test_cli_show_and_validate(tmp_path):
    runner = CliRunner()
    shown = runner.invoke(app, ["taxonomy", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    entries = {e["id"]: e for e in data["narratives"]}
    assert entries["xinjiang"]["parent_id"] is None
    assert entries["xinjiang.genocide_denial"]["parent_id"] == "xinjiang"
    assert all(e["name"] and e["definition"] for e in entries.values())
    custom = tmp_path / "mine.json"
    doc = read_document(None)
    doc["id"], doc["narratives"] = "mine", doc["narratives"][:2]
    custom.write_text(json.dumps(doc), "utf-8")
    ok = runner.invoke(app, ["taxonomy", "validate", str(custom)])
    assert ok.exit_code == 0 and "2 narratives" in ok.output
    assert "mine" in runner.invoke(app, ["taxonomy", "show", "--taxonomy", str(custom)]).output
    doc["narratives"][0]["children"][0]["exemplars"]["zh"] = []
    custom.write_text(json.dumps(doc), "utf-8")
    bad = runner.invoke(app, ["taxonomy", "validate", str(custom)])
    assert bad.exit_code == 2 and "no exemplars in 'zh'" in bad.output
