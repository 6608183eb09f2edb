"""The stored split on the real MNIST: sizes, disjointness, class counts, dtypes, immutability."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mnist.download import fetch_mnist
from mnist.idx import read_idx
from mnist.split import MANIFEST, SplitSpec, load_split, verify_split, write_split

pytestmark = pytest.mark.integration  # the real MNIST, written and read back

TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory, mnist_dir) -> Path:
    raw = tmp_path_factory.mktemp("data") / "raw"
    fetch_mnist([str(mnist_dir)], raw)
    return raw


@pytest.fixture(scope="session")
def splits_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("splits")


@pytest.fixture(scope="session")
def default_split(raw_dir, splits_dir):
    return load_split(write_split(raw_dir, splits_dir, SplitSpec()))


def test_sizes_and_shapes(default_split):
    s = default_split
    assert s.X_train.shape == (50_000, 784) and s.y_train.shape == (50_000,)
    assert s.X_val.shape == (10_000, 784) and s.y_val.shape == (10_000,)
    assert s.X_test.shape == (10_000, 784) and s.y_test.shape == (10_000,)
    assert s.manifest["sizes"] == {"train": 50_000, "val": 10_000, "test": 10_000}


def test_dtype_range_and_read_only_memmaps(default_split):
    for X, y in ((default_split.X_train, default_split.y_train), (default_split.X_test, default_split.y_test)):
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert isinstance(X, np.memmap) and not X.flags.writeable
        assert float(X.min()) == 0.0 and float(X.max()) == 1.0
        assert set(np.unique(y).tolist()) == set(range(10))


def test_first_labels_and_pixels_match_the_files(default_split, mnist_dir):
    assert default_split.y_train[0] == 5 and default_split.y_test[0] == 7
    images = read_idx(mnist_dir / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(default_split.X_train[0], images[0].ravel().astype(np.float32) / 255)
    np.testing.assert_array_equal(default_split.X_val[-1], images[-1].ravel().astype(np.float32) / 255)


def test_class_counts_over_all_training_images(default_split):
    s = default_split
    counts = np.bincount(np.concatenate([s.y_train, s.y_val]), minlength=10)
    assert counts.tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(s.y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    assert s.manifest["class_counts"]["test"] == TEST_CLASS_COUNTS
    assert (
        np.array(s.manifest["class_counts"]["train"]) + s.manifest["class_counts"]["val"]
    ).tolist() == TRAIN_CLASS_COUNTS


def test_train_and_validation_are_disjoint(default_split):
    path = default_split.path
    train, val = np.load(path / "train_indices.npy"), np.load(path / "val_indices.npy")
    assert not np.intersect1d(train, val).size
    np.testing.assert_array_equal(train, np.arange(50_000))
    np.testing.assert_array_equal(val, np.arange(50_000, 60_000))


def test_manifest_records_options_sources_and_array_digests(default_split):
    manifest = default_split.manifest
    assert manifest["spec"] == {"train_size": 50_000, "val_size": 10_000, "seed": None, "stratify": False}
    assert manifest["sources"]["train-images-idx3-ubyte"].startswith("ba891046")
    assert set(manifest["arrays"]) >= {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}
    assert verify_split(default_split.path) == []


def test_seeded_shuffle(raw_dir, splits_dir):
    spec = SplitSpec(train_size=5_000, val_size=1_000, seed=42)
    a = load_split(write_split(raw_dir, splits_dir, spec))
    assert a.path == write_split(raw_dir, splits_dir, spec)  # same options, same folder, reused
    train = np.load(a.path / "train_indices.npy")
    assert train.max() > 50_000  # drawn from the whole training file, not its first rows
    other = load_split(write_split(raw_dir, splits_dir, SplitSpec(train_size=5_000, val_size=1_000, seed=43)))
    assert other.path != a.path and not np.array_equal(np.load(other.path / "train_indices.npy"), train)


def test_stratified_split(raw_dir, splits_dir):
    s = load_split(write_split(raw_dir, splits_dir, SplitSpec(train_size=6_000, val_size=1_000, stratify=True)))
    share = np.array(TRAIN_CLASS_COUNTS) / 60_000
    assert np.all(np.abs(np.bincount(s.y_train, minlength=10) - 6_000 * share) < 1)
    assert np.all(np.abs(np.bincount(s.y_val, minlength=10) - 1_000 * share) < 1)
    assert s.manifest["spec"]["stratify"] is True


def test_changed_option_writes_a_new_folder_and_never_touches_the_old(raw_dir, splits_dir, default_split):
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in default_split.path.iterdir()}
    small = write_split(raw_dir, splits_dir, SplitSpec(train_size=1_000, val_size=500))
    assert small != default_split.path and small.parent == default_split.path.parent
    assert load_split(small).y_train.shape == (1_000,)
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in default_split.path.iterdir()} == before
    assert not [p for p in splits_dir.iterdir() if p.name.startswith(".")], "no temporary folder left"


def test_stored_files_are_read_only_and_a_flipped_byte_is_detected(raw_dir, tmp_path):
    path = write_split(raw_dir, tmp_path, SplitSpec(train_size=1_000, val_size=500))
    target = path / "y_val.npy"
    assert not os.access(target, os.W_OK) or os.geteuid() == 0
    assert json.loads((path / MANIFEST).read_text())["key"] == path.name
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    assert verify_split(path) == ["y_val.npy"]


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["sizes"].update(train=999),
        lambda m: m["class_counts"]["val"].__setitem__(0, m["class_counts"]["val"][0] + 1),
        lambda m: m["spec"].update(train_size=2000),
        lambda m: m["arrays"]["X_test"].update(shape=[9999, 784]),
    ],
    ids=["sizes", "class counts", "options", "shape"],
)
def test_an_edited_manifest_is_detected_and_the_split_rebuilt(raw_dir, tmp_path, edit):
    """Issue #18: the manifest's sizes and counts are checked against the arrays, not only the arrays' digests."""
    spec = SplitSpec(train_size=1000, val_size=500)
    folder = write_split(raw_dir, tmp_path, spec)
    manifest_path = folder / MANIFEST
    original = json.loads(manifest_path.read_text())
    edited = json.loads(manifest_path.read_text())
    edit(edited)
    manifest_path.chmod(0o644)
    manifest_path.write_text(json.dumps(edited))
    assert verify_split(folder) == [MANIFEST]
    assert write_split(raw_dir, tmp_path, spec) == folder
    rebuilt = json.loads(manifest_path.read_text())
    assert rebuilt["sizes"] == original["sizes"] and rebuilt["class_counts"] == original["class_counts"]
    assert verify_split(folder) == []
