"""The parts the Ray engine's workers write: named in row order, and checked to hold
every row once (no Ray needed)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from narratives.pipeline.engines import _name_parts


def test_parts_that_ray_wrote_are_named_in_row_order_and_checked(tmp_path):
    def write(folder, name, rows):
        folder.mkdir(exist_ok=True)
        pq.write_table(pa.table({"source_row": pa.array(rows, pa.int64())}), folder / name)

    good = tmp_path / "good"
    write(good, "b7_000002.parquet", range(0, 10))  # Ray's names say nothing of the order
    write(good, "a1_000001.parquet", range(10, 25))
    write(good, "c3_000000.parquet", range(25, 26))
    write(good, "d0_000003.parquet", [])
    assert _name_parts(good, "source_row", 26) == 3
    names = sorted(p.name for p in good.iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    firsts = [pq.read_table(good / n).column(0)[0].as_py() for n in names]
    assert firsts == [0, 10, 25]
    for rows, n in (([range(0, 10), range(9, 20)], 20), ([range(0, 10), range(11, 20)], 20)):
        bad = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        for i, part in enumerate(rows):
            write(bad, f"x{i}.parquet", part)
        with pytest.raises(RuntimeError, match=r"overlap|not each once"):
            _name_parts(bad, "source_row", n)
    assert _name_parts(tmp_path / "none", "source_row", 0) == 0


def test_an_update_reads_its_pages_rows_from_the_row_groups_that_hold_them(tmp_path):
    """What an update reads of a folder: the rows of the pages it touches, across parts
    and row groups."""
    import numpy as np

    from narratives import scored

    n = 100
    table = pa.table(
        {
            "post_id": [f"p{i}" for i in range(n)],
            "page_id": [None if i % 11 == 0 else f"g{i % 7}" for i in range(n)],
            "status": ["rejected" if i % 13 == 0 else "ok" for i in range(n)],
            "source_row": pa.array(range(n), pa.int64()),
        }
    )
    (tmp_path / "posts").mkdir()
    pq.write_table(table.slice(0, 40), tmp_path / "posts" / "part-00000.parquet",
                   row_group_size=6)  # fmt: skip
    pq.write_table(table.slice(40), tmp_path / "posts" / "part-00001.parquet", row_group_size=9)
    folder = scored.ScoredFolder(tmp_path)
    rows = folder.rows_of_pages(["g3", "g5", "nowhere"])
    frame = table.to_pandas()
    expected = frame.index[frame["page_id"].isin(["g3", "g5"]) & (frame["status"] == "ok")]
    assert rows.tolist() == expected.tolist()
    got = folder.take(rows, ["post_id", "source_row"])
    assert got.column("source_row").to_pylist() == rows.tolist()
    assert folder.take(np.array([], dtype=np.int64), ["post_id"]).num_rows == 0
