"""Language of a post: script rules first, langdetect (seeded, so deterministic) after.

langdetect alone confuses Chinese with Japanese and Korean on short posts and guesses
wildly on text with no letters. The rules below fix what the script already tells:

* no letters at all (emoji, URLs, numbers, mentions only): ``und`` with score 0;
* kana make up at least ``KANA_MIN_SHARE`` of the CJK letters: ``ja``;
* Hangul makes up at least ``HANGUL_MIN_SHARE`` of the CJK letters: ``ko``;
* otherwise Han characters, when they weigh at least half of the letters (a Han
  character counts ``HAN_WEIGHT`` times, as it carries a word where Latin letters
  carry a sound): ``zh``; a ``ja`` or ``ko`` guess from langdetect on text without
  kana or Hangul is read as ``zh``;
* a script used by one language (Thai, Greek, Hebrew, Georgian, ...) that makes up
  most of the letters: that language;
* the rest goes to langdetect, on the text without URLs, e-mail addresses and mentions.

Codes are ISO 639-1 (``zh`` for both simplified and traditional Chinese). The score is
langdetect's probability, or for a script rule the share of letters in that script.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import regex

UNDETERMINED = "und"
KANA_MIN_SHARE = 0.05
HANGUL_MIN_SHARE = 0.05
HAN_WEIGHT = 3
#: langdetect reads at most this many characters of a post; more adds time, not accuracy.
MAX_CHARS = 1000
SEED = 0

_NOISE = regex.compile(
    r"(?:https?://|www\.)\S+|\S+@\S+\.\w+|(?<!\w)@\w+|&(?:amp|lt|gt|quot|#\d+);", regex.I
)
_LETTER = regex.compile(r"[\p{L}\p{M}]")
_HAN = regex.compile(r"\p{Han}")
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
_HANGUL = regex.compile(r"\p{Hangul}")
_SINGLE_LANGUAGE_SCRIPTS = {
    "th": regex.compile(r"\p{Thai}"),
    "el": regex.compile(r"\p{Greek}"),
    "he": regex.compile(r"\p{Hebrew}"),
    "ka": regex.compile(r"\p{Georgian}"),
    "hy": regex.compile(r"\p{Armenian}"),
    "km": regex.compile(r"\p{Khmer}"),
    "lo": regex.compile(r"\p{Lao}"),
    "my": regex.compile(r"\p{Myanmar}"),
    "gu": regex.compile(r"\p{Gujarati}"),
    "pa": regex.compile(r"\p{Gurmukhi}"),
    "ta": regex.compile(r"\p{Tamil}"),
    "te": regex.compile(r"\p{Telugu}"),
    "kn": regex.compile(r"\p{Kannada}"),
    "ml": regex.compile(r"\p{Malayalam}"),
    "si": regex.compile(r"\p{Sinhala}"),
    "bo": regex.compile(r"\p{Tibetan}"),
    "am": regex.compile(r"\p{Ethiopic}"),
}

_factory = None
_factory_lock = threading.Lock()


def _detector_factory():
    """langdetect's profiles, loaded once into a private factory with a fixed seed."""
    global _factory
    with _factory_lock:
        if _factory is None:
            from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

            factory = DetectorFactory()
            factory.load_profile(PROFILES_DIRECTORY)
            factory.seed = SEED
            _factory = factory
    return _factory


def _langdetect(text: str) -> tuple[str, float]:
    from langdetect.lang_detect_exception import LangDetectException

    detector = _detector_factory().create()
    detector.set_max_text_length(MAX_CHARS)
    detector.append(text)
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        return UNDETERMINED, 0.0
    return best.lang, float(best.prob)


def detect_language(text: str | None) -> tuple[str, float]:
    """Language code and score of one post; ``("und", 0.0)`` when it has no letters."""
    if not text:
        return UNDETERMINED, 0.0
    clean = _NOISE.sub(" ", text[: MAX_CHARS * 4])
    n_letters = len(_LETTER.findall(clean))  # letters and their combining marks
    if n_letters == 0:
        return UNDETERMINED, 0.0
    n_han = len(_HAN.findall(clean))
    n_kana = len(_KANA.findall(clean))
    n_hangul = len(_HANGUL.findall(clean))
    n_cjk = n_han + n_kana + n_hangul
    if n_cjk:
        if n_kana / n_cjk >= KANA_MIN_SHARE:
            return "ja", _share(n_han + n_kana, n_letters)
        if n_hangul / n_cjk >= HANGUL_MIN_SHARE:
            return "ko", _share(n_han + n_hangul, n_letters)
        weighted = n_han * HAN_WEIGHT
        if weighted * 2 >= n_letters - n_han + weighted:
            return "zh", _share(weighted, n_letters - n_han + weighted)
    for lang, pattern in _SINGLE_LANGUAGE_SCRIPTS.items():
        n = len(pattern.findall(clean))
        if n * 2 >= n_letters:
            return lang, _share(n, n_letters)
    lang, prob = _langdetect(clean)
    if lang.startswith("zh") or lang in ("ja", "ko"):
        # There is no kana or Hangul here, so a CJK guess can only be Chinese.
        lang = "zh" if n_han else UNDETERMINED
    return lang, round(prob, 4)


def _share(part: int, whole: int) -> float:
    return round(min(1.0, part / whole), 4)


def detect_languages(texts: Iterable[str | None]) -> tuple[list[str], np.ndarray]:
    """Vectorised :func:`detect_language`: codes and float32 scores."""
    langs: list[str] = []
    scores: list[float] = []
    for text in texts:
        lang, score = detect_language(text)
        langs.append(lang)
        scores.append(score)
    return langs, np.asarray(scores, dtype=np.float32)
