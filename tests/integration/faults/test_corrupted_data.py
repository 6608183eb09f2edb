"""A byte flipped on disk in the cached split or in a raw MNIST file: the next `prepare-data` run
detects it by its SHA-256, warns, and rebuilds it from the verified download."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pytest

from mnist.checksums import TRAIN_IMAGES, sha256_file
from mnist.split import MANIFEST, load_split, verify_split
from flows.prepare_data import prepare_data

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]

SMALL = {"train_size": 2_000, "val_size": 500, "track": False, "retry_delay_seconds": 0}


def flip_byte(path, offset: int = -1) -> None:
    """Flip one bit of one byte of PATH in place, even if the file is read-only."""
    mode = path.stat().st_mode
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(mode & 0o777)


@pytest.fixture
def data_dir(tmp_path, mnist_dir):
    first = prepare_data(mirrors=[str(mnist_dir)], data_dir=str(tmp_path / "data"), **SMALL)
    return tmp_path / "data", first


@pytest.mark.parametrize("victim", ["X_train.npy", "y_val.npy", MANIFEST])
def test_a_corrupted_split_file_is_detected_and_rebuilt_with_a_warning(data_dir, mnist_dir, victim, caplog):
    root, first = data_dir
    split_dir = root / "splits" / os.path.basename(first)
    expected = {name: np.array(getattr(load_split(first), name)) for name in ("X_train", "y_val")}
    if victim == MANIFEST:  # a flipped byte inside a recorded digest: the manifest no longer matches its files
        text = (split_dir / MANIFEST).read_bytes()
        offset = text.index(b'"sha256": "') + len(b'"sha256": "') + 3
    else:
        offset = -2
    flip_byte(split_dir / victim, offset=offset)
    assert verify_split(first) != []

    caplog.set_level(logging.WARNING, logger="mnist.split")
    started = time.perf_counter()
    second = prepare_data(mirrors=[str(mnist_dir)], data_dir=str(root), **SMALL)
    seconds = time.perf_counter() - started

    assert second == first, "same options and sources: the same folder, rebuilt"
    assert verify_split(second) == []
    split = load_split(second)
    for name, array in expected.items():
        np.testing.assert_array_equal(getattr(split, name), array)
    warnings = [r.getMessage() for r in caplog.records if "corrupted" in r.getMessage()]
    assert warnings and "rebuilding" in warnings[0], caplog.text
    assert victim in warnings[0] or victim == MANIFEST
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in split_dir.iterdir())
    assert all(oct(p.stat().st_mode & 0o222) == "0o0" for p in split_dir.iterdir()), "files stay read-only"
    assert not [p for p in (root / "splits").iterdir() if p.name.startswith(".")], "nothing left aside"
    assert seconds < 60


def test_a_corrupted_raw_file_is_detected_and_fetched_again_with_a_warning(data_dir, mnist_dir, caplog):
    root, first = data_dir
    raw = root / "raw" / TRAIN_IMAGES.name
    flip_byte(raw, offset=5_000)
    assert sha256_file(raw) != TRAIN_IMAGES.sha256

    caplog.set_level(logging.WARNING)
    second = prepare_data(mirrors=[str(mnist_dir)], data_dir=str(root), **SMALL)

    assert sha256_file(raw) == TRAIN_IMAGES.sha256
    assert second == first and verify_split(second) == []
    assert any("wrong SHA-256" in r.getMessage() and TRAIN_IMAGES.name in r.getMessage() for r in caplog.records)


def test_reusing_an_intact_split_checks_it_in_well_under_a_second(data_dir, mnist_dir):
    from mnist.split import SplitSpec, write_split

    root, first = data_dir
    started = time.perf_counter()
    again = write_split(root / "raw", root / "splits", SplitSpec(train_size=2_000, val_size=500))
    assert str(again) == first
    assert time.perf_counter() - started < 1.0
