"""core learns real MNIST as the book says: 784-100-10 sigmoid, cross-entropy, η = 0.5, λ = 5.0, mini-batch 10, 30 epochs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from core.config import TrainConfig
from core.network import Network
from core.training import train
from flows.data.idx import read_idx

pytestmark = pytest.mark.slow


def load(mnist_dir, kind):
    images = read_idx(mnist_dir / f"{kind}-images-idx3-ubyte.gz", expect_ndim=3)
    labels = read_idx(mnist_dir / f"{kind}-labels-idx1-ubyte.gz", expect_ndim=1)
    return (images.reshape(len(images), 784) / np.float32(255)).astype(np.float32), labels.astype(np.int64)


def test_784_100_10_reaches_97_5_percent_on_the_test_set(mnist_dir):
    X, y = load(mnist_dir, "train")
    X_test, y_test = load(mnist_dir, "t10k")
    assert len(X) == 60_000 and len(X_test) == 10_000
    config = TrainConfig(
        sizes=(784, 100, 10), activation="sigmoid", cost="cross-entropy", eta=0.5, lmbda=5.0,
        batch_size=10, epochs=30, patience=None, seed=0,
    )
    started = time.perf_counter()
    with threadpool_limits(limits=1):  # one BLAS thread: faster and reproducible on 2 shared cores
        result = train(Network.from_config(config), X[:50_000], y[:50_000], X[50_000:], y[50_000:], config)
        _, test_accuracy = result.network.evaluate(X_test, y_test)
    seconds = time.perf_counter() - started
    assert len(result.history) == 30 and result.stop_reason == "max_epochs"
    assert result.history[-1].val_accuracy >= 0.975
    assert test_accuracy >= 0.975, f"test accuracy {test_accuracy:.4f} after {seconds:.0f} s"
