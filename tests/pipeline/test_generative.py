"""A generative test of the whole command line (Hypothesis): dumps of every shape real
archives have, each run through ``score``, ``pivots``, ``timing``, ``coordination``,
``report`` and the Python API, with the real model.

Every dump is built from records whose fate is known in advance (a valid record is
scored, a faulty one rejected with a reason), so that the test checks more than "no
traceback": every input row accounted for, in order, with the status it must have, and
every output file readable and matching the contract. Shapes: pages of 1 to 300 posts,
texts repeated on a page, only emoji or URLs, every language at once, all rows rejected,
one page, thousands of one-post pages, identical timestamps, posts out of order,
timestamps years apart, a burst of thousands of posts in one minute, an empty file, only
a header, in JSONL, CSV and Parquet.

The default profile (``narratives``) runs a fixed set of examples plus a few generated
ones, derandomised, so that CI is repeatable; ``--hypothesis-profile=long`` runs hundreds
of random ones (see tests/conftest.py).
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from conftest import SAMPLE
from hypothesis import example, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from narratives import schema
from narratives.cli import app

runner = CliRunner()

START = pd.Timestamp("2021-06-01T00:00:00Z")


def _sample_texts() -> list[str]:
    texts = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        try:
            text = json.loads(line).get("text")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(text, str) and text.strip():
            texts.append(text)
    return list(dict.fromkeys(texts))


#: Real texts of the sample (several languages), then short posts in the languages
#: operations write in, emoji only, URLs only, and other texts without letters.
POOL = _sample_texts()
WORLD = [
    "Алматыда жаппай наразылық басталды, полиция көшелерді жауып тастады.",  # kk
    "Бишкекте шайлоо өттү, оппозиция жыйынтыктарды тааныбайт.",  # ky
    "Toshkentda yangi metro bekati ochildi.",  # uz
    "Kerajaan Malaysia mengumumkan bantuan baharu untuk rakyat.",  # ms
    "Maraming salamat sa inyong suporta, mga kaibigan!",  # tl
    "မြန်မာနိုင်ငံတွင် မိုးများ ရွာသွန်းနေသည်။",  # my
    "ប្រទេសកម្ពុជាមានប្រាសាទជាច្រើន។",  # km
    "ئۈرۈمچىدە يېڭى مەكتەپ ئېچىلدى.",  # ug
    "Die Regierung hat neue Sanktionen angekündigt.",  # de
    "Le gouvernement a annoncé de nouvelles mesures.",  # fr
    "El gobierno anunció nuevas sanciones económicas.",  # es
    "O governo anunciou novas medidas hoje.",  # pt
    "Правительство объявило о новых санкциях.",  # ru
    "Уряд оголосив нові санкції.",  # uk
    "الحكومة أعلنت عن عقوبات جديدة اليوم.",  # ar
    "सरकार ने आज नए प्रतिबंधों की घोषणा की।",  # hi
    "รัฐบาลประกาศมาตรการใหม่วันนี้",  # th
    "Chính phủ đã công bố các biện pháp mới.",  # vi
    "정부는 오늘 새로운 조치를 발표했다.",  # ko
    "政府は本日、新たな措置を発表した。",  # ja
    "政府今天宣布了新的措施。",  # zh
    "Η κυβέρνηση ανακοίνωσε νέα μέτρα.",  # el
    "הממשלה הודיעה היום על צעדים חדשים.",  # he
    "Hükümet bugün yeni önlemler açıkladı.",  # tr
]
NO_LETTERS = [
    "🔥🔥🔥",
    "😂👍🇨🇳",
    "https://t.co/4fHpBYVrKR",
    "http://example.com/a?b=1 https://bit.ly/xyz",
    "#️⃣ 123 456",
    "!!! ... ???",
]


@dataclass
class Post:
    """One record of a dump and its expected fate."""

    values: dict[str, Any]
    ok: bool  # whether it must be scored, unless an earlier record in the file has its id


@dataclass
class Dump:
    form: str  # jsonl | csv | parquet
    posts: list[Post] = field(default_factory=list)
    raw_lines: list[tuple[int, str]] = field(default_factory=list)  # malformed, at positions
    note: str = ""

    def records(self) -> int:
        return len(self.posts) + len(self.raw_lines)


def _iso(seconds: float) -> str:
    return (START + pd.Timedelta(seconds=seconds)).isoformat()


# -- strategies --------------------------------------------------------------------------

_TIME_PATTERNS = ["spread", "identical", "burst", "years", "shuffled"]
_TEXT_PATTERNS = ["distinct", "repeated", "no_letters", "world", "random"]


@st.composite
def dumps(draw: st.DrawFn) -> Dump:
    form = draw(st.sampled_from(["jsonl", "jsonl", "csv", "parquet"]))
    n_pages = draw(st.integers(1, 6))
    sizes = [draw(st.integers(1, 300 // n_pages)) for _ in range(n_pages)]
    times = draw(st.sampled_from(_TIME_PATTERNS))
    texts = draw(st.sampled_from(_TEXT_PATTERNS))
    fault_rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**16))
    random_texts = (
        draw(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8))
        if texts == "random"
        else []
    )
    dump = build(form, sizes, times, texts, fault_rate, seed, random_texts)
    if form == "jsonl" and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            line = draw(st.sampled_from(['{"text": "cut', "[1, 2]", '"just a string"', "{,}"]))
            dump.raw_lines.append((draw(st.integers(0, dump.records())), line))
    return dump


_FAULTS = [
    ("text", None),
    ("text", "   "),
    ("text", ["a", "list"]),
    ("created_at", None),
    ("created_at", "not a time"),
    ("created_at", "03/04/2022"),  # day and month cannot be told apart
    ("created_at", 0),
    ("post_id", "duplicate"),
]


def build(
    form: str,
    sizes: list[int],
    times: str,
    texts: str,
    fault_rate: float,
    seed: int,
    random_texts: list[str] | None = None,
) -> Dump:
    """A dump of pages of ``sizes`` posts, with the time and text patterns named."""
    import numpy as np

    rng = np.random.default_rng(seed)
    posts: list[Post] = []
    n = sum(sizes)
    if times == "identical":
        seconds = np.full(n, 3600.0)
    elif times == "burst":
        seconds = np.sort(rng.uniform(0, 60, n))
    elif times == "years":
        seconds = np.sort(rng.uniform(-20, 5, n)) * 365 * 86400  # 2001 to 2026
    else:
        seconds = np.sort(rng.uniform(0, 90 * 86400, n))
    k = 0
    for p, size in enumerate(sizes):
        if texts == "repeated":
            own = [POOL[int(i)] for i in rng.choice(len(POOL), int(rng.integers(1, 4)))]
        for i in range(size):
            if texts == "repeated":
                text: Any = own[i % len(own)]
            elif texts == "no_letters":
                text = NO_LETTERS[int(rng.integers(len(NO_LETTERS)))]
            elif texts == "world":
                text = WORLD[int(rng.integers(len(WORLD)))]
            elif texts == "random" and random_texts:
                text = random_texts[int(rng.integers(len(random_texts)))]
            else:
                text = POOL[int(rng.integers(len(POOL)))]
            ok = not (isinstance(text, str) and not text.strip())
            values = {
                "post_id": f"post-{k}",
                "page_id": f"page {p}",
                "text": text,
                "created_at": _time_value(float(seconds[k]), rng),
            }
            if rng.random() < fault_rate:
                name, bad = _FAULTS[int(rng.integers(len(_FAULTS)))]
                if name == "post_id":  # another record's id: the later one fails
                    if posts:  # (the first record has no earlier id to take)
                        values["post_id"] = posts[int(rng.integers(len(posts)))].values["post_id"]
                else:
                    values[name] = bad
                    ok = False
            posts.append(Post(values, ok))
            k += 1
    if times == "shuffled":
        posts = [posts[int(i)] for i in rng.permutation(len(posts))]
    if form != "jsonl":  # a list is a JSONL value; in a CSV or Parquet cell it is text
        for post in posts:
            if isinstance(post.values["text"], list):
                post.values["text"] = None
    return Dump(form, posts, note=f"{sizes} {times} {texts} faults {fault_rate}")


def _time_value(seconds: float, rng: Any) -> Any:
    """One of the time forms the reader takes, for a valid time."""
    at = START + pd.Timedelta(seconds=seconds)
    form = int(rng.integers(4))
    if form == 0:
        return at.isoformat()
    if form == 1:
        return int(at.timestamp())  # epoch seconds
    if form == 2:
        return int(at.timestamp() * 1000)  # epoch milliseconds
    return at.tz_convert("Asia/Shanghai").isoformat()


def write(dump: Dump, folder: Path) -> Path:
    path = folder / f"dump.{dump.form}"
    columns = ["post_id", "page_id", "text", "created_at"]
    if dump.form == "jsonl":
        lines = [json.dumps(p.values, ensure_ascii=False) for p in dump.posts]
        for at, line in sorted(dump.raw_lines, reverse=True):
            lines.insert(min(at, len(lines)), line)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    elif dump.form == "csv":
        with path.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(columns)
            for post in dump.posts:
                out.writerow(["" if post.values[c] is None else post.values[c] for c in columns])
    else:
        frame = pd.DataFrame(
            {c: [_cell(p.values[c]) for p in dump.posts] for c in columns}, columns=columns
        )
        frame.to_parquet(path, index=False)
    return path


def _cell(value: Any) -> Any:
    return None if value is None else str(value)


def expected_ok(dump: Dump) -> list[bool]:
    """Per record, in file order, whether it must be scored: a post id that an earlier
    record of the file gave already is rejected, and so is a malformed line."""
    seen: set[str] = set()
    fates = []
    for post in dump.posts:
        fates.append(post.ok and post.values["post_id"] not in seen)
        seen.add(post.values["post_id"])
    for at, _ in sorted(dump.raw_lines, reverse=True):
        fates.insert(min(at, len(fates)), False)
    return fates


# -- the checks ---------------------------------------------------------------------------


def invoke(*args: Any) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args[0]} raised {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == 0, f"{args[0]} exited {result.exit_code}:\n{result.output}"
    return result.output


def check_schema(path: Path, expected: Any) -> pd.DataFrame:
    written = pq.read_schema(path)
    for f in expected:
        assert written.field(f.name).type == f.type, (path.name, f.name)
    return pd.read_parquet(path)


def check_dump(dump: Dump, embedder: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = write(dump, folder)
        out = folder / "out"
        invoke("score", src, "-o", out)
        fates = expected_ok(dump)
        posts = check_schema(out / "posts.parquet", schema.POSTS)
        assert len(posts) == len(fates), dump.note
        assert posts["source_row"].tolist() == list(range(len(fates)))
        assert posts["status"].tolist() == ["ok" if f else "rejected" for f in fates], dump.note
        rejected = posts[posts["status"] == "rejected"]
        assert rejected["error"].notna().all() and rejected["embedding"].isna().all()
        ok = posts[posts["status"] == "ok"]
        assert ok["error"].isna().all() and ok["lang"].notna().all()
        assert ok["embedding"].notna().all() and ok["created_at"].notna().all()
        assert ok["post_id"].is_unique

        pages = check_schema(out / "pages.parquet", schema.PAGES)
        by_page = ok.groupby("page_id").size()
        assert dict(zip(pages["page_id"], pages["n_posts"])) == by_page.to_dict()
        judged = pages["pivot_status"] == "ok"
        assert (pages.loc[~judged, "pivot_status"].str.startswith("too few posts")).all()
        assert pages.loc[~judged, "n_pivots"].isna().all()
        assert (pages.loc[judged, "n_pivots"] >= 0).all()
        pivots = check_schema(out / "pivots.parquet", schema.PIVOTS)
        assert set(pivots["page_id"]) <= set(pages.loc[judged, "page_id"])
        assert pivots.groupby("page_id").size().sum() == pages["n_pivots"].fillna(0).sum()
        ids = set(ok["post_id"])
        for row in pivots.itertuples():
            assert set(row.before_examples) | set(row.after_examples) <= ids
            assert 0 < row.position < by_page[row.page_id]
        run = json.loads((out / "run.json").read_text())
        assert run["counts"]["read"] == len(fates) and run["counts"]["ok"] == len(ok)
        assert run["counts"]["page_errors"] == 0

        invoke("pivots", out)
        assert pd.read_parquet(out / "pivots.parquet").equals(pivots)  # deterministic
        invoke("timing", out)
        timing = check_schema(out / "timing.parquet", schema.TIMING)
        assert set(timing.loc[timing["scope"] == "page", "page_id"]) == set(by_page.index)
        assert (timing["scope"] == "all").sum() == 1
        invoke("coordination", out)
        clusters = pd.read_parquet(out / "coordination.parquet")
        assert set(clusters["post_id"]) <= ids
        edges = pd.read_parquet(out / "coordination_edges.parquet")
        assert set(edges["page_a"]) | set(edges["page_b"]) <= set(by_page.index)
        invoke("report", out, "--force")
        assert (out / "report.html").stat().st_size > 0

        import narratives

        result = narratives.score(src, embedder=embedder, progress=False)
        assert result.posts["status"].tolist() == posts["status"].tolist()
        assert result.posts["post_id"].tolist() == posts["post_id"].tolist()
        assert result.posts["lang"].fillna("").tolist() == posts["lang"].fillna("").tolist()
        assert len(result.pivots) == len(pivots)


# -- the named shapes, run every time, then generated ones --------------------------------


@given(dump=dumps())
@example(dump=build("jsonl", [1] * 2000, "spread", "distinct", 0.0, 1))  # one-post pages
@example(dump=build("jsonl", [12] * 250, "burst", "repeated", 0.0, 2))  # 3,000 in a minute
@example(dump=build("jsonl", [300], "spread", "repeated", 0.0, 3))  # one spam page
@example(dump=build("csv", [40, 3, 25], "identical", "no_letters", 0.1, 4))
@example(dump=build("jsonl", [60, 60], "years", "world", 0.1, 5))
@example(dump=build("parquet", [30, 30], "shuffled", "distinct", 0.5, 6))
@example(dump=build("jsonl", [20, 5], "spread", "distinct", 1.0, 7))  # all rejected
@example(dump=Dump("jsonl"))  # an empty file
@example(dump=Dump("csv"))  # only a header
def test_every_command_survives_every_shape(dump, embedder):
    check_dump(dump, embedder)
