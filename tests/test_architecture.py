"""The package's shape: no import cycle (between modules or between stages), no private
name taken from another stage, and the public API a notebook reaches for. The layers
themselves are import-linter's contract in pyproject.toml (make lint)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
import networkx as nx
import pytest

import narratives

PACKAGE = Path(narratives.__file__).parent


def import_graph(package: str) -> nx.DiGraph:
    """Every import between the package's modules (those inside functions too)."""
    graph = grimp.build_graph(package, cache_dir=None)
    out = nx.DiGraph()
    out.add_nodes_from(graph.modules)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            out.add_edge(module, imported)
    return out


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module: each holds a cycle."""
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


def stage(module: str) -> str:
    """``narratives.pivots.detector`` -> ``pivots``; a base module is its own stage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_import_cycle_between_modules():
    assert cycles(import_graph("narratives")) == []


def test_no_import_cycle_between_stages():
    stages = nx.DiGraph()
    for a, b in import_graph("narratives").edges:
        if stage(a) != stage(b) and "narratives" not in (a, b) and stage(a) != "__main__":
            stages.add_edge(stage(a), stage(b))
    assert cycles(stages) == []


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: a package whose modules import each other in a ring."""
    root = tmp_path / "ringpkg"
    (root / "inner").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "inner" / "__init__.py").write_text("")
    (root / "a.py").write_text("from ringpkg.inner import b\n")
    (root / "inner" / "b.py").write_text("def f():\n    from ringpkg import c\n")
    (root / "c.py").write_text("import ringpkg.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles(import_graph("ringpkg")) == [["ringpkg.a", "ringpkg.c", "ringpkg.inner.b"]]
    sys.modules.pop("ringpkg", None)


def private_imports_across_stages() -> list[str]:
    """``from narratives.x.y import _name`` (or of a private module) where x is not the
    importing module's own stage."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "narratives"
            ):
                continue
            target = str(node.module)
            if stage(target) == stage(module):
                continue
            private_module = any(p.startswith("_") for p in target.split(".")[1:])
            names = [a.name for a in node.names if a.name.startswith("_")]
            names = [n for n in names if not (n.startswith("__") and n.endswith("__"))]
            if private_module or names:
                found.append(f"{module}: from {target} import {', '.join(names) or '...'}")
    return found


def test_no_private_name_crosses_stages():
    assert private_imports_across_stages() == []


def test_the_public_api():
    for name in narratives.__all__:
        assert getattr(narratives, name) is not None, name
    for name in (
        "score",
        "load_scored",
        "NarrativeTagger",
        "Taxonomy",
        "load_taxonomy",
        "Trainer",
        "TrainingArguments",
        "TimingEstimator",
        "write_timing",
        "find_coordination",
        "write_coordination",
        "write_report",
    ):
        assert name in narratives.__all__, name
    assert narratives.__version__ != "0.1.0"  # the layout is a release: see CHANGELOG.md


@pytest.mark.parametrize("stage_name", ["io", "embedding", "pivots", "tagging", "operators",
                                        "pipeline", "report", "evaluation", "cli"])  # fmt: skip
def test_each_stage_is_a_documented_subpackage(stage_name):
    init = PACKAGE / stage_name / "__init__.py"
    assert init.is_file()
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
