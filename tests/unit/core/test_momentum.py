"""Momentum, Nesterov and max-norm: the fused, lazily decayed steps equal a plain reference, and μ = 0 is the old SGD bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import TrainConfig
from core.network import MAX_PIXEL, Network
from core.training import SGD, train


# --- the SGD step as it was before momentum (main at 6cf89fc), kept verbatim as the reference ---


def old_step(net: Network, eta: float, lmbda: float, n_train: int, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    m = X.shape[0]
    decay = 1.0 - eta * lmbda / n_train
    lazy = 0.5 < decay < 1.0
    w_scale = net.dense[0].w_scale
    if w_scale != 1.0 and (not lazy or w_scale * decay < 0.5):
        for dense in net.dense:
            dense.fold_scale()
        w_scale = 1.0
    new_scale = w_scale * decay if lazy else 1.0
    A = net.forward(X, training=True)
    out = net.output_layer
    delta = net.cost.delta(out.Z, A, Y, out.activation)
    scale = -eta / m / new_scale
    np.multiply(delta, scale, out=delta)
    net.backward(delta)
    for dense in net.dense:
        if lazy:
            dense.w_scale = new_scale
            np.multiply(dense.nabla_b, new_scale, out=dense.nabla_b)
        elif decay != 1.0:
            np.multiply(dense.W, decay, out=dense.W)
        np.add(dense.W, dense.nabla_w, out=dense.W)
        np.add(dense.b, dense.nabla_b, out=dense.b)
    return A.copy()


def old_train(net: Network, X, y, config: TrainConfig) -> None:
    """The old epoch loop (shuffle, gather, step, fold at the end), without validation: it changes no weight."""
    rng = np.random.default_rng([config.seed, 1])
    n, m = len(X), config.batch_size
    for _ in range(config.epochs):
        perm = rng.permutation(n)
        labels = y[perm]
        for start in range(0, n, m):
            Xb = np.divide(X[perm[start : start + m]], net.dtype.type(MAX_PIXEL), dtype=net.dtype)
            old_step(net, config.eta, config.lmbda, n, Xb, net.target_rows[labels[start : start + m]])
        for dense in net.dense:
            dense.fold_scale()


@pytest.mark.parametrize("lmbda", [5.0, 0.0, 400.0])  # lazy decay, none, eager (1 − ηλ/n ≤ 0.5)
def test_momentum_zero_trains_bit_identical_weights_to_the_old_step(lmbda):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 256, (300, 12), dtype=np.uint8)
    y = rng.integers(0, 4, 300)
    config = TrainConfig(sizes=(12, 9, 4), activation="relu", eta=0.3, lmbda=lmbda, batch_size=16, epochs=3,
                         patience=None, momentum=0.0)
    new, old = Network.from_config(config), Network.from_config(config)
    train(new, X, y, X[:50], y[:50], config)
    old_train(old, X, y, config)
    for a, b in zip(new.weights + new.biases, old.weights + old.biases):
        assert np.array_equal(a, b)
    assert not np.array_equal(new.weights[0], Network.from_config(config).weights[0])  # it did learn


# --- momentum against a plain reference -----------------------------------------------------


def reference_steps(net: Network, batches, eta, lmbda, n, mu, nesterov=False, max_norm=0.0):
    """The book's momentum, spelled out: v ← μv − η∇C (∇C from Network.backprop, L2 included), w ← w + v."""
    v = [np.zeros_like(w) for w in net.weights]
    vb = [np.zeros_like(b) for b in net.biases]
    for X, labels in batches:
        nabla_b, nabla_w = net.backprop(X, labels, lmbda=lmbda, n=n)
        for i, (w, b) in enumerate(zip(net.weights, net.biases)):
            v[i] = mu * v[i] - eta * nabla_w[i]
            vb[i] = mu * vb[i] - eta * nabla_b[i]
            if nesterov:
                w += mu * v[i] - eta * nabla_w[i]
                b += mu * vb[i] - eta * nabla_b[i]
            else:
                w += v[i]
                b += vb[i]
            if max_norm:
                norms = np.linalg.norm(w, axis=0)
                w *= np.minimum(1.0, max_norm / norms)
    return v


def epoch_batches(rng_seed, X, y, m):
    perm = np.random.default_rng(rng_seed).permutation(len(X))
    return [(X[perm[s : s + m]], y[perm[s : s + m]]) for s in range(0, len(X), m)]


CASES = [
    ((6, 5, 3), "sigmoid", "cross-entropy", 5.0, 40),  # lazy decay across the epoch
    ((6, 5, 4, 3), "relu,tanh", "log-likelihood", 5.0, 40),
    ((6, 5, 3), "sigmoid", "quadratic", 0.0, 40),  # no decay
    ((6, 5, 3), "tanh", "cross-entropy", 30.0, 40),  # 1 − ηλ/n ≤ 0.5: the eager path
]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("sizes, activation, cost, lmbda, n", CASES)
def test_momentum_epochs_equal_the_book_reference(sizes, activation, cost, lmbda, n, nesterov):
    eta, m, mu = 0.7, 4, 0.9
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    fused = Network(sizes, activation, cost, dtype="float64", rng=np.random.default_rng(1))
    reference = Network(sizes, activation, cost, dtype="float64", rng=np.random.default_rng(1))
    sgd = SGD(fused, m, n, eta, lmbda, momentum=mu, nesterov=nesterov)
    batches = []
    for epoch in range(3):  # the velocity carries over from epoch to epoch, across the end-of-epoch fold
        sgd.epoch(X, y, np.random.default_rng(epoch))
        batches += epoch_batches(epoch, X, y, m)
    v = reference_steps(reference, batches, eta, lmbda, n, mu, nesterov)
    for a, b in zip(fused.weights + fused.biases, reference.weights + reference.biases):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    for a, b in zip(sgd.velocities(), v):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    assert fused.dense[0].w_scale == 1.0  # nothing left pending after an epoch


def test_lazy_momentum_keeps_the_scale_pending_inside_the_epoch():
    """The trick is really used: mid-epoch the weights carry a scale, and reading them does not fold it."""
    net = Network((6, 5, 3), "sigmoid", dtype="float64", rng=np.random.default_rng(1))
    sgd = SGD(net, 4, 40, 0.7, 0.5, momentum=0.5)  # ηλ/n small beside (1 − μ)²: lazy all the way
    seen = []
    original = SGD.step

    def spy(self, X, Y):
        out = original(self, X, Y)
        before = net.dense[0].W.copy()
        net.weights  # a read changes nothing
        seen.append((net.dense[0].w_scale, np.array_equal(before, net.dense[0].W)))
        return out

    rng = np.random.default_rng(2)
    X, y = rng.uniform(0, 1, (40, 6)), rng.integers(0, 3, 40)
    SGD.step = spy
    try:
        sgd.epoch(X, y, np.random.default_rng(0))
    finally:
        SGD.step = original
    assert all(unchanged for _, unchanged in seen)
    assert all(scale < 1.0 for scale, _ in seen) and net.dense[0].w_scale == 1.0


def test_nesterov_differs_from_classical_momentum():
    config = TrainConfig(sizes=(6, 5, 3), eta=0.5, lmbda=1.0, batch_size=4, epochs=2, patience=None, momentum=0.9,
                         dtype="float64")
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (40, 6)), rng.integers(0, 3, 40)
    a, b = Network.from_config(config), Network.from_config(config)
    train(a, X, y, X, y, config)
    train(b, X, y, X, y, TrainConfig(**{**config.__dict__, "nesterov": True}))
    assert not np.allclose(a.weights[0], b.weights[0])


# --- max-norm ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mu", [0.0, 0.9])
def test_max_norm_caps_every_units_incoming_weights_and_equals_the_reference(mu):
    sizes, n, m, eta, lmbda, limit = (6, 5, 3), 40, 4, 2.0, 0.2, 0.3
    rng = np.random.default_rng(7)
    X, y = rng.uniform(0, 1, (n, sizes[0])), rng.integers(0, 3, n)
    fused = Network(sizes, "sigmoid", dtype="float64", rng=np.random.default_rng(1))
    reference = Network(sizes, "sigmoid", dtype="float64", rng=np.random.default_rng(1))
    sgd = SGD(fused, m, n, eta, lmbda, momentum=mu, max_norm=limit)
    free = Network(sizes, "sigmoid", dtype="float64", rng=np.random.default_rng(1))
    sgd.epoch(X, y, np.random.default_rng(0))
    reference_steps(reference, epoch_batches(0, X, y, m), eta, lmbda, n, mu, max_norm=limit)
    reference_steps(free, epoch_batches(0, X, y, m), eta, lmbda, n, mu)
    assert max(np.linalg.norm(w, axis=0).max() for w in free.weights) > 1.5 * limit  # unconstrained, they grow
    for w in fused.weights:
        assert np.linalg.norm(w, axis=0).max() <= limit * (1 + 1e-12)
    for a, b in zip(fused.weights + fused.biases, reference.weights + reference.biases):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
