"""Which examples go to train and validation: sizes, disjointness, order, seed, stratification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist.split import SplitSpec, choose_indices, split_key

LABELS = np.random.default_rng(1).choice(10, size=2_000, p=np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum())


def test_default_cut_is_first_train_last_validation():
    train, val = choose_indices(LABELS, SplitSpec(train_size=1_500, val_size=500))
    np.testing.assert_array_equal(train, np.arange(1_500))
    np.testing.assert_array_equal(val, np.arange(1_500, 2_000))


def test_smaller_sizes_keep_the_convention():
    train, val = choose_indices(LABELS, SplitSpec(train_size=100, val_size=50))
    np.testing.assert_array_equal(train, np.arange(100))
    np.testing.assert_array_equal(val, np.arange(1_950, 2_000))


@settings(max_examples=40, deadline=None)
@given(
    train_size=st.integers(1, 1_500),
    val_size=st.integers(1, 500),
    seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    stratify=st.booleans(),
)
def test_sizes_disjoint_sorted(train_size, val_size, seed, stratify):
    train, val = choose_indices(LABELS, SplitSpec(train_size, val_size, seed, stratify))
    assert len(train) == train_size and len(val) == val_size
    assert not np.intersect1d(train, val).size
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert train.dtype == np.int64 and val.max(initial=0) < len(LABELS)


def test_seed_reproduces_and_differs():
    a = choose_indices(LABELS, SplitSpec(1_000, 500, seed=7))
    b = choose_indices(LABELS, SplitSpec(1_000, 500, seed=7))
    c = choose_indices(LABELS, SplitSpec(1_000, 500, seed=8))
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(a[1], np.arange(1_500, 2_000))


@pytest.mark.parametrize("seed", [None, 3])
def test_stratified_keeps_each_class_share(seed):
    counts = np.bincount(LABELS, minlength=10)
    train, val = choose_indices(LABELS, SplitSpec(1_200, 400, seed=seed, stratify=True))
    for part, size in ((train, 1_200), (val, 400)):
        share = np.bincount(LABELS[part], minlength=10)
        assert np.all(np.abs(share - size * counts / counts.sum()) < 1)


def test_stratified_full_partition_uses_every_example():
    train, val = choose_indices(LABELS, SplitSpec(1_600, 400, stratify=True))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(2_000))


def test_spec_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="exceeds the 60000"):
        SplitSpec(train_size=55_000, val_size=10_000)
    with pytest.raises(ValueError, match="positive"):
        SplitSpec(train_size=0)


def test_key_changes_with_every_option_and_source():
    sources = {"train-images-idx3-ubyte": "a" * 64}
    keys = {
        split_key(SplitSpec(), sources),
        split_key(SplitSpec(train_size=49_999), sources),
        split_key(SplitSpec(val_size=9_999), sources),
        split_key(SplitSpec(seed=0), sources),
        split_key(SplitSpec(stratify=True), sources),
        split_key(SplitSpec(), {"train-images-idx3-ubyte": "b" * 64}),
    }
    assert len(keys) == 6
    assert split_key(SplitSpec(), sources) == split_key(SplitSpec(), dict(sources))
