"""Language of a post: script rules first, Lingua (``lingua-language-detector``) after.

Lingua's n-gram models (1- to 5-grams, 75 languages, inside its wheel) are the most
accurate on short text of the libraries that work offline; langdetect, used before, knows
neither Kazakh nor Malay and is weak on one- and two-word posts (``narratives eval
langid`` measures the three side by side). The rules below fix what the script already
tells, and name languages Lingua lacks:

* no letters at all (emoji, URLs, numbers, mentions only): ``und`` with score 0;
* kana make up at least ``KANA_MIN_SHARE`` of the CJK letters: ``ja``;
* Hangul makes up at least ``HANGUL_MIN_SHARE`` of the CJK letters: ``ko``;
* otherwise Han characters, when they weigh at least half of the letters (a Han
  character counts ``HAN_WEIGHT`` times, as it carries a word where Latin letters
  carry a sound): ``zh``; a ``ja`` or ``ko`` guess on text without kana or Hangul is read
  as ``zh``;
* a script used by one language (Thai, Greek, Khmer, Burmese, ...) that makes up most of
  the letters: that language;
* letters only one language of the region uses: Uyghur's ``ې ۆ ۇ ۈ`` in Arabic script
  (``ug``), Tajik's ``ҷ ӣ ӯ`` (``tg``), Uzbek's ``ў``/``ҳ`` in Cyrillic or ``oʻ``/``gʻ`` in
  Latin (``uz``), and Kyrgyz's ``ң`` in Cyrillic without any of Kazakh's own letters
  ``ә ғ қ ұ һ і`` (``ky``);
* the rest goes to Lingua's high-accuracy mode, on the text without URLs, e-mail
  addresses, mentions and hashtags, and without the capitalised words inside a sentence
  where three lowercase words remain (:func:`lingua_text`): names (Gu Ailing, Bing Dwen
  Dwen, Nuku'alofa, Navalny) and run-together hashtags made Lingua read English news as
  Tagalog, Latin or Yoruba; nor the Han, kana or Hangul of a post the rules did not
  give to Chinese, Japanese or Korean (an English post with a Chinese title after it).
  Cyrillic text with ``ө`` or ``ү`` but none of Kazakh's own
  letters is Kyrgyz where Lingua, which knows no Kyrgyz, answers Kazakh or a language
  without those letters (Russian...), or Mongolian on text with a word only Kyrgyz
  writes (жана, үчүн, менен...).

Codes are ISO 639-1 (``zh`` for both simplified and traditional Chinese). The score is
Lingua's confidence of its answer (its share of the candidates' probability), or for a
rule the share of letters in that script.

``languages`` restricts the candidates (``("en", "zh", "ru", "kk")``): a rule whose
language is not among them gives way to Lingua over the candidates, and a text none of
them can be is ``und``. Fewer candidates is faster and removes confusions (Malay and
Indonesian, Bosnian, Croatian and Serbian).

Lingua loads a language's models on first use, once per process; with every language's
high-accuracy models loaded it holds about 1 GB (``benchmarks/bench_langid.py`` prints
the figure). Its low-accuracy mode (trigrams only) would not hold less once short posts
come, which need the high-accuracy models, so it is not used.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import regex

from narratives.errors import InputError

UNDETERMINED = "und"
KANA_MIN_SHARE = 0.05
HANGUL_MIN_SHARE = 0.05
HAN_WEIGHT = 3
#: Lingua reads at most this many characters of a post; more adds time, not accuracy.
MAX_CHARS = 1000
#: capitalised words inside a sentence are left out of what Lingua reads where at least
#: this many lowercase words remain
NAMES_MIN_LOWERCASE_WORDS = 3
#: Kyrgyz is told from Kazakh by the absence of Kazakh's own letters, which a word or two
#: may lack: the Kyrgyz rules need this many letters
KYRGYZ_MIN_LETTERS = 20
#: the version of these rules; with Lingua's version and the candidates it names the
#: identifier (:func:`identifier_id`), which keys the languages kept in the text cache
RULES_VERSION = 5

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
_ARABIC = regex.compile(r"\p{Arabic}")
_CYRILLIC = regex.compile(r"\p{Cyrillic}")
_LATIN = regex.compile(r"\p{Latin}")
#: Uyghur's vowels ې ۆ ۇ ۈ, which Arabic, Persian and Urdu do not write; Sorani Kurdish
#: writes ۆ too, with its own ێ ڵ ڕ beside it
_UYGHUR = regex.compile("[\u06d0\u06c6\u06c7\u06c8]")
_SORANI = regex.compile("[\u06ce\u06b5\u0695]")
_TAJIK = regex.compile("[ҷҶӣӢӯӮ]")
#: Uzbek's ҳ, or its ў with қ or ғ (Belarusian writes ў, never қ ғ ҳ; Kazakh writes
#: қ ғ and һ, never ў ҳ)
_UZBEK_CYRILLIC_H = regex.compile("[ҳҲ]")
_UZBEK_CYRILLIC_U = regex.compile("[ўЎ]")
_UZBEK_CYRILLIC_KG = regex.compile("[қҚғҒ]")
_NOT_UZBEK_CYRILLIC = regex.compile("[іІїЇәӘұҰңҢөӨүҮ]")
#: Uzbek's Latin oʻ and gʻ: with ʻ or ‘ they are Uzbek's own; with an apostrophe they
#: count from two on, with a q or an x in the text, and not as Welsh's o'r nor Ganda's
#: ng' (English writes o'clock, and O'Brien with a capital after)
_UZBEK_LATIN_OWN = regex.compile("(?<!n)[oOgG][\u02bb\u2018](?=\\p{Ll})")
_UZBEK_LATIN = regex.compile("(?<!n)[oOgG][\u02bb\u2018\u2019'`](?!r\\b)(?=\\p{Ll})")
#: Uzbek writes q and x often (qonun, xalq); Welsh (o’u) and Ganda (g’omu) never
_UZBEK_QX = regex.compile("[qQxX]")
_KAZAKH_OWN = regex.compile("[әӘғҒқҚұҰһҺіІ]")
_KYRGYZ_NG = regex.compile("[ңҢ]")
_KYRGYZ_VOWELS = regex.compile("[өӨүҮ]")
#: words Kyrgyz writes and Mongolian does not (and, for, with, today, about, new...),
#: for Cyrillic text Lingua, which knows no Kyrgyz, reads as Mongolian
_KYRGYZ_WORDS = regex.compile(
    r"(?<!\p{L})(?:жана|үчүн|менен|деп|болуп|экен|дагы|бүгүн|боюнча|жаңы|бирок)(?!\p{L})",
    regex.I,
)

#: the languages Lingua knows, by ISO 639-1 code (filled on first use)
_LINGUA_CODES: frozenset[str] | None = None
#: those the rules name that Lingua does not
RULE_LANGUAGES = frozenset({"km", "lo", "my", "kn", "ml", "si", "bo", "am", "ug", "tg", "uz", "ky"})

_HASHTAG = regex.compile(r"(?<!\w)#\w+")
_CJK = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]+")
_WORD = regex.compile(r"\p{L}[\p{L}\p{M}'’-]*")
_SENTENCE_END = (".", "!", "?", ":", '"', "“", "«", "»", "(", "[")

_detectors: dict[frozenset[str] | None, Any] = {}
_lock = threading.Lock()


def lingua_languages() -> frozenset[str]:
    """ISO 639-1 codes of the languages Lingua's models know."""
    global _LINGUA_CODES
    if _LINGUA_CODES is None:
        from lingua import Language

        _LINGUA_CODES = frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all())
    return _LINGUA_CODES


def known_languages() -> frozenset[str]:
    """Every code :func:`detect_language` can give (besides ``und``)."""
    return lingua_languages() | RULE_LANGUAGES


def parse_languages(languages: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Candidate languages from ``"en,zh,ru,kk"`` or a list: sorted, checked codes (None:
    every language)."""
    if languages is None:
        return None
    items = languages.split(",") if isinstance(languages, str) else list(languages)
    codes = sorted({str(code).strip().lower() for code in items if str(code).strip()})
    if not codes:
        raise InputError("--languages is empty: name at least one ISO 639-1 code, e.g. en,zh")
    known = known_languages()
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise InputError(
            f"unknown language code(s) {', '.join(map(repr, unknown))}: use ISO 639-1 codes "
            f"of these languages: {', '.join(sorted(known))}"
        )
    return tuple(codes)


def identifier_id(languages: Sequence[str] | None = None) -> str:
    """What identifies the language identifier: rules, Lingua version and candidates."""
    from importlib.metadata import version

    candidates = "all" if languages is None else ",".join(parse_languages(languages) or ())
    return f"rules-{RULES_VERSION}+lingua-{version('lingua-language-detector')}:{candidates}"


def _detector(candidates: frozenset[str] | None) -> Any:
    """Lingua's detector over ``candidates`` (None: all), built once per process."""
    key = candidates
    detector = _detectors.get(key)
    if detector is None:
        with _lock:
            detector = _detectors.get(key)
            if detector is None:
                from lingua import IsoCode639_1, LanguageDetectorBuilder

                if candidates is None:
                    builder = LanguageDetectorBuilder.from_all_languages()
                else:
                    codes = [IsoCode639_1.from_str(code) for code in sorted(candidates)]
                    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                detector = _detectors[key] = builder.build()
    return detector


def detect_language(text: str | None, languages: Sequence[str] | None = None) -> tuple[str, float]:
    """Language code and score of one post; ``("und", 0.0)`` when it has no letters."""
    langs, scores = detect_languages([text], languages)
    return langs[0], float(scores[0])


def detect_languages(
    texts: Iterable[str | None], languages: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Codes and float32 scores of ``texts``; ``languages``: the candidates (None: all).

    The texts that no rule settles go to Lingua together, on all cores."""
    allowed = None if languages is None else frozenset(parse_languages(languages) or ())
    langs: list[str] = []
    scores: list[float] = []
    pending: list[tuple[int, str, bool]] = []
    for i, text in enumerate(texts):
        lang, score, clean, kyrgyz_like = _by_rules(text, allowed)
        langs.append(lang)
        scores.append(score)
        if clean is not None:
            pending.append((i, clean, kyrgyz_like))
    lingua = lingua_languages() if allowed is None else allowed & lingua_languages()
    if pending and lingua:  # (with no candidate Lingua knows, they stay und)
        detector = _detector(None if allowed is None else frozenset(lingua))
        found = detector.compute_language_confidence_values_in_parallel(
            [lingua_text(clean) for _, clean, _ in pending]
        )
        for (i, clean, kyrgyz_like), values in zip(pending, found):
            langs[i], scores[i] = _answer(values, clean, kyrgyz_like, allowed)
    return langs, np.asarray(scores, dtype=np.float32)


def lingua_text(clean: str) -> str:
    """What Lingua reads of a post (already without URLs, e-mail addresses and
    mentions): no Han, kana or Hangul and no hashtags, each where other letters remain,
    and no capitalised word that does not begin a sentence, where
    ``NAMES_MIN_LOWERCASE_WORDS`` lowercase words remain.

    Names carry the sound of their own language (pinyin, Russian, Tongan), not the
    post's: on the English posts of the state-media pages Lingua read 62 of 4,151 as
    another language, 20 without them; on Lingua's test sentences it gains 0.6 points
    (German, whose nouns are capitalised, loses 1)."""
    # Han, kana or Hangul that the rules found too few of to name the text: another
    # language's words mixed in (a Chinese title after an English one), which would
    # make Lingua answer Chinese
    without_cjk = _CJK.sub(" ", clean)
    if _LETTER.search(without_cjk):
        clean = without_cjk
    text = _HASHTAG.sub(" ", clean)
    if not _LETTER.search(text):
        return clean.replace("#", " ")
    words = list(_WORD.finditer(text))
    if sum(not w.group()[0].isupper() for w in words) < NAMES_MIN_LOWERCASE_WORDS:
        return text
    kept, last = [], 0
    for i, word in enumerate(words):
        if not word.group()[0].isupper():
            continue
        if i == 0 or text[: word.start()].rstrip().endswith(_SENTENCE_END):
            continue  # a sentence's first word
        kept.append(text[last : word.start()])
        last = word.end()
    kept.append(text[last:])
    return "".join(kept)


def _by_rules(
    text: str | None, allowed: frozenset[str] | None
) -> tuple[str, float, str | None, bool]:
    """(language, score, None, False) where a rule settles the text; otherwise
    (``und``, 0, the text Lingua is to read, whether a ``kk`` answer means Kyrgyz)."""
    if not text:
        return UNDETERMINED, 0.0, None, False
    clean = _NOISE.sub(" ", text[: MAX_CHARS * 4])
    n_letters = len(_LETTER.findall(clean))  # letters and their combining marks
    if n_letters == 0:
        return UNDETERMINED, 0.0, None, False
    n_cyrillic = len(_CYRILLIC.findall(clean))
    for lang, score in _script_rules(clean, n_letters, n_cyrillic):
        if allowed is None or lang in allowed:
            return lang, score, None, False
    kyrgyz_like = (
        n_letters >= KYRGYZ_MIN_LETTERS
        and n_cyrillic * 2 >= n_letters
        and _KYRGYZ_VOWELS.search(clean) is not None
        and _KAZAKH_OWN.search(clean) is None
        and (allowed is None or "ky" in allowed)
    )
    return UNDETERMINED, 0.0, clean[:MAX_CHARS].strip(), kyrgyz_like


def _script_rules(clean: str, n_letters: int, n_cyrillic: int) -> Iterable[tuple[str, float]]:
    """The languages the script says, most certain first (``n_letters`` letters,
    ``n_cyrillic`` of them Cyrillic)."""
    n_han = len(_HAN.findall(clean))
    n_kana = len(_KANA.findall(clean))
    n_hangul = len(_HANGUL.findall(clean))
    n_cjk = n_han + n_kana + n_hangul
    if n_cjk:
        if n_kana / n_cjk >= KANA_MIN_SHARE:
            yield "ja", _share(n_han + n_kana, n_letters)
        if n_hangul / n_cjk >= HANGUL_MIN_SHARE:
            yield "ko", _share(n_han + n_hangul, n_letters)
        weighted = n_han * HAN_WEIGHT
        if weighted * 2 >= n_letters - n_han + weighted:
            yield "zh", _share(weighted, n_letters - n_han + weighted)
    for lang, pattern in _SINGLE_LANGUAGE_SCRIPTS.items():
        n = len(pattern.findall(clean))
        if n * 2 >= n_letters:
            yield lang, _share(n, n_letters)
    n_arabic = len(_ARABIC.findall(clean))
    if n_arabic * 2 >= n_letters and _UYGHUR.search(clean) and not _SORANI.search(clean):
        yield "ug", _share(n_arabic, n_letters)
    if n_cyrillic * 2 >= n_letters:
        share = _share(n_cyrillic, n_letters)
        if _TAJIK.search(clean):
            yield "tg", share
        if not _NOT_UZBEK_CYRILLIC.search(clean) and (
            _UZBEK_CYRILLIC_H.search(clean)
            or (_UZBEK_CYRILLIC_U.search(clean) and _UZBEK_CYRILLIC_KG.search(clean))
        ):
            yield "uz", share
        if (
            n_letters >= KYRGYZ_MIN_LETTERS
            and _KYRGYZ_NG.search(clean)
            and not _KAZAKH_OWN.search(clean)
        ):
            yield "ky", share
    n_latin = len(_LATIN.findall(clean))
    if n_latin * 2 >= n_letters and (
        _UZBEK_LATIN_OWN.search(clean)
        or (len(_UZBEK_LATIN.findall(clean)) >= 2 and _UZBEK_QX.search(clean))
    ):
        yield "uz", _share(n_latin, n_letters)


def _answer(
    values: list[Any], clean: str, kyrgyz_like: bool, allowed: frozenset[str] | None
) -> tuple[str, float]:
    """Lingua's best candidate as a code and score (``und`` when it finds none)."""
    if not values or values[0].value <= 0:
        return UNDETERMINED, 0.0
    best = values[0]
    lang = best.language.iso_code_639_1.name.lower()
    if lang in ("zh", "ja", "ko"):
        # The rules found too few kana or Hangul for Japanese or Korean, and too few Han
        # to call it Chinese outright: Han there make it Chinese still.
        lang = "zh" if _HAN.search(clean) else UNDETERMINED
        if lang == UNDETERMINED:
            return lang, 0.0
    if kyrgyz_like and (lang != "mn" or _KYRGYZ_WORDS.search(clean)):
        lang = "ky"
    if allowed is not None and lang not in allowed:
        return UNDETERMINED, 0.0
    return lang, round(float(best.value), 4)


def _share(part: int, whole: int) -> float:
    return round(min(1.0, part / whole), 4)
