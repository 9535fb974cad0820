"""narratives: find pages that pivot, with multilingual embeddings of their posts.

>>> import narratives
>>> result = narratives.score("posts.jsonl", output="out")      # doctest: +SKIP
>>> result.posts[["post_id", "lang", "top_narrative"]]           # doctest: +SKIP
>>> narratives.write_timing("out"); narratives.write_coordination("out")  # doctest: +SKIP
>>> narratives.write_report("out")                                # doctest: +SKIP

The package's folders are its pipeline stages: ``io`` (reading), ``embedding`` (language
and vectors per post), ``pivots``, ``tagging``, ``operators`` (timing, coordination),
``pipeline`` (the batch driver), ``report``, ``evaluation`` (the harnesses) and ``cli``;
``scored`` is the output folder's contract. Everything a notebook needs is named here.
"""

from importlib import metadata

from narratives.embedding.embedder import Embedder
from narratives.embedding.langid import detect_language, detect_languages
from narratives.errors import InputError, ModelError, NarrativesError, OutputError
from narratives.io.columns import ColumnMapping
from narratives.io.read import ReadResult, read_posts
from narratives.operators.coordination import (
    CoordinationConfig,
    find_coordination,
    write_coordination,
)
from narratives.operators.timing import TimingConfig, TimingEstimator, page_timing, write_timing
from narratives.pipeline.pages import detect_pivots
from narratives.pipeline.score import score, score_into
from narratives.pipeline.update import change_log, update
from narratives.pivots.detector import PivotConfig, PivotDetector
from narratives.report.build import ReportConfig, build_report, write_report
from narratives.scored import ScoredFolder, ScoreResult, load_scored
from narratives.tagging.tagger import NarrativeTagger, default_tagger
from narratives.tagging.taxonomy import Taxonomy, load_taxonomy
from narratives.tagging.trainer import Trainer, TrainingArguments

__version__ = metadata.version("narratives")

__all__ = [
    "ColumnMapping",
    "CoordinationConfig",
    "Embedder",
    "InputError",
    "ModelError",
    "NarrativeTagger",
    "NarrativesError",
    "OutputError",
    "PivotConfig",
    "PivotDetector",
    "ReadResult",
    "ReportConfig",
    "ScoreResult",
    "ScoredFolder",
    "Taxonomy",
    "TimingConfig",
    "TimingEstimator",
    "Trainer",
    "TrainingArguments",
    "__version__",
    "build_report",
    "change_log",
    "default_tagger",
    "detect_language",
    "detect_languages",
    "detect_pivots",
    "find_coordination",
    "load_scored",
    "load_taxonomy",
    "page_timing",
    "read_posts",
    "score",
    "score_into",
    "update",
    "write_coordination",
    "write_report",
    "write_timing",
]
