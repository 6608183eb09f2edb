"""core learns real MNIST as the book says: 784-100-10 sigmoid, cross-entropy, η = 0.5, λ = 5.0, mini-batch 10, 30 epochs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from core.config import TrainConfig
from core.network import Network
from core.training import train
from mnist.idx import read_idx

pytestmark = pytest.mark.slow


def load(mnist_dir, kind):
    images = read_idx(mnist_dir / f"{kind}-images-idx3-ubyte.gz", expect_ndim=3)
    labels = read_idx(mnist_dir / f"{kind}-labels-idx1-ubyte.gz", expect_ndim=1)
    X = images.reshape(len(images), 784).astype(np.float32)
    X /= np.float32(255)
    return X, labels.astype(np.int64)


def test_784_100_10_reaches_97_3_percent_on_the_test_set_on_any_blas_kernel(mnist_dir):
    """The seed's setting, which is TrainConfig's default, run for all 30 epochs as in the book.

    784-100-10, sigmoid, cross-entropy, η 0.5, λ 5.0, mini-batch 10, 30 epochs, seed 0, the
    weights of the best validation epoch (patience 30 never stops early but restores them):
    97.76 % on the test set, the same to the last digit with OpenBLAS's SkylakeX, Haswell and
    Prescott kernels (one BLAS thread). Another kernel sums in another order, which perturbs
    training like another seed would; over seeds 0–7 the best-epoch test accuracy spans
    97.48–97.82 % (mean 97.70 %), so the bound sits below that spread: 97.3 %. A broken
    gradient or update loses far more than that.
    """
    X, y = load(mnist_dir, "train")
    X_test, y_test = load(mnist_dir, "t10k")
    assert len(X) == 60_000 and len(X_test) == 10_000
    config = TrainConfig(seed=0, patience=30)
    assert (config.sizes, config.activation, config.cost, config.eta, config.lmbda, config.batch_size, config.epochs) == (
        (784, 100, 10), "sigmoid", "cross-entropy", 0.5, 5.0, 10, 30
    )
    started = time.perf_counter()
    with threadpool_limits(limits=1):  # one BLAS thread: faster on 2 shared cores, and reproducible
        result = train(Network.from_config(config), X[:50_000], y[:50_000], X[50_000:], y[50_000:], config)
        _, test_accuracy = result.network.evaluate(X_test, y_test)
    seconds = time.perf_counter() - started
    assert len(result.history) == 30 and result.stop_reason == "max_epochs"
    assert result.best_val_accuracy >= 0.973, f"validation accuracy {result.best_val_accuracy:.4f}"
    assert test_accuracy >= 0.973, f"test accuracy {test_accuracy:.4f} after {seconds:.0f} s"
