"""Verification of MNIST bytes: gzip or raw, right digest, clear errors naming the file."""

from __future__ import annotations

import gzip

import pytest

from mnist.checksums import (
    BY_NAME,
    MNIST_FILES,
    TEST_IMAGES,
    TEST_LABELS,
    ChecksumError,
    sha256_bytes,
    verify_mnist_bytes,
)
from mnist.idx import IdxError


def test_digests_match_the_shared_table(mnist_dir):
    table = dict(line.split()[::-1] for line in (mnist_dir / "SHA256SUMS.idx").read_text().splitlines() if line)
    assert table == {f.name: f.sha256 for f in MNIST_FILES}


@pytest.mark.parametrize("name", [TEST_LABELS.name, TEST_IMAGES.name])
def test_gzipped_and_raw_bytes_verify(mnist_dir, name):
    file = BY_NAME[name]
    gz = (mnist_dir / f"{name}.gz").read_bytes()
    raw, array = verify_mnist_bytes(gz, file)
    assert sha256_bytes(raw) == file.sha256 and array.shape == file.shape
    again, _ = verify_mnist_bytes(raw, file)
    assert again is raw


def test_one_flipped_byte_is_a_checksum_error(mnist_dir):
    raw = bytearray(gzip.decompress((mnist_dir / f"{TEST_LABELS.name}.gz").read_bytes()))
    raw[100] ^= 0x01
    with pytest.raises(ChecksumError, match=rf"{TEST_LABELS.name}: SHA-256 of the decompressed bytes is \w+, expected"):
        verify_mnist_bytes(bytes(raw), TEST_LABELS)


def test_truncated_gzip(mnist_dir):
    gz = (mnist_dir / f"{TEST_LABELS.name}.gz").read_bytes()
    with pytest.raises(IdxError, match=rf"{TEST_LABELS.name}: the gzip stream is truncated or corrupt"):
        verify_mnist_bytes(gz[: len(gz) // 2], TEST_LABELS)


def test_wrong_magic(mnist_dir):
    raw = gzip.decompress((mnist_dir / f"{TEST_LABELS.name}.gz").read_bytes())
    with pytest.raises(IdxError, match="wrong magic number"):
        verify_mnist_bytes(b"<html>" + raw[6:], TEST_LABELS)


def test_labels_where_images_are_expected(mnist_dir):
    labels = (mnist_dir / f"{TEST_LABELS.name}.gz").read_bytes()
    with pytest.raises(IdxError, match=rf"{TEST_IMAGES.name}: 1 dimensions where 3 were expected"):
        verify_mnist_bytes(labels, TEST_IMAGES)
