"""The four canonical MNIST files: their names, shapes and the SHA-256 of their decompressed bytes.

The digests are those of ``../shared/data/mnist/SHA256SUMS.idx`` (the original IDX bytes,
the same whether a mirror serves them gzipped or raw). Every mirror is checked against
them, so bytes from any source are trusted only when they are exactly MNIST.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist.idx import IdxError, decompress_if_gzipped, parse_idx
from mnist.sizes import IMAGE_SIDE, N_TEST_FILE, N_TRAIN_FILE


@dataclass(frozen=True)
class MnistFile:
    """One canonical MNIST file: its name without ``.gz``, its array shape and its digest."""

    name: str
    shape: tuple[int, ...]
    sha256: str


TRAIN_IMAGES = MnistFile(
    "train-images-idx3-ubyte", (N_TRAIN_FILE, IMAGE_SIDE, IMAGE_SIDE), "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
)
TRAIN_LABELS = MnistFile(
    "train-labels-idx1-ubyte", (N_TRAIN_FILE,), "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
)
TEST_IMAGES = MnistFile(
    "t10k-images-idx3-ubyte", (N_TEST_FILE, IMAGE_SIDE, IMAGE_SIDE), "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
)
TEST_LABELS = MnistFile(
    "t10k-labels-idx1-ubyte", (N_TEST_FILE,), "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
)

#: The four files in the order they are fetched.
MNIST_FILES: tuple[MnistFile, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
BY_NAME: dict[str, MnistFile] = {f.name: f for f in MNIST_FILES}


class ChecksumError(IdxError):
    """Bytes that parse as IDX but are not the canonical MNIST file."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_mnist_bytes(data: bytes, file: MnistFile) -> tuple[bytes, np.ndarray]:
    """Check downloaded bytes (gzipped or raw) against FILE; return the raw IDX bytes and the array.

    Raises :class:`IdxError` (truncated gzip, wrong magic, wrong dimensions) or
    :class:`ChecksumError` (right shape, wrong bytes), each naming the file.
    """
    raw = decompress_if_gzipped(data, file.name)
    array = parse_idx(raw, file.name, expect_ndim=len(file.shape))
    if array.shape != file.shape:
        raise IdxError(f"{file.name}: shape {array.shape} where MNIST has {file.shape}")
    actual = sha256_bytes(raw)
    if actual != file.sha256:
        raise ChecksumError(
            f"{file.name}: SHA-256 of the decompressed bytes is {actual}, expected {file.sha256} "
            "(the file is corrupted or is not the canonical MNIST)"
        )
    return raw, array
