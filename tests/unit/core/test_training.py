"""The training loop: one SGD step in closed form, early stopping, determinism, divergence, callbacks, memory."""

from __future__ import annotations

import pickle
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import TrainConfig
from core.errors import ConfigError, DataError, Diverged
from core.network import Network
from core.training import SGD, train


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


@settings(max_examples=60, deadline=None)
@given(
    n_in=st.integers(1, 6),
    k=st.integers(1, 4),
    m=st.integers(1, 8),
    eta=st.floats(0.01, 3.0),
    lmbda=st.floats(0.0, 10.0),
    n=st.integers(8, 1000),
    seed=st.integers(0, 2**16),
)
def test_one_sgd_step_equals_the_closed_form_update(n_in, k, m, eta, lmbda, n, seed):
    """W' = (1 − ηλ/n)·W − (η/m)·Xᵀ(σ(XW + b) − Y),  b' = b − (η/m)·Σ(σ(XW + b) − Y)."""
    rng = np.random.default_rng(seed)
    net = Network((n_in, k), "sigmoid", "cross-entropy", dtype="float64", rng=rng)
    X = rng.uniform(0, 1, (m, n_in))
    Y = np.eye(k)[rng.integers(0, k, m)]
    W, b = net.weights[0].copy(), net.biases[0].copy()
    residual = sigmoid(X @ W + b) - Y
    SGD(net, m, n, eta, lmbda).step(X, Y)
    np.testing.assert_allclose(net.weights[0], (1 - eta * lmbda / n) * W - eta / m * X.T @ residual, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.biases[0], b - eta / m * residual.sum(axis=0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "sizes, activation, cost, lmbda, n",
    [
        ((6, 5, 3), "sigmoid", "cross-entropy", 5.0, 50),  # lazy decay (0.5 < 1 − ηλ/n < 1)
        ((6, 5, 4, 3), "relu,tanh", "log-likelihood", 5.0, 50),
        ((6, 5, 3), "sigmoid", "quadratic", 0.0, 50),  # no decay
        ((6, 5, 3), "tanh", "cross-entropy", 30.0, 20),  # eager decay (1 − ηλ/n ≤ 0.5)
    ],
)
def test_fused_steps_equal_the_reference_gradient_steps(sizes, activation, cost, lmbda, n, rng):
    """Several fused SGD steps (lazy decay, scaled deltas) equal w ← w − η·∇C with ∇C from Network.backprop."""
    eta, m = 0.7, 4
    fused = Network(sizes, activation, cost, dtype="float64", rng=np.random.default_rng(1))
    reference = Network(sizes, activation, cost, dtype="float64", rng=np.random.default_rng(1))
    sgd = SGD(fused, m, n, eta, lmbda)
    for _ in range(5):
        X = rng.uniform(0, 1, (m, sizes[0]))
        labels = rng.integers(0, sizes[-1], m)
        sgd.step(X, np.eye(sizes[-1])[labels])
        nabla_b, nabla_w = reference.backprop(X, labels, lmbda=lmbda, n=n)
        for w, gw, b, gb in zip(reference.weights, nabla_w, reference.biases, nabla_b):
            w -= eta * gw
            b -= eta * gb
    for a, b in zip(fused.weights + fused.biases, reference.weights + reference.biases):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# --- the loop -------------------------------------------------------------------------


def blobs(n, rng, n_in=8, k=3):
    """k separable clusters in [0, 1]^n_in."""
    centres = rng.uniform(0.2, 0.8, (k, n_in))
    y = rng.integers(0, k, n)
    X = np.clip(centres[y] + rng.normal(0, 0.05, (n, n_in)), 0, 1).astype(np.float32)
    return X, y


def small_config(**changes):
    return replace(
        TrainConfig(sizes=(8, 6, 3), eta=1.0, lmbda=0.1, batch_size=5, epochs=4, patience=None, seed=0), **changes
    )


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X, y = blobs(300, rng)
    return X[:200], y[:200], X[200:], y[200:]


def run(config, data, **kwargs):
    X, y, Xv, yv = data
    return train(Network.from_config(config), X, y, Xv, yv, config, **kwargs)


def test_learns_a_separable_problem_and_reports_each_epoch(data):
    config = small_config(epochs=15)
    seen = []
    result = run(config, data, on_epoch_end=seen.append)
    assert [m.epoch for m in result.history] == list(range(1, 16)) and seen == result.history
    assert result.history[-1].val_accuracy > 0.95
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.stop_reason == "max_epochs" and result.stopped_epoch == 15
    assert result.best_val_accuracy == max(m.val_accuracy for m in result.history)
    for m in result.history:
        assert 0 <= m.train_accuracy <= 1 and 0 <= m.val_accuracy <= 1 and m.seconds > 0 and m.eta == 1.0


def test_train_metrics_come_from_the_epochs_own_forward_passes(data):
    """Train loss = mean cost of each example under the weights it met (+ L2 at the end of the epoch)."""
    X, y, Xv, yv = data
    config = small_config(epochs=1, lmbda=0.0, dtype="float64")
    net = Network.from_config(config)
    before_loss, before_acc = net.evaluate(X, y)
    result = train(net, X, y, Xv, yv, config)
    after_loss, _ = net.evaluate(X, y)
    m = result.history[0]
    assert after_loss < m.train_loss < before_loss  # between the start and end of the epoch


def test_same_seed_same_weights_and_different_seed_different(data):
    for dropout in (0.0, 0.3):
        a = run(small_config(dropout=dropout), data).network
        b = run(small_config(dropout=dropout), data).network
        for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
            np.testing.assert_array_equal(wa, wb)
    c = run(small_config(seed=1), data).network
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_explicit_generator_is_used(data):
    one = run(small_config(), data, rng=np.random.default_rng(5)).network
    two = run(small_config(), data, rng=np.random.default_rng(5)).network
    three = run(small_config(), data, rng=np.random.default_rng(6)).network
    np.testing.assert_array_equal(one.weights[0], two.weights[0])
    assert not np.array_equal(one.weights[0], three.weights[0])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    accuracies=st.lists(st.sampled_from([0.5, 0.6, 0.7, 0.8]), min_size=1, max_size=12),
    patience=st.integers(1, 4),
)
def test_early_stopping_fires_after_exactly_patience_epochs_and_restores_best_weights(data, accuracies, patience):
    X, y, Xv, yv = data
    config = small_config(epochs=len(accuracies), patience=patience)
    net = Network.from_config(config)
    scripted = iter(accuracies)
    net.evaluate = lambda *args, **kwargs: (1.0, next(scripted))  # validation accuracy under test control
    snapshots = {}
    def snapshot(metrics):
        snapshots[metrics.epoch] = [w.copy() for w in net.weights + net.biases]

    result = train(net, X, y, Xv, yv, config, on_epoch_end=snapshot)

    best, best_epoch, stall, stopped = -1.0, 0, 0, len(accuracies)
    for epoch, acc in enumerate(accuracies, start=1):
        if acc > best:
            best, best_epoch, stall = acc, epoch, 0
        else:
            stall += 1
            if stall == patience:
                stopped = epoch
                break
    assert result.best_epoch == best_epoch and result.best_val_accuracy == best
    assert result.stopped_epoch == stopped == len(result.history)
    assert result.stop_reason == ("patience" if stopped - best_epoch == patience else "max_epochs")
    for restored, saved in zip(result.network.weights + result.network.biases, snapshots[best_epoch]):
        np.testing.assert_array_equal(restored, saved)


def test_without_patience_the_last_weights_are_kept(data):
    X, y, Xv, yv = data
    config = small_config(epochs=3, patience=None)
    net = Network.from_config(config)
    scripted = iter([0.9, 0.5, 0.4])
    net.evaluate = lambda *args, **kwargs: (1.0, next(scripted))
    last = {}
    result = train(net, X, y, Xv, yv, config, on_epoch_end=lambda m: last.update(w=net.weights[0].copy()))
    assert result.best_epoch == 1 and result.stop_reason == "max_epochs"
    np.testing.assert_array_equal(result.network.weights[0], last["w"])


def test_eta_schedule_halves_eta_when_validation_stalls(data):
    X, y, Xv, yv = data
    config = small_config(epochs=8, patience=2, eta_schedule=True)
    net = Network.from_config(config)
    scripted = iter([0.9] + [0.1] * 7)
    net.evaluate = lambda *args, **kwargs: (1.0, next(scripted))
    result = train(net, X, y, Xv, yv, config)
    assert [m.eta for m in result.history] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_nan_loss_raises_diverged_with_the_epoch_and_a_result(data):
    config = small_config(eta=1e30, lmbda=0.0, epochs=5, activation="relu", cost="log-likelihood")
    with pytest.raises(Diverged) as caught:
        run(config, data)
    error = caught.value
    assert error.epoch == 1 and error.result.stop_reason == "diverged" and error.result.stopped_epoch == 1
    assert isinstance(error, ArithmeticError)
    copy = pickle.loads(pickle.dumps(error))  # crosses process boundaries intact
    assert copy.epoch == 1 and str(copy) == str(error)


def test_exception_from_the_callback_passes_through_untouched(data):
    class Pruned(Exception):
        pass

    raised = Pruned("stop at epoch 2")

    def callback(metrics):
        if metrics.epoch == 2:
            raise raised

    with pytest.raises(Pruned) as caught:
        run(small_config(epochs=5), data, on_epoch_end=callback)
    assert caught.value is raised


def test_a_callback_that_returns_a_reason_stops_training_with_the_best_epoch_kept(data):
    config = small_config(epochs=10, patience=10)
    full = run(config, data)
    seen = []

    def budget(metrics):
        seen.append(metrics.epoch)
        return "budget" if metrics.epoch == 3 else None

    stopped = run(config, data, on_epoch_end=budget)
    assert seen == [1, 2, 3] and stopped.stop_reason == "budget" and stopped.stopped_epoch == 3
    assert [m.val_accuracy for m in stopped.history] == [m.val_accuracy for m in full.history[:3]]
    best = max(range(3), key=lambda i: (stopped.history[i].val_accuracy, -i))
    assert stopped.best_epoch == best + 1 and stopped.best_val_accuracy == stopped.history[best].val_accuracy


def test_last_partial_batch_is_trained_on(data, monkeypatch):
    X, y, Xv, yv = data
    sizes = []
    original = SGD.step
    monkeypatch.setattr(SGD, "step", lambda self, Xb, Yb: (sizes.append(len(Xb)), original(self, Xb, Yb))[1])
    config = small_config(batch_size=30, epochs=1)
    train(Network.from_config(config), X, y, Xv, yv, config)
    assert sizes == [30] * 6 + [20]


def test_uint8_and_image_shaped_inputs_train_like_floats():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (60, 4, 2), dtype=np.uint8)
    y = rng.integers(0, 3, 60)
    config = small_config(dtype="float64", epochs=2)
    a = run(config, (pixels[:40], y[:40], pixels[40:], y[40:])).network
    floats = (pixels.reshape(60, 8) / 255).astype(np.float64)
    b = run(config, (floats[:40], y[:40], floats[40:], y[40:])).network
    np.testing.assert_array_equal(a.weights[0], b.weights[0])  # uint8 pixels are divided by 255 per batch


def test_read_only_memmap_is_never_copied(tmp_path):
    """Training on a memory-mapped set allocates far less than the set: one mini-batch at a time."""
    rng = np.random.default_rng(0)
    n, n_in = 20_000, 784
    path = tmp_path / "X.f32"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n_in))
    X[:] = rng.uniform(0, 1, (n, n_in)).astype(np.float32)
    X.flush()
    del X
    X = np.load(path, mmap_mode="r")
    assert not X.flags.writeable
    y = rng.integers(0, 10, n)
    config = TrainConfig(sizes=(784, 10, 10), batch_size=100, epochs=1, patience=None)
    net = Network.from_config(config)
    tracemalloc.start()
    try:
        train(net, X[:18_000], y[:18_000], X[18_000:], y[18_000:], config)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X[:18_000].nbytes / 10, f"peak {peak / 1e6:.1f} MB for a {X[:18_000].nbytes / 1e6:.0f} MB set"


def test_config_and_network_must_agree(data):
    X, y, Xv, yv = data
    net = Network.from_config(small_config())
    with pytest.raises(ConfigError, match="cost"):
        train(net, X, y, Xv, yv, small_config(cost="quadratic"))
    with pytest.raises(ConfigError, match="batch_size"):
        train(net, X, y, Xv, yv, small_config(batch_size=500))


def test_bad_data_is_refused_before_training(data):
    X, y, Xv, yv = data
    config = small_config()
    net = Network.from_config(config)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        train(net, X * 255, y, Xv, yv, config)
    with pytest.raises(DataError, match="0..2"):
        train(net, X, y + 1, Xv, yv, config)
    with pytest.raises(DataError, match="empty"):
        train(net, X, y, Xv[:0], yv[:0], config)
