"""IDX parsing: the real files parse, and every kind of damage is named."""

import gzip

import numpy as np
import pytest

from mnist.idx import IdxError, decompress_if_gzipped, encode_idx, parse_idx, read_idx


def test_real_test_labels_parse(mnist_dir):
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", expect_ndim=1)
    assert labels.shape == (10_000,) and labels.dtype == np.uint8
    assert labels[0] == 7
    assert labels.max() == 9


def test_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(encode_idx(array)), array)


def test_wrong_magic_is_named():
    data = bytearray(encode_idx(np.zeros(3, np.uint8)))
    data[2] = 0x0D  # float, not ubyte
    with pytest.raises(IdxError, match="magic"):
        parse_idx(bytes(data), "labels")


def test_size_mismatch_is_named():
    data = encode_idx(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(IdxError, match="declares shape"):
        parse_idx(data[:-1], "images")


def test_truncated_gzip_is_named():
    blob = gzip.compress(encode_idx(np.zeros(100, np.uint8)))
    with pytest.raises(IdxError, match="truncated"):
        decompress_if_gzipped(blob[: len(blob) // 2], "x.gz")


def test_wrong_dimension_count():
    with pytest.raises(IdxError, match="dimensions"):
        parse_idx(encode_idx(np.zeros((2, 2), np.uint8)), expect_ndim=3)
