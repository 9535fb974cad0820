"""Narrative taxonomies: two levels (narrative -> sub-narrative), checked on load.

A taxonomy is a JSON file (schema ``narratives-taxonomy/2``, see
``narratives/tagging/taxonomies/china-cib.json``, the default): an id and a version, the
sources it rests on, a ``none`` entry with exemplars of harmless posts, and narratives,
each with a stable id, a name, a one-paragraph definition, the sources it cites and its
sub-narratives; every sub-narrative has exemplar sentences per language. Ids are stable:
a sub-narrative's id is its parent's id, a dot and its own name (``xinjiang.genocide_denial``).

Schema 2 adds the opposing stance: every narrative has a ``counter_definition`` (what
arguing against it means) and ``counter_exemplars`` (sentences that take the other side of
the same subject, per language; a sub-narrative may have its own): what a tagger needs to
tell a post that argues against a narrative from one that pushes it. No tagger reads them
yet (the README's Stance section says how far that work is); the evaluation and the model
cards do. A schema-1 file still loads, and :func:`advice` says what it lacks.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from narratives.errors import InputError

SCHEMA = "narratives-taxonomy/2"
#: Older schemas that still load (without what the newer one adds; see :func:`advice`).
OLDER_SCHEMAS = ("narratives-taxonomy/1",)
DEFAULT_TAXONOMY = "china-cib"
#: Languages every sub-narrative (and the none entry) needs exemplars in.
REQUIRED_LANGUAGES = ("en", "zh", "ru", "es")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    definition: str
    parent: str | None = None
    exemplars: dict[str, list[str]] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    #: Sentences that argue against the node, per language, and what that stance is.
    counter_exemplars: dict[str, list[str]] = field(default_factory=dict)
    counter_definition: str = ""

    @property
    def level(self) -> int:
        return 1 if self.parent is None else 2

    def all_exemplars(self) -> list[tuple[str, str]]:
        """(language, sentence) pairs, in file order."""
        return [(lang, s) for lang, sentences in self.exemplars.items() for s in sentences]

    def all_counter_exemplars(self) -> list[tuple[str, str]]:
        """(language, sentence) pairs of the opposing stance, in file order."""
        return [(lang, s) for lang, items in self.counter_exemplars.items() for s in items]


@dataclass(frozen=True)
class Taxonomy:
    id: str
    version: str
    title: str
    nodes: tuple[Node, ...]  # narratives, each followed by its sub-narratives
    none: Node
    sources: tuple[dict[str, str], ...]
    digest: str  # SHA-256 of the file's canonical JSON: what a tagger was built from
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def narratives(self) -> list[Node]:
        return [n for n in self.nodes if n.parent is None]

    def children(self, parent: str) -> list[Node]:
        return [n for n in self.nodes if n.parent == parent]

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @property
    def has_counter_stance(self) -> bool:
        """Every narrative has sentences of the opposing stance (its own or its
        sub-narratives'): what a tagger needs to learn to tell pushing from opposing."""
        return all(self.counter_exemplars(n) for n in self.narratives)

    def counter_exemplars(self, node: Node) -> list[tuple[str, str]]:
        """A node's opposing-stance sentences: its own, and for a narrative those of its
        sub-narratives."""
        found = node.all_counter_exemplars()
        if node.parent is None:
            for child in self.children(node.id):
                found += child.all_counter_exemplars()
        return found

    def exemplars(self, node: Node) -> list[tuple[str, str]]:
        """A node's exemplars: its own, and for a narrative those of its sub-narratives."""
        found = node.all_exemplars()
        if node.parent is None:
            for child in self.children(node.id):
                found += child.all_exemplars()
        return found

    def describe(self) -> list[dict[str, Any]]:
        """Ids, names, definitions and parent ids (``narratives taxonomy show --json``)."""
        return [
            {
                "id": n.id,
                "name": n.name,
                "definition": n.definition,
                "parent_id": n.parent,
                "level": n.level,
                "languages": sorted({lang for lang, _ in self.exemplars(n)}),
                "n_exemplars": len(self.exemplars(n)),
            }
            for n in self.nodes
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "digest": self.digest,
            "narratives": self.describe(),
        }


def validate(data: Any) -> list[str]:
    """Problems with a taxonomy document (an empty list when it is valid)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return ["the file must hold a JSON object"]
    # a label taxonomy (written by `narratives train` from labelled data) has names and
    # ids but no exemplars, definitions or sources of its own
    labels_only = data.get("kind") == "labels"
    schema = data.get("schema")
    if schema != SCHEMA and schema not in OLDER_SCHEMAS:
        problems.append(f"'schema' must be {SCHEMA!r}, got {schema!r}")
    stance = schema == SCHEMA and not labels_only  # schema 2: the opposing stance too
    for key in ("id", "version", "title"):
        if not isinstance(data.get(key), str) or not data.get(key):
            problems.append(f"{key!r} must be a non-empty string")
    sources = data.get("sources")
    source_ids: set[str] = set()
    if not isinstance(sources, list) or (not sources and not labels_only):
        problems.append("'sources' must be a non-empty list of {id, title, url}")
    else:
        for i, source in enumerate(sources):
            if not isinstance(source, dict) or not all(
                isinstance(source.get(k), str) and source.get(k) for k in ("id", "title", "url")
            ):
                problems.append(f"sources[{i}] needs non-empty 'id', 'title' and 'url'")
            else:
                source_ids.add(source["id"])

    def check_exemplars(where: str, exemplars: Any) -> None:
        if labels_only and exemplars is None:
            return
        if not isinstance(exemplars, dict):
            problems.append(f"{where}: 'exemplars' must map languages to lists of sentences")
            return
        for lang in () if labels_only else REQUIRED_LANGUAGES:
            if not exemplars.get(lang):
                problems.append(f"{where}: no exemplars in {lang!r} (needed: {REQUIRED_LANGUAGES})")
        for lang, sentences in exemplars.items():
            if not isinstance(sentences, list) or not all(
                isinstance(s, str) and s.strip() for s in sentences
            ):
                problems.append(f"{where}: exemplars[{lang!r}] must be non-empty strings")

    def check_counter_exemplars(where: str, counters: Any) -> None:
        if not isinstance(counters, dict) or not all(
            isinstance(items, list)
            and items
            and all(isinstance(s, str) and s.strip() for s in items)
            for items in counters.values()
        ):
            problems.append(
                f"{where}: 'counter_exemplars' must map languages to lists of sentences"
            )

    def check_text(where: str, entry: dict, key: str) -> None:
        if labels_only and key == "definition" and isinstance(entry.get(key, ""), str):
            return
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            problems.append(f"{where}: {key!r} must be a non-empty string")

    none = data.get("none")
    if labels_only and none is None:
        pass
    elif not isinstance(none, dict) or none.get("id") != "none":
        problems.append("'none' must be an entry with id 'none' and exemplars of harmless posts")
    else:
        check_text("none", none, "definition")
        check_exemplars("none", none.get("exemplars"))
    narratives = data.get("narratives")
    if not isinstance(narratives, list) or not narratives:
        problems.append("'narratives' must be a non-empty list")
        return problems
    seen: set[str] = {"none"}
    for i, narrative in enumerate(narratives):
        where = f"narratives[{i}]"
        if not isinstance(narrative, dict):
            problems.append(f"{where} must be an object")
            continue
        nid = narrative.get("id")
        if not isinstance(nid, str) or not _ID.match(nid):
            problems.append(f"{where}: id {nid!r} must match {_ID.pattern}")
            continue
        where = f"narrative {nid!r}"
        if nid in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(nid)
        for key in ("name", "definition"):
            check_text(where, narrative, key)
        counters = [narrative, *(c for c in narrative.get("children") or [] if isinstance(c, dict))]
        if stance:
            check_text(where, narrative, "counter_definition")
            if not any(c.get("counter_exemplars") for c in counters):
                problems.append(
                    f"{where}: no 'counter_exemplars' (sentences that argue against it), "
                    "on the narrative or its sub-narratives"
                )
        for entry in counters:
            if entry.get("counter_exemplars") is not None:
                check_counter_exemplars(where, entry.get("counter_exemplars"))
        for ref in narrative.get("sources", []):
            if ref not in source_ids:
                problems.append(f"{where}: cites unknown source {ref!r}")
        if not narrative.get("sources") and not labels_only:
            problems.append(f"{where}: cite at least one source")
        children = narrative.get("children")
        if labels_only and children == []:
            continue
        if not isinstance(children, list) or not children:
            problems.append(f"{where}: 'children' must list its sub-narratives")
            continue
        for j, child in enumerate(children):
            cwhere = f"{where} child {j}"
            cid = child.get("id") if isinstance(child, dict) else None
            if not isinstance(cid, str) or not cid.startswith(nid + "."):
                problems.append(f"{cwhere}: id {cid!r} must be '{nid}.<name>'")
                continue
            if not _ID.match(cid[len(nid) + 1 :]):
                problems.append(f"{cwhere}: id {cid!r}: after the dot, match {_ID.pattern}")
            if cid in seen:
                problems.append(f"{cwhere}: duplicate id {cid!r}")
            seen.add(cid)
            for key in ("name", "definition"):
                check_text(f"sub-narrative {cid!r}", child, key)
            if "counter_definition" in child:
                check_text(f"sub-narrative {cid!r}", child, "counter_definition")
            check_exemplars(f"sub-narrative {cid!r}", child.get("exemplars"))
    return problems


def advice(data: dict[str, Any]) -> list[str]:
    """What a valid taxonomy document lacks that the current schema offers, with the fix
    (``narratives taxonomy validate`` prints it; loading it works all the same)."""
    if data.get("kind") == "labels" or data.get("schema") == SCHEMA:
        return []
    return [
        f"schema {data.get('schema')!r} has no opposing stance, which a tagger needs to tell "
        "a post that argues against a narrative from one that pushes it. To add it, set "
        f"'schema' to {SCHEMA!r} and give every narrative a "
        "'counter_definition' (what arguing against it means) and 'counter_exemplars' "
        "(sentences that take the other side of the same subject, per language: "
        f"{', '.join(REQUIRED_LANGUAGES)} at least)"
    ]


def _node(entry: dict[str, Any], parent: str | None = None) -> Node:
    return Node(
        id=entry["id"],
        name=entry["name"],
        definition=entry.get("definition", ""),
        parent=parent,
        exemplars={k: list(v) for k, v in (entry.get("exemplars") or {}).items()},
        sources=tuple(entry.get("sources", ())),
        counter_exemplars={k: list(v) for k, v in (entry.get("counter_exemplars") or {}).items()},
        counter_definition=entry.get("counter_definition", ""),
    )


def _parse(data: dict[str, Any], digest: str) -> Taxonomy:
    nodes: list[Node] = []
    for narrative in data["narratives"]:
        nodes.append(_node(narrative))
        nodes.extend(_node(child, narrative["id"]) for child in narrative["children"])
    none = data.get("none") or {"name": "No narrative", "definition": "", "exemplars": {}}
    return Taxonomy(
        id=data["id"],
        version=data["version"],
        title=data["title"],
        nodes=tuple(nodes),
        none=Node("none", none["name"], none["definition"], exemplars=dict(none["exemplars"])),
        sources=tuple(data["sources"]),
        digest=digest,
        document=data,
    )


def read_document(path: str | Path | None) -> dict[str, Any]:
    """The JSON document of a taxonomy file (the default one when ``path`` is None)."""
    if path is None or str(path) == DEFAULT_TAXONOMY:
        text = (
            resources.files("narratives.tagging")
            .joinpath(f"taxonomies/{DEFAULT_TAXONOMY}.json")
            .read_text("utf-8")
        )
        where = f"the default taxonomy ({DEFAULT_TAXONOMY})"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"taxonomy file not found: {str(p)!r}")
        try:
            text = p.read_text("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"taxonomy {str(p)!r} is not UTF-8 text: {exc}") from None
        where = repr(str(p))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"taxonomy {where} is not valid JSON: {exc}") from None
    return data


def check_file(path: str | Path) -> tuple[list[str], list[str], Taxonomy | None]:
    """``narratives taxonomy validate``: the problems of a taxonomy file (see
    :func:`validate`), what it lacks that the current schema offers (:func:`advice`), and
    the taxonomy when there are no problems."""
    document = read_document(path)
    problems = validate(document)
    return problems, advice(document), None if problems else load_taxonomy(path)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Read and check a taxonomy; ``None`` or ``"china-cib"`` is the shipped default."""
    return taxonomy_from_document(read_document(path), str(path or DEFAULT_TAXONOMY))


def taxonomy_from_document(data: dict[str, Any], where: str = "document") -> Taxonomy:
    """Check a taxonomy document and build the :class:`Taxonomy`."""
    problems = validate(data)
    if problems:
        shown = "\n  - ".join(problems[:20])
        raise InputError(
            f"taxonomy {where} is invalid ({len(problems)} problems; "
            f"check it with `narratives taxonomy validate`):\n  - {shown}"
        )
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return _parse(data, hashlib.sha256(canonical).hexdigest())


__all__ = [
    "DEFAULT_TAXONOMY",
    "Node",
    "Taxonomy",
    "advice",
    "check_file",
    "load_taxonomy",
    "read_document",
    "taxonomy_from_document",
    "validate",
]
