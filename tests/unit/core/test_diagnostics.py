"""Per-layer diagnostics (issue 9): gradient norms, weight norms and saturation, from the training loop itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.config import TrainConfig
from core.network import Network
from core.training import train


def one_batch_config(n, **changes):
    """batch_size = n: one step per epoch, so the epoch's mean gradient norm is that of one full-batch gradient."""
    values = dict(sizes=(3, 4, 2), eta=0.5, lmbda=2.0, batch_size=n, epochs=1, patience=None, dtype="float64")
    values.update(changes)
    return TrainConfig(**values)


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 3)), rng.integers(0, 2, n)


def test_gradient_norms_weight_norms_and_saturation_match_a_hand_computation():
    X, y = data()
    config = one_batch_config(len(X))
    net = Network.from_config(config)
    net.dense[0].W[:, 0] = 20.0  # hidden unit 1 saturates at 1 for every input but 0
    net.dense[0].b[0] = 0.0
    start = Network.from_config(config)
    start.set_params(net.get_params())

    result = train(net, X, y, X, y, config, diagnostics=True)
    diag = result.history[0].diagnostics

    nabla_b, nabla_w = start.backprop(X, y, lmbda=0.0)  # the data cost's gradient, before the step
    hidden = 1 / (1 + np.exp(-(X @ start.weights[0] + start.biases[0])))
    output = 1 / (1 + np.exp(-(hidden @ start.weights[1] + start.biases[1])))
    for layer, a in ((1, hidden), (2, output)):
        assert diag[f"diag/layer{layer}/grad_norm"] == pytest.approx(np.linalg.norm(nabla_w[layer - 1]), rel=1e-12)
        assert diag[f"diag/layer{layer}/weight_norm"] == pytest.approx(np.linalg.norm(net.weights[layer - 1]), rel=1e-12)
        assert diag[f"diag/layer{layer}/saturated"] == pytest.approx(np.mean((a < 0.01) | (a > 0.99)))
    assert diag["diag/layer1/saturated"] >= 0.25  # the forced unit


def test_relu_saturation_is_the_fraction_of_units_dead_for_the_whole_epoch():
    X, y = data(n=40)
    config = one_batch_config(10, activation="relu", sizes=(3, 5, 2), epochs=1)
    net = Network.from_config(config)
    net.dense[0].b[:2] = -100.0  # two of five hidden units can never fire on inputs in [0, 1]
    net.dense[0].b[2:] = 5.0  # the other three always fire
    diag = train(net, X, y, X, y, config, diagnostics=True).history[0].diagnostics
    assert diag["diag/layer1/saturated"] == pytest.approx(2 / 5)
    assert "diag/layer2/saturated" in diag  # sigmoid output


def test_epoch_average_of_gradient_norms_over_mini_batches():
    X, y = data(n=12)
    config = one_batch_config(4, lmbda=0.0)
    net = Network.from_config(config)
    reference = Network.from_config(config)
    rng = np.random.default_rng(99)
    order = np.random.default_rng(99).permutation(len(X))
    diag = train(net, X, y, X, y, config, rng=rng, diagnostics=True).history[0].diagnostics
    norms = []
    for start in range(0, 12, 4):
        idx = order[start : start + 4]
        nabla_b, nabla_w = reference.backprop(X[idx], y[idx])
        norms.append([np.linalg.norm(g) for g in nabla_w])
        for w, gw, b, gb in zip(reference.weights, nabla_w, reference.biases, nabla_b):
            w -= config.eta * gw
            b -= config.eta * gb
    for layer in (1, 2):
        assert diag[f"diag/layer{layer}/grad_norm"] == pytest.approx(np.mean([n[layer - 1] for n in norms]), rel=1e-10)


def test_off_by_default_and_keys_are_named_per_layer():
    X, y = data()
    config = one_batch_config(4, sizes=(3, 4, 4, 2), activation="tanh,sigmoid", epochs=2)
    assert all(m.diagnostics == {} for m in train(Network.from_config(config), X, y, X, y, config).history)
    history = train(Network.from_config(config), X, y, X, y, config, diagnostics=True).history
    keys = set(history[-1].diagnostics)
    assert keys == {f"diag/layer{i}/{name}" for i in (1, 2, 3) for name in ("grad_norm", "weight_norm", "saturated")}
    assert all(math.isfinite(v) for v in history[-1].diagnostics.values())


def test_exact_values_of_a_network_small_enough_to_compute_by_hand():
    """2-2-2 sigmoid network, one example x = (1, 0) of class 0, cross-entropy, η = 1, one step.

    W1 = 0, b1 = (0, 100): hidden a = (σ(0), σ(100)) = (0.5, 1.0); unit 2 is saturated (σ' = 0).
    W2 = [[1, −1], [0, 0]], b2 = (−0.5, 0.5): output z = (0, 0), a = (0.5, 0.5), δ = a − y = (−0.5, 0.5).
    ∂C/∂W2 = hᵀδ = [[−0.25, 0.25], [−0.5, 0.5]], norm √0.625.
    ∂C/∂h = W2·δ = (−1, 0); δ_hidden = (−1·0.25, 0·0) = (−0.25, 0); ∂C/∂W1 = xᵀδ_hidden = [[−0.25, 0], [0, 0]], norm 0.25.
    After the step: W1 = [[0.25, 0], [0, 0]] (norm 0.25), W2 = [[1.25, −1.25], [0.5, −0.5]] (norm √3.625).
    Saturated: hidden 1 of 2 activations, output 0 of 2.
    """
    config = TrainConfig(
        sizes=(2, 2, 2), eta=1.0, lmbda=0.0, batch_size=1, epochs=1, patience=None, dtype="float64"
    )
    net = Network.from_config(config)
    net.set_params([
        np.zeros((2, 2)), np.array([[1.0, -1.0], [0.0, 0.0]]),  # W1, W2
        np.array([0.0, 100.0]), np.array([-0.5, 0.5]),  # b1, b2
    ])
    X, y = np.array([[1.0, 0.0]]), np.array([0])

    diag = train(net, X, y, X, y, config, diagnostics=True).history[0].diagnostics

    assert diag == {
        "diag/layer1/grad_norm": pytest.approx(0.25, abs=1e-15),
        "diag/layer1/weight_norm": pytest.approx(0.25, abs=1e-15),
        "diag/layer1/saturated": 0.5,
        "diag/layer2/grad_norm": pytest.approx(math.sqrt(0.625), abs=1e-15),
        "diag/layer2/weight_norm": pytest.approx(math.sqrt(3.625), abs=1e-15),
        "diag/layer2/saturated": 0.0,
    }


def test_tanh_saturation_counts_activations_near_either_bound():
    """tanh hidden units with biases (−100, 0, 100) and zero weights: outputs (−1, 0, 1), two of three saturated."""
    config = TrainConfig(sizes=(2, 3, 2), activation="tanh", eta=0.1, lmbda=0.0, batch_size=2, epochs=1,
                         patience=None, dtype="float64")
    net = Network.from_config(config)
    net.dense[0].W[:] = 0.0
    net.dense[0].b[:] = (-100.0, 0.0, 100.0)
    X, y = np.array([[0.2, 0.7], [0.9, 0.1]]), np.array([0, 1])
    diag = train(net, X, y, X, y, config, diagnostics=True).history[0].diagnostics
    assert diag["diag/layer1/saturated"] == pytest.approx(2 / 3)
