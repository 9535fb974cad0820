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
