"""narratives: find pages that pivot, with multilingual embeddings of their posts.

>>> import narratives
>>> result = narratives.score("posts.jsonl")          # doctest: +SKIP
>>> result.posts[["post_id", "lang", "status"]]       # doctest: +SKIP
"""

from importlib import metadata

from .embed import Embedder
from .errors import InputError, ModelError, NarrativesError, OutputError
from .io import ColumnMapping, ReadResult, read_posts
from .langid import detect_language, detect_languages
from .pivots import PivotConfig, PivotDetector
from .score import ScoreResult, detect_pivots, load_scored, score

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
