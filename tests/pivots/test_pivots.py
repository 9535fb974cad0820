"""Pivot detection on generated timelines with known change points (seeded, like ruptures'
pw_constant): each kind, bursts, few posts, determinism. No model needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from narratives.pivots.detector import PivotConfig, PivotDetector
from narratives.pivots.topics import TOPICS

K = len(TOPICS)
DAY = np.timedelta64(1, "D")


def regime(n: int, topic: int, lang: str, *, noise_lang: float = 0.0) -> dict:
    return {"n": n, "topic": topic, "lang": lang, "noise_lang": noise_lang}


def make_page(page_id: str, regimes: list[dict], seed: int, gap_days: float = 0.0):
    """Posts and topic profiles of one page; ``gap_days`` of silence before each regime
    after the first. Each post's profile is a Dirichlet draw centred on its regime's topic
    (about half the mass, the rest spread), like real posts' profiles."""
    rng = np.random.default_rng(seed)
    profiles, langs, times = [], [], []
    t = np.datetime64("2022-01-01T00:00:00", "us")
    for i, r in enumerate(regimes):
        if i and gap_days:
            t = t + np.timedelta64(int(gap_days * 86400), "s")
        alpha = np.full(K, 0.15)
        alpha[r["topic"]] = 5.0
        profiles.append(rng.dirichlet(alpha, size=r["n"]))
        for _ in range(r["n"]):
            t = t + np.timedelta64(int(rng.exponential(6 * 3600)), "s")
            times.append(t)
            noisy = rng.random() < r["noise_lang"]
            langs.append(rng.choice(["en", "fr", "de", "nl"]) if noisy else r["lang"])
    n = len(times)
    posts = pd.DataFrame(
        {
            "post_id": [f"{page_id}-{i}" for i in range(n)],
            "page_id": page_id,
            "created_at": pd.to_datetime(times, utc=True),
            "source_row": np.arange(n),
            "status": "ok",
            "lang": langs,
        }
    )
    return posts, np.vstack(profiles).astype(np.float32)


def detect(*pages):
    posts = pd.concat([p for p, _ in pages], ignore_index=True)
    posts["source_row"] = np.arange(len(posts))
    profiles = np.vstack([f for _, f in pages])
    return PivotDetector().fit(posts, profiles)


@pytest.mark.parametrize("seed", range(5))
def test_topic_pivot_same_language(seed):
    d = detect(make_page("p", [regime(40, 0, "en"), regime(40, 7, "en")], seed))
    (row,) = d.pivots_.itertuples()
    assert row.kind == "topic" and abs(row.position - 40) <= 2
    assert (row.before_lang, row.after_lang) == ("en", "en")


@pytest.mark.parametrize("seed", range(5))
def test_language_pivot_same_topic(seed):
    d = detect(make_page("p", [regime(30, 3, "fr"), regime(30, 3, "en")], seed))
    (row,) = d.pivots_.itertuples()
    assert row.kind == "language" and row.position == 30
    assert row.language_shift == 1.0 and row.topic_shift < 0.45


@pytest.mark.parametrize("seed", range(5))
def test_topic_and_language_pivot_with_dormancy(seed):
    d = detect(make_page("p", [regime(25, 0, "zh"), regime(25, 12, "en")], seed, gap_days=30))
    (row,) = d.pivots_.itertuples()
    assert row.kind == "topic+language" and row.position == 25
    assert 30 <= row.dormancy_days < 33
    assert row.magnitude > 0.7
    assert len(row.before_examples) == 3 and all(e.startswith("p-") for e in row.after_examples)
    assert max(int(e.split("-")[1]) for e in row.before_examples) < 25


def test_two_pivots_in_one_page():
    page = make_page("p", [regime(40, 0, "en"), regime(40, 7, "en"), regime(40, 7, "ru")], 3)
    d = detect(page)
    assert [(r.kind, r.position) for r in d.pivots_.itertuples()] == [
        ("topic", 40),
        ("language", 80),
    ]


@pytest.mark.parametrize("burst", [1, 2, 3, 4, 6])
def test_reverting_burst_is_not_a_pivot(burst):
    regimes = [regime(60, 2, "en"), regime(burst, 9, "ru"), regime(60, 2, "en")]
    d = detect(make_page("p", regimes, seed=burst))
    assert d.pivots_.empty


def test_a_news_run_on_one_story_is_a_burst():
    """A news page that covers one story for 30 posts, then goes back: no pivot."""
    regimes = [regime(200, 16, "en"), regime(30, 26, "en"), regime(200, 16, "en")]
    assert detect(make_page("news", regimes, seed=5)).pivots_.empty
    # the same run at the end of the page is where the page now is: a pivot
    d = detect(make_page("news", [*regimes[:2], regime(200, 26, "en")], seed=5))
    assert [(r.kind, r.position) for r in d.pivots_.itertuples()] == [("topic", 200)]


@pytest.mark.parametrize("seed", range(20))
def test_stable_pages_stay_quiet(seed):
    """A page that mixes several subjects every day (a news page) and a page with noisy
    language labels get no pivot, whatever their size."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(8, 400))
    alpha = np.full(K, 0.15)
    alpha[[3, 15, 16, 19]] = 1.5
    profiles = rng.dirichlet(alpha, size=n).astype(np.float32)
    posts, _ = make_page("news", [regime(n, 0, "en", noise_lang=0.15)], seed)
    spam = make_page("spam", [regime(int(rng.integers(8, 200)), 3, "en", noise_lang=0.3)], seed)
    d = detect((posts, profiles), spam)
    assert d.pivots_.empty
    assert d.page_status_ == {"news": "ok", "spam": "ok"}


@pytest.mark.parametrize("side", [5, 6, 8])
def test_few_posts_each_side(side):
    d = detect(make_page("p", [regime(side, 0, "en"), regime(side, 20, "zh")], side))
    assert [(r.kind, r.position) for r in d.pivots_.itertuples()] == [("topic+language", side)]


def test_too_few_posts():
    d = detect(make_page("tiny", [regime(3, 0, "en"), regime(4, 20, "zh")], 0))
    assert d.pivots_.empty
    assert d.page_status_ == {"tiny": "too few posts (7 < 8)"}


def test_deterministic_and_independent_of_other_pages():
    a = make_page("a", [regime(50, 1, "en"), regime(50, 8, "en")], 1)
    b = make_page("b", [regime(30, 4, "ko"), regime(30, 4, "zh")], 2)
    first = detect(a, b).pivots_
    again = detect(a, b).pivots_
    pd.testing.assert_frame_equal(first, again)
    alone = detect(a).pivots_
    pd.testing.assert_frame_equal(
        first[first.page_id == "a"].reset_index(drop=True), alone.reset_index(drop=True)
    )
    reordered = detect(b, a).pivots_
    assert sorted(map(tuple, reordered[["page_id", "position", "kind"]].values)) == sorted(
        map(tuple, first[["page_id", "position", "kind"]].values)
    )


def test_worker_processes_give_the_same_pivots(tmp_path):
    """Pages shared among worker processes: the same pivots, statuses and evidence (the
    narrative tags each side included) as in one process, with the embeddings in memory
    or in a run's vectors file (which the workers read themselves)."""
    from narratives.rowfile import RowFile

    pages = [
        make_page(f"p{i}", [regime(30, i % K, "en"), regime(25, (i + 5) % K, "zh")], i)
        for i in range(6)
    ] + [make_page("short", [regime(5, 2, "en")], 9)]
    posts = pd.concat([p for p, _ in pages], ignore_index=True)
    posts["source_row"] = np.arange(len(posts))
    posts["narratives"] = [
        [{"id": "us_decline", "score": 0.9}] if lang == "zh" else [] for lang in posts["lang"]
    ]
    profiles = np.vstack([f for _, f in pages])
    emb = embed(posts, profiles.argmax(axis=1), 7)
    one = PivotDetector(n_jobs=1).fit(posts, profiles, emb)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("narratives.pivots.detector._BATCH_POSTS", 60)  # a batch per page or so
        two = PivotDetector(n_jobs=2).fit(posts, profiles, emb)
        vectors = RowFile(tmp_path / "vectors.f32", *emb.shape)
        vectors[:] = emb
        from_file = PivotDetector(n_jobs=2).fit(posts, profiles, vectors)
        profiles_only = PivotDetector(n_jobs=2).fit(posts, profiles)
    assert len(one.pivots_) == 6
    pd.testing.assert_frame_equal(one.pivots_, two.pivots_)
    pd.testing.assert_frame_equal(one.pivots_, from_file.pivots_)
    assert one.page_status_ == two.page_status_ == from_file.page_status_
    without_embeddings = PivotDetector(n_jobs=1).fit(posts, profiles)
    pd.testing.assert_frame_equal(without_embeddings.pivots_, profiles_only.pivots_)
    assert one.page_status_["short"].startswith("too few posts")
    assert all(row[0]["id"] == "us_decline" for row in one.pivots_["after_narratives"])
    assert PivotDetector()._jobs(100) == 1  # small inputs stay in this process


def test_untimed_and_rejected_posts_are_left_out():
    posts, profiles = make_page("p", [regime(20, 0, "en"), regime(20, 7, "en")], 0)
    posts.loc[5, "created_at"] = pd.NaT
    posts.loc[6, "status"] = "rejected"
    d = PivotDetector().fit(posts, profiles)
    (row,) = d.pivots_.itertuples()
    assert row.position == 18  # two fewer posts before the change


def test_config_is_checked():
    with pytest.raises(ValueError, match="min_posts"):
        PivotConfig(min_posts=1)
    with pytest.raises(ValueError, match="alpha"):
        PivotDetector(PivotConfig(alpha=1.5))
    with pytest.raises(RuntimeError, match="not fitted"):
        PivotDetector().summary()
    assert PivotDetector(PivotConfig(min_posts=6)).config.min_posts == 6


# -- with embeddings: what the detector reads on real data ------------------------------

DIM = 96
_TOPIC_DIRS = np.random.default_rng(42).standard_normal((K, DIM))
_LANG_DIRS = dict(
    zip(["en", "fr", "zh", "ru"], np.random.default_rng(43).standard_normal((4, DIM)))
)


def embed(posts: pd.DataFrame, topics: np.ndarray, seed: int, story: np.ndarray | None = None):
    """Synthetic sentence embeddings: the post's topic direction, its language's direction
    (stronger than the topic, as in e5), an optional story direction, and noise; unit
    length."""
    rng = np.random.default_rng(seed)
    x = _TOPIC_DIRS[topics] + 1.5 * np.vstack([_LANG_DIRS[lang] for lang in posts["lang"]])
    if story is not None:
        x = x + story
    x = x + 0.9 * rng.standard_normal(x.shape)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def detect_embedded(posts, profiles, embeddings):
    return PivotDetector().fit(posts, profiles, embeddings)


@pytest.mark.parametrize("seed", range(3))
def test_embeddings_language_switch_is_a_language_pivot(seed):
    """Same subject, new language: the embeddings move a lot (language identity), yet the
    change is a language pivot, not a topic one."""
    posts, profiles = make_page("p", [regime(30, 3, "fr"), regime(30, 3, "en")], seed)
    emb = embed(posts, np.full(60, 3), seed)
    (row,) = detect_embedded(posts, profiles, emb).pivots_.itertuples()
    assert row.kind == "language" and row.position == 30


@pytest.mark.parametrize("seed", range(3))
def test_embeddings_bilingual_page_topic_change(seed):
    """A page that posts in English and Chinese all along: the language mix is no pivot,
    and a change of subject seen in only 8 posts, across both languages, is a topic pivot
    (found because each language's mean is taken out of the embeddings first)."""
    rng = np.random.default_rng(seed)
    posts, profiles = make_page("p", [regime(8, 0, "en"), regime(120, 7, "en")], seed)
    posts["lang"] = rng.choice(["en", "zh"], size=128)
    topics = np.r_[np.zeros(8, int), np.full(120, 7)]
    (row,) = detect_embedded(posts, profiles, embed(posts, topics, seed)).pivots_.itertuples()
    assert row.kind == "topic" and row.position == 8
    stable, stable_profiles = make_page("s", [regime(128, 0, "en")], seed)
    stable["lang"] = rng.choice(["en", "zh"], size=128)
    quiet = detect_embedded(stable, stable_profiles, embed(stable, np.zeros(128, int), seed))
    assert quiet.pivots_.empty


def test_embeddings_small_side_topic_pivot_is_found():
    """Six posts of another subject before 150: the embeddings find and place it."""
    posts, profiles = make_page("p", [regime(6, 0, "en"), regime(150, 7, "en")], 4)
    emb = embed(posts, np.r_[np.zeros(6, int), np.full(150, 7)], 4)
    (row,) = detect_embedded(posts, profiles, emb).pivots_.itertuples()
    assert (row.kind, row.position) == ("topic", 6)


def test_embeddings_a_run_on_one_story_at_the_start_is_no_pivot():
    """A news page's first posts cover one story (their embeddings share a direction) but
    not another subject (their topic mix moves no more than any eight of the page's posts
    do): no topic pivot, because the topic profiles do not confirm it."""
    rng = np.random.default_rng(9)
    profiles = rng.dirichlet(np.full(K, 0.02), size=300).astype(np.float32)
    posts, _ = make_page("news", [regime(300, 0, "en")], 9)
    story = np.zeros((300, DIM))
    story[:8] = 1.2 * np.random.default_rng(10).standard_normal(DIM)
    emb = embed(posts, rng.integers(0, K, size=300), 9, story)
    first = profiles[:8].mean(axis=0)
    assert 0.5 * np.abs(first - profiles[8:].mean(axis=0)).sum() >= 0.45  # large, by chance
    assert detect_embedded(posts, profiles, emb).pivots_.empty
    # the embeddings alone do separate the story: with the confirmation waived (the
    # profiles' p-value may be anything below 0.99), it is reported
    (row,) = (
        PivotDetector(PivotConfig(kind_alpha=0.99)).fit(posts, profiles, emb).pivots_.itertuples()
    )
    assert (row.kind, row.position) == ("topic", 8)


def test_null_maxima_match_a_direct_computation():
    """The running-sum kernel of the permutation tests equals splitting each shuffled copy
    by hand."""
    from narratives.pivots.signals import _null_maxima, _shuffles, positions

    rng = np.random.default_rng(0)
    x = rng.random((37, 5)).astype(np.float32)
    parts = [(slice(0, 3), "l2"), (slice(3, None), "tvd")]
    orders = _shuffles(np.random.default_rng(1), 37, 7)
    assert sorted(orders[3]) == list(range(37))
    got = _null_maxima(x, parts, orders, 4)
    for b, order in enumerate(orders):
        y = x[order].astype(np.float64)
        best = [0.0, 0.0]
        for t in positions(37, 4):
            d = y[:t].mean(axis=0) - y[t:].mean(axis=0)
            w = np.sqrt(t * (37 - t) / 37)
            best[0] = max(best[0], w * np.linalg.norm(d[:3]))
            best[1] = max(best[1], w * 0.5 * np.abs(d[3:]).sum())
        np.testing.assert_allclose([got[0][b], got[1][b]], best, rtol=1e-4)


def test_a_blocks_null_does_not_depend_on_the_tests_before_it():
    """Each block draws its shuffles from its own generator (page and block), so the
    validation may skip tests without changing the others' p-values; and 49 orders, then
    99, are the 99 drawn at once."""
    from narratives.pivots.signals import Signals

    rng = np.random.default_rng(0)
    x = rng.random((60, 6)).astype(np.float32)
    langs = np.ones((60, 1))
    profiles = rng.dirichlet(np.ones(4), size=60)

    def signals():
        return Signals(x, x, profiles, langs, (0, 123))

    alone = signals().null(10, 50, "topic_l2", 99, 4)
    busy = signals()
    busy.null(0, 60, "profiles_tvd", 99, 4)
    busy.null(0, 30, "topic_l2", 499, 4)
    np.testing.assert_array_equal(busy.null(10, 50, "topic_l2", 99, 4), alone)
    other_page = Signals(x, x, profiles, langs, (0, 124))
    assert not np.array_equal(other_page.null(10, 50, "topic_l2", 99, 4), alone)
    in_parts = signals()
    assert len(in_parts.null(10, 50, "topic_l2", 49, 4)) == 49
    np.testing.assert_array_equal(in_parts.null(10, 50, "topic_l2", 99, 4), alone)
    np.testing.assert_array_equal(
        in_parts.null(10, 50, "profiles_tvd", 499, 4),
        signals().null(10, 50, "profiles_tvd", 499, 4),
    )


def test_gram_null_maxima_match_the_running_sums():
    """The Gram-matrix kernel of a short page's topic nulls gives the running-sum kernel's
    maxima on the vectors themselves, for a block anywhere in the page."""
    from narratives.pivots.signals import _gram_null_maxima, _null_maxima, _shuffles

    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 384)).astype(np.float32) + 3.0  # far from the origin
    x[30:] += 0.5
    block = slice(12, 50)
    orders = _shuffles(np.random.default_rng(3), 38, 20)
    want = _null_maxima(x[block], [(slice(None), "l2")], orders, 4)[0]
    np.testing.assert_allclose(_null_maxima(x, [(slice(None), "l2")], orders, 4, lo=12)[0], want)
    gram = x.astype(np.float64) @ x.T.astype(np.float64)
    np.testing.assert_allclose(_gram_null_maxima(gram, orders, 4, lo=12), want, rtol=1e-4)
    np.testing.assert_allclose(_gram_null_maxima(gram[block, block], orders, 4), want, rtol=1e-4)


def test_short_pages_keep_every_distance_long_ones_the_large_ones():
    """A short page's coordinates keep the inner products of its full embeddings, its
    topic signal those of the embeddings less their language's mean; a long page's
    projection keeps the distance of a real shift."""
    from narratives.pivots.signals import Signals, _coordinates, _project, _without_language_means
    from narratives.pivots.timelines import Timeline

    rng = np.random.default_rng(0)
    scale = np.linspace(1.0, 0.05, 384)
    x = rng.standard_normal((30, 384)) * scale
    x[10:] += 2.0 * rng.standard_normal(384) * scale
    x -= x.mean(axis=0)
    coords = _coordinates(x @ x.T, 1.0)
    assert coords.shape == (30, 29)  # centred: rank n - 1
    np.testing.assert_allclose(coords @ coords.T, x @ x.T, rtol=1e-5, atol=1e-5)
    duplicated = np.vstack([x, x[:5]]) - np.vstack([x, x[:5]]).mean(axis=0)
    assert np.isfinite(_coordinates(duplicated @ duplicated.T, 1.0)).all()  # singular Gram
    langs = np.array(["en"] * 12 + ["zh"] * 18, dtype=object)
    page = Timeline("p", np.arange(30), np.arange(30), np.zeros(30), langs, np.ones((30, 4)), x)
    sig = Signals.of(page, (0, 1))
    topic = _without_language_means(x, langs)
    np.testing.assert_allclose(sig.gram, topic @ topic.T, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sig.topic @ sig.topic.T, topic @ topic.T, rtol=1e-5, atol=1e-3)
    n = 600
    x = rng.standard_normal((n, 384)) * scale
    x[n // 3 :] += 2.0 * rng.standard_normal(384) * scale
    y = _project(x, 32, 1.0)
    assert y.shape == (n, 32)
    full = np.linalg.norm(x[: n // 3].mean(axis=0) - x[n // 3 :].mean(axis=0))
    kept = np.linalg.norm(y[: n // 3].mean(axis=0) - y[n // 3 :].mean(axis=0))
    assert abs(kept - full) <= 0.05 * full


def test_a_clear_null_stops_after_a_fifth_of_the_shuffles():
    """A test whose first 20 shuffles already hold 5 or more at least as extreme is
    decided (its p-value over 99 would exceed kind_alpha and 3 alpha whatever the other 79
    hold): the rest is not drawn; a real shift draws all 99."""
    from narratives.pivots.signals import Signals

    rng = np.random.default_rng(0)
    x = rng.random((60, 6)).astype(np.float32)
    langs = np.ones((60, 1))
    profiles = rng.dirichlet(np.ones(4), size=60)
    detector = PivotDetector()
    noise = Signals(x, x, profiles, langs, (0, 1))
    p = detector._p_value(noise, 0, 60, "topic_l2", 0.0)
    assert p == 21 / 100 and noise._nulls[(0, 60)].drawn == 20  # all 20 as extreme
    shifted = x.copy()
    shifted[30:] += 3.0
    real = Signals(shifted, shifted, profiles, langs, (0, 1))
    observed = np.sqrt(30 * 30 / 60) * np.linalg.norm(shifted[:30].mean(0) - shifted[30:].mean(0))
    assert detector._p_value(real, 0, 60, "topic_l2", observed) == 1 / 100
    assert real._nulls[(0, 60)].drawn == 99


# -- rank-deficient pages: what spam and ad pages post ------------------------------------


#: e5's vectors share a large common direction (two unrelated posts score a cosine of
#: about 0.75): centred, a page's Gram matrix is small and its round-off is not
_COMMON = 2.0 * np.random.default_rng(7).standard_normal(DIM) / np.sqrt(DIM)


def repeated_page(
    page_id: str, parts: list[tuple[int, int, int, str]], n_langs_und: int = 0, seed: int = 0
):
    """A page that posts a few texts again and again: each part is (posts, distinct texts,
    topic, language), its texts' embeddings and profiles repeated exactly (the text cache
    gives a repeated text the same vector), in rotation."""
    regimes = [regime(n, topic, lang) for n, _, topic, lang in parts]
    posts, _ = make_page(page_id, regimes, 0)
    rng = np.random.default_rng(seed)
    rows, profiles = [], []
    for n, distinct, topic, lang in parts:
        alpha = np.full(K, 0.15)
        alpha[topic] = 5.0
        texts = rng.dirichlet(alpha, size=distinct)
        noise = 0.9 * rng.standard_normal((distinct, DIM))
        vectors = _TOPIC_DIRS[topic] + 1.5 * _LANG_DIRS[lang] + noise
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) + _COMMON
        which = np.arange(n) % distinct
        profiles.append(texts[which])
        rows.append(vectors[which])
    emb = np.vstack(rows)
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    if n_langs_und:
        posts.loc[: n_langs_und - 1, "lang"] = "und"
    return posts, np.vstack(profiles).astype(np.float32), emb


@pytest.mark.parametrize("n", [8, 50, 128, 129, 300])
@pytest.mark.parametrize("distinct", [1, 2, 3])
def test_a_page_repeating_a_few_texts_has_no_pivot_and_no_error(n, distinct):
    """The issue's crash: a page of 50 posts that repeats three texts made its Gram matrix
    singular beyond the ridge (Cholesky failed). Short pages (Gram path) and long ones
    (projected) alike: no pivot, status ok."""
    posts, profiles, emb = repeated_page("spam", [(n, distinct, 3, "en")])
    d = PivotDetector().fit(posts, profiles, emb)
    assert d.pivots_.empty
    assert d.page_status_ == {"spam": "ok"}


@pytest.mark.parametrize("n", [30, 200])
def test_a_pivot_between_two_repeated_sets_of_texts_is_found(n):
    """Lingerie ads repeated in Chinese, then three political texts repeated in English:
    the rank-deficient statistics still find the pivot where it is."""
    posts, profiles, emb = repeated_page("shop", [(n, 3, 0, "zh"), (n, 3, 12, "en")])
    (row,) = PivotDetector().fit(posts, profiles, emb).pivots_.itertuples()
    assert (row.kind, row.position) == ("topic+language", n)
    posts, profiles, emb = repeated_page("shop", [(n, 2, 0, "en"), (n, 2, 12, "en")])
    (row,) = PivotDetector().fit(posts, profiles, emb).pivots_.itertuples()
    assert (row.kind, row.position) == ("topic", n)


@pytest.mark.parametrize("n", [20, 140])
@pytest.mark.parametrize("seed", range(4))
def test_two_texts_in_two_languages_leave_no_topic_signal(n, seed):
    """Each language's mean taken out, a page of one text per language has nothing left
    but round-off (on which Cholesky failed): the topic signal has rank 0, a column of
    zeros, and the language change is found."""
    posts, profiles, emb = repeated_page("bi", [(n, 1, 4, "fr"), (n, 1, 4, "en")], seed=seed)
    profiles[:] = profiles[0]  # a text and its translation: one subject
    (row,) = PivotDetector().fit(posts, profiles, emb).pivots_.itertuples()
    assert (row.kind, row.position) == ("language", n)
    # alternating languages: no pivot
    posts["lang"] = np.where(np.arange(2 * n) % 2, "fr", "en")
    emb = np.where((np.arange(2 * n) % 2)[:, None].astype(bool), emb[0], emb[-1])
    d = PivotDetector().fit(posts, profiles, emb.astype(np.float32))
    assert d.pivots_.empty and d.page_status_ == {"bi": "ok"}


@pytest.mark.parametrize("seed", range(4))
def test_the_issues_spam_page_three_texts_two_languages(seed):
    """The shape of the reported crash: 50 posts repeating three texts, two of them in
    one language and one in another (the lone text's posts are all round-off once its
    language's mean is out)."""
    posts, profiles, emb = repeated_page("spam", [(50, 3, 3, "en")], seed=seed)
    posts["lang"] = np.array(["en", "en", "zh"])[np.arange(50) % 3]
    d = PivotDetector().fit(posts, profiles, emb)
    assert d.pivots_.empty and d.page_status_ == {"spam": "ok"}


@pytest.mark.parametrize("n", [12, 60, 200])
def test_pages_all_undetermined_or_in_one_language(n):
    """No language signal at all (every post ``und``, say only emoji or URLs) or one
    language throughout: the page is judged on its subject alone."""
    posts, profiles, emb = repeated_page("und", [(n, 2, 5, "en")], n_langs_und=n)
    assert (posts["lang"] == "und").all()
    d = PivotDetector().fit(posts, profiles, emb)
    assert d.pivots_.empty and d.page_status_ == {"und": "ok"}
    posts, profiles, emb = repeated_page("und", [(n, 2, 5, "en"), (n, 2, 20, "en")], 2 * n)
    (row,) = PivotDetector().fit(posts, profiles, emb).pivots_.itertuples()
    assert (row.kind, row.position, row.before_lang, row.after_lang) == ("topic", n, "und", "und")


def test_rank_revealing_coordinates():
    """The coordinates keep the Gram matrix exactly and have as many columns as it has
    rank: n - 1 for a centred page of distinct posts, the number of distinct texts less
    one for repeated ones, one column of zeros for identical posts."""
    from narratives.pivots.signals import _coordinates, _project

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 384))[np.arange(40) % 3]
    x -= x.mean(axis=0)
    coords = _coordinates(x @ x.T, 1.0)
    assert coords.shape == (40, 2)
    np.testing.assert_allclose(coords @ coords.T, x @ x.T, atol=1e-4)
    same = np.zeros((10, 10))
    assert np.array_equal(_coordinates(same, 1.0), np.zeros((10, 1)))
    # float noise far below the posts' size is no direction
    noise = 1e-14 * rng.standard_normal((10, 10))
    assert _coordinates(noise @ noise.T, 1.0).shape == (10, 1)
    y = _project(x.astype(np.float32).repeat(5, axis=0), 32, 1.0)
    assert y.shape == (200, 2)
    assert np.array_equal(_project(np.ones((200, 384), np.float32), 32, 1.0), np.zeros((200, 1)))
