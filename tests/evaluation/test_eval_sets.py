"""The tagger evaluation sets are what they say: v3 is v2 plus, for every narrative, two
items that push it, two that oppose it and one neutral report, each written once in each
of six languages (read as data only: no tagger is involved)."""

from __future__ import annotations

import collections

from narratives.evaluation.tagger import load_eval_set
from narratives.tagging.taxonomy import load_taxonomy

LANGS = {"en", "zh", "ru", "es", "fr", "vi"}


def test_v3_is_v2_plus_stance_contrast_items():
    from importlib import resources

    data = resources.files("narratives.evaluation").joinpath("data")
    v2 = load_eval_set(str(data / "tagger-eval-v2.jsonl"))
    v3 = load_eval_set(str(data / "tagger-eval-v3.jsonl"))
    assert v3[: len(v2)] == v2
    stance = v3[len(v2) :]
    narratives = {n.id for n in load_taxonomy().narratives}
    kinds = collections.Counter()
    items = collections.defaultdict(set)
    for row in stance:
        items[row["item"]].add(row["lang"])
        pushed, opposed = set(row["labels"]), set(row["opposes"])
        assert pushed | opposed <= narratives and not pushed & opposed
        kind = {"narrative": "push", "opposing": "oppose", "near_miss": "neutral"}[row["kind"]]
        assert (kind == "push") == bool(pushed) and (kind == "oppose") == bool(opposed)
        if row["lang"] == "en":
            target = row["item"].split("-")[1]
            assert target in narratives
            kinds[(target, kind)] += 1
    assert all(langs == LANGS for langs in items.values())
    for narrative in narratives:
        assert (kinds[(narrative, "push")], kinds[(narrative, "oppose")]) == (2, 2), narrative
        assert kinds[(narrative, "neutral")] == 1, narrative
    assert len({row["id"] for row in v3}) == len(v3)
