"""The drift job's reference rows are bounded: a full-size training snapshot (~22M rows) is never a frame."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from monitoring.drift.sources import bounded_rows


def _files(sizes: list[int]) -> list[pa.Table]:
    start, out = 0, []
    for n in sizes:
        out.append(pa.table({"i": np.arange(start, start + n), "x": np.arange(start, start + n) * 0.5}))
        start += n
    return out


def test_every_row_in_order_when_under_the_cap():
    kept, rows = bounded_rows(_files([3, 0, 5]), cap=10)
    assert rows == 8
    assert kept.column_names == ["i", "x"]
    assert kept["i"].to_pylist() == list(range(8))


def test_over_the_cap_a_uniform_sample_in_order_and_the_same_each_time():
    sizes = [4000, 2500, 0, 3500]
    kept, rows = bounded_rows(_files(sizes), cap=1000)
    again, _ = bounded_rows(_files(sizes), cap=1000)
    assert rows == 10_000 and kept.num_rows == 1000
    ids = kept["i"].to_numpy()
    assert (np.diff(ids) > 0).all()  # original order, no duplicates
    assert ids.tolist() == again["i"].to_pylist()
    per_file = np.histogram(ids, bins=[0, 4000, 6500, 10_000])[0]
    assert np.allclose(per_file / 1000, [0.4, 0.25, 0.35], atol=0.06)  # each file in its share
    assert bounded_rows(_files(sizes), cap=1000, seed=1)[0]["i"].to_pylist() != ids.tolist()


def test_no_files_no_rows():
    kept, rows = bounded_rows([], cap=5)
    assert rows == 0 and kept.num_rows == 0
