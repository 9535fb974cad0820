"""narratives: find pages that pivot, with multilingual embeddings of their posts.

>>> import narratives
>>> result = narratives.pipeline.score("posts.jsonl")          # doctest: +SKIP
>>> result.posts[["post_id", "lang", "status"]]       # doctest: +SKIP
"""

from importlib import metadata

from narratives.embedding.embedder import Embedder
from narratives.embedding.langid import detect_language, detect_languages
from narratives.errors import InputError, ModelError, NarrativesError, OutputError
from narratives.io.read import ColumnMapping, ReadResult, read_posts
from narratives.pipeline.score import ScoreResult, detect_pivots, load_scored, score
from narratives.pivots.detector import PivotConfig, PivotDetector

__version__ = metadata.version("narratives")

__all__ = [
    "ColumnMapping",
    "Embedder",
    "InputError",
    "ModelError",
    "NarrativesError",
    "OutputError",
    "PivotConfig",
    "PivotDetector",
    "ReadResult",
    "ScoreResult",
    "__version__",
    "detect_language",
    "detect_languages",
    "detect_pivots",
    "load_scored",
    "read_posts",
    "score",
]
