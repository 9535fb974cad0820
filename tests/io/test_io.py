"""Reading posts: formats, encodings, column mapping, and every kind of bad record."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from narratives import InputError, read_posts
from narratives.io.read import PostReader

GOOD = [
    {"post_id": "a", "page_id": "p1", "text": "hello world", "created_at": "2022-01-21T10:31:00Z"},
    {"post_id": "b", "page_id": "p1", "text": "你好，世界", "created_at": "2022-01-21T11:31:00Z"},
    {"post_id": "c", "page_id": "p2", "text": "bonjour", "created_at": 1642764660},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    return path


def by_id(frame: pd.DataFrame) -> dict:
    return {r.post_id: r for r in frame.itertuples()}


def test_jsonl_good(tmp_path):
    result = read_posts(write_jsonl(tmp_path / "p.jsonl", GOOD))
    posts = result.posts
    assert list(posts["post_id"]) == ["a", "b", "c"]
    assert list(posts["status"]) == ["ok"] * 3
    assert list(posts["source_row"]) == [0, 1, 2]
    assert str(posts["created_at"].dtype) == "datetime64[us, UTC]"
    assert posts["created_at"][2] == pd.Timestamp("2022-01-21T11:31:00Z")
    assert result.info["columns"]["text"] == "text"


def test_jsonl_records_end_at_newlines_only(tmp_path):
    # JSON allows these raw inside strings; str.splitlines() would cut the record there
    odd = "a\u2028b\u2029c\x85d\x0ce\x1cf\x0bg"
    rows = [{**GOOD[0], "text": odd}, GOOD[1]]
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        "\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8") + b"\r\n"
    )
    result = read_posts(path)
    assert list(result.posts["status"]) == ["ok", "ok"]
    assert result.posts["text"][0] == odd
    assert result.info["blank_lines_skipped"] == 0


def test_malformed_json_and_non_object_lines_are_rejected_in_place(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = [
        json.dumps(GOOD[0]),
        '{"post_id": "x", "text": "unterminated',
        "[1, 2]",
        json.dumps(GOOD[1]),
    ]
    path.write_text("\n".join(lines) + "\n\n", "utf-8")
    posts = read_posts(path).posts
    assert list(posts["status"]) == ["ok", "rejected", "rejected", "ok"]
    assert "line 2 is not valid JSON" in posts["error"][1]
    assert "line 3 is a JSON list" in posts["error"][2]
    assert posts["post_id"][1] == "p.jsonl:1"  # a stable id from source and row


def test_invalid_utf8_line_is_rejected(tmp_path):
    path = tmp_path / "p.jsonl"
    good = [json.dumps(r, ensure_ascii=False).encode() for r in GOOD]
    bad = b'{"post_id": "z", "text": "caf\xe9 au lait", "created_at": 1642764660}'
    path.write_bytes(b"\n".join([good[0], good[1], bad, good[2]]) + b"\n")
    posts = read_posts(path).posts
    assert list(posts["status"]) == ["ok", "ok", "rejected", "ok"]
    assert "invalid UTF-8" in posts["error"][2] and "--encoding" in posts["error"][2]
    assert posts["text"][1] == "你好，世界"


def test_text_and_id_problems(tmp_path):
    rows = [
        {"post_id": "a", "page_id": "p", "text": "fine", "created_at": "2022-01-21"},
        {"post_id": "e", "page_id": "p", "text": "   \n\t", "created_at": "2022-01-21"},
        {"post_id": "m", "page_id": "p", "created_at": "2022-01-21"},
        {"post_id": "o", "page_id": "p", "text": {"nested": 1}, "created_at": "2022-01-21"},
        {"post_id": "a", "page_id": "p", "text": "again", "created_at": "2022-01-21"},
        {"post_id": 7, "page_id": 3, "text": 12345, "created_at": "2022-01-21"},
        {"page_id": "p", "text": "no id", "created_at": "2022-01-21"},
        {"post_id": "np", "text": "no page", "created_at": "2022-01-21"},
    ]
    posts = read_posts(write_jsonl(tmp_path / "t.jsonl", rows)).posts
    errors = dict(zip(posts["post_id"], posts["error"]))
    assert errors["e"] == "empty text (only whitespace)"
    assert errors["m"] == "missing text"
    assert "not a string" in errors["o"]
    assert posts["status"][0] == "ok" and posts["status"][4] == "rejected"
    assert "duplicate post_id 'a' (first seen at source_row 0)" in posts["error"][4]
    assert (posts["post_id"][5], posts["page_id"][5], posts["text"][5]) == ("7", "3", "12345")
    assert posts["post_id"][6] == "t.jsonl:6"
    assert posts["status"][7] == "ok" and "no page_id" in posts["warning"][7]


def test_time_problems(tmp_path):
    rows = [
        {"post_id": "ok", "text": "x", "created_at": "2022/1/21 10:31"},
        {"post_id": "missing", "text": "x"},
        {"post_id": "zero", "text": "x", "created_at": 0},
        {"post_id": "junk", "text": "x", "created_at": "yesterday-ish"},
        {"post_id": "ambiguous", "text": "x", "created_at": "03/04/2022"},
    ]
    result = read_posts(write_jsonl(tmp_path / "t.jsonl", rows), tz="Asia/Shanghai")
    posts = result.posts.set_index("post_id")
    assert posts.loc["ok", "created_at"] == pd.Timestamp("2022-01-21T02:31:00Z")
    assert posts.loc["missing", "error"] == "missing time"
    assert posts.loc["zero", "error"] == "missing time"
    assert "unparseable time 'yesterday-ish'" in posts.loc["junk", "error"]
    assert "ambiguous" in posts.loc["ambiguous", "error"]
    assert result.info["naive_times"] == 1


def test_missing_required_column_lists_columns_and_flag(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "body_text": "x", "ts": 1}])
    with pytest.raises(InputError) as err:
        read_posts(path)
    message = str(err.value)
    assert "available: id, body_text, ts" in message and "--text-col" in message
    with pytest.raises(InputError, match=r"column 'when' .*--time-col"):
        read_posts(path, {"text": "body_text", "created_at": "when"})
    posts = read_posts(path, {"text": "body_text", "created_at": "ts"}).posts
    assert posts["post_id"][0] == "1"  # 'id' found by its usual name


def test_csv_wrong_field_count_and_multiline(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "id,page,text,time\n"
        "1,p1,hello,2022-01-21T10:31:00Z\n"
        "2,p1,too,many,fields,2022-01-21T10:31:00Z\n"
        '3,p2,"a quoted, multi-line\npost",2022-01-21T10:32:00Z\n'
        "4,p2\n"
        "5,p2,last,2022-01-21T10:33:00Z\n",
        "utf-8",
    )
    cols = {"post_id": "id", "page_id": "page", "created_at": "time"}
    posts = read_posts(path, cols).posts
    assert list(posts["status"]) == ["ok", "rejected", "ok", "rejected", "ok"]
    assert "line 3 has 6 fields but the header has 4" in posts["error"][1]
    assert posts["text"][2] == "a quoted, multi-line\npost"
    assert "has 2 fields" in posts["error"][3]
    assert list(posts["post_id"]) == ["1", "p.csv:1", "3", "p.csv:3", "5"]


def _csv_bytes(encoding: str) -> bytes:
    text = (
        "post_id,text,created_at\n"
        "1,Crème brûlée à la française,2022-01-21T10:31:00Z\n"
        "2,Año nuevo en España,2022-01-21T10:32:00Z\n"
    )
    if encoding in ("gb18030", "big5"):
        text = text.replace("Crème brûlée à la française", "中国新闻社报道：冬奥会开幕")
        text = text.replace("Año nuevo en España", "北京冬奥会倒计时十天")
    return text.encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030", "cp1252"])
def test_csv_encodings_are_detected(tmp_path, encoding):
    path = tmp_path / "p.csv"
    path.write_bytes(_csv_bytes(encoding))
    result = read_posts(path)
    expected = _csv_bytes(encoding).decode(encoding).splitlines()[1].split(",")[1]
    assert list(result.posts["status"]) == ["ok", "ok"]
    assert result.posts["text"][0] == expected


def test_csv_encoding_flag_and_invalid_utf8_row(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(_csv_bytes("cp1252"))
    assert read_posts(path, encoding="cp1252").posts["text"][0] == "Crème brûlée à la française"
    with pytest.raises(InputError, match="unknown encoding"):
        read_posts(path, encoding="klingon-8")
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(
        "post_id,text,created_at\n1,中文内容很多很多,2022-01-21T10:31:00Z\n".encode()
        + b"2,caf\xe9,2022-01-21T10:31:00Z\n"
        + "3,更多中文,2022-01-21T10:31:00Z\n".encode()
    )
    posts = read_posts(mixed).posts
    assert list(posts["status"]) == ["ok", "rejected", "ok"]
    assert "invalid UTF-8" in posts["error"][1]


def test_tsv_gzip_and_parquet(tmp_path):
    frame = pd.DataFrame(GOOD)
    tsv = tmp_path / "p.tsv.gz"
    with gzip.open(tsv, "wt", encoding="utf-8") as f:
        frame.to_csv(f, sep="\t", index=False)
    assert list(read_posts(tsv).posts["status"]) == ["ok"] * 3
    pq_path = tmp_path / "p.parquet"
    frame.assign(created_at=pd.to_datetime(["2022-01-21T10:31:00"] * 3)).to_parquet(pq_path)
    posts = read_posts(pq_path, tz="Asia/Shanghai").posts
    assert posts["created_at"][0] == pd.Timestamp("2022-01-21T02:31:00Z")
    assert list(read_posts(frame).posts["post_id"]) == ["a", "b", "c"]


def test_hf_datasets_object_and_directory(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(
        [
            {"tweetid": str(i), "tweet_text": f"post {i}", "tweet_time": "2022-01-21 10:31"}
            for i in range(4)
        ]
    )
    posts = read_posts(ds).posts
    assert list(posts["post_id"]) == ["0", "1", "2", "3"]  # twitter-style names found
    ds.save_to_disk(str(tmp_path / "ds"))
    assert len(read_posts(tmp_path / "ds").posts) == 4
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([0])})
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(InputError, match="pick one with --split"):
        read_posts(tmp_path / "dd")
    assert len(read_posts(tmp_path / "dd", split="test").posts) == 1


def test_unknown_format_and_missing_file(tmp_path):
    odd = tmp_path / "posts.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(InputError, match="cannot tell the format"):
        read_posts(odd)
    with pytest.raises(InputError, match="does not exist"):
        read_posts(tmp_path / "nope.jsonl")


def test_fb_state_media_counts():
    from conftest import shared_file

    path = shared_file("cn-state-media-facebook-2022", "fb_posts_cn_state_media_2022.csv")
    cols = {"post_id": "ID", "page_id": "AUTHOR_ID", "text": "CONTENT", "created_at": "TIME"}
    posts = read_posts(path, cols, tz="Asia/Shanghai").posts
    assert len(posts) == 15931
    assert posts["source_row"].tolist() == list(range(15931))
    assert (posts["status"] == "ok").sum() == 6336  # as SOURCE.md counts: text and a time
    rejected = posts[posts["status"] == "rejected"]
    assert rejected["error"].str.contains("missing text|missing time").all()


@pytest.mark.parametrize("size", [1, 7, 64])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_read_a_chunk_at_a_time_gives_the_whole_read(tmp_path, size, suffix):
    # ids repeated within a chunk and across chunks, a bad line, a missing text, naive times
    rows = [
        {
            "post_id": f"id{i % 13}" if i % 4 else f"own{i}",
            "page_id": f"p{i % 3}",
            "text": "" if i == 9 else f"post {i}\nsecond line",
            "created_at": f"2022-01-{1 + i % 28:02d}T10:00:00",
        }
        for i in range(40)
    ]
    path = tmp_path / f"p{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, rows)
        path.write_text(path.read_text("utf-8") + "{broken\n", "utf-8")
    elif suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    whole = read_posts(path)
    reader = PostReader(path, ids_path=tmp_path / "ids.sqlite")
    chunks = list(reader.chunks(size))
    assert all(len(c) <= size for c in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole.posts)
    assert reader.info == whole.info
    assert not (tmp_path / "ids.sqlite").exists()  # the index goes with the read
    repeated = whole.posts["error"].str.startswith("duplicate post_id 'id1' (first seen at")
    assert repeated.sum() == len([r for r in rows if r["post_id"] == "id1"]) - 1


def test_a_reader_knows_or_estimates_its_records(tmp_path):
    rows = [{**GOOD[0], "post_id": str(i)} for i in range(30)]
    jsonl = write_jsonl(tmp_path / "p.jsonl", rows)
    assert PostReader(jsonl).n_records == PostReader(jsonl).n_estimate == 30
    csv_path = tmp_path / "p.csv"
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    reader = PostReader(csv_path)  # a CSV's records are only known once read (quoted newlines)
    assert reader.n_records is None
    assert reader.n_estimate == csv_path.stat().st_size // 100
