"""Layers: Dense gradients (dX, dW, db) against central differences, the lazy weight scale, dropout's mask."""

from __future__ import annotations

import numpy as np
import pytest

from core.layers import ActivationLayer, Dense, Dropout


def make_dense(rng, n_in=5, n_out=4, input_grad=True):
    return Dense(n_in, n_out, rng, dtype="float64", input_grad=input_grad)


def test_dense_gradients_match_central_differences(rng, numgrad, gradclose):
    """For C = Σ G ⊙ (X·W + b): dX, dW and db from backward against finite differences."""
    dense = make_dense(rng)
    X = rng.standard_normal((3, 5))
    G = rng.standard_normal((3, 4))  # plays ∂C/∂Z

    def C():
        return float(np.sum(G * dense.forward(X)))

    dense.forward(X, training=True)
    dX = dense.backward(G)
    gradclose(dX, numgrad(C, X))
    gradclose(dense.nabla_w, numgrad(C, dense.W))
    gradclose(dense.nabla_b, numgrad(C, dense.b))


def test_backward_is_linear_in_dY_so_one_scaled_delta_scales_every_gradient(rng):
    """Training relies on this: scaling the output delta by −η/m makes each nabla the SGD step."""
    dense = make_dense(rng)
    X, G = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    dense.forward(X, training=True)
    dX1 = dense.backward(G).copy()
    nw1, nb1 = dense.nabla_w.copy(), dense.nabla_b.copy()
    G_before = G.copy()
    dX2 = dense.backward(-0.25 * G)
    np.testing.assert_allclose(dX2, -0.25 * dX1)
    np.testing.assert_allclose(dense.nabla_w, -0.25 * nw1)
    np.testing.assert_allclose(dense.nabla_b, -0.25 * nb1)
    dense.backward(G)
    np.testing.assert_array_equal(G, G_before)  # dY is not modified


def test_lazy_weight_scale_is_the_same_layer_as_scaled_weights(rng):
    """Effective weights are w_scale·W in forward and backward; fold_scale writes them into W."""
    lazy, eager = make_dense(rng), make_dense(np.random.default_rng(0))
    eager.W[...] = lazy.W * 0.8
    eager.b[...] = lazy.b
    lazy.w_scale = 0.8
    X, G = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(lazy.forward(X, training=True), eager.forward(X, training=True))
    np.testing.assert_allclose(lazy.backward(G), eager.backward(G))
    np.testing.assert_allclose(lazy.nabla_w, eager.nabla_w)  # ∂C/∂W is the same: it does not depend on W
    lazy.fold_scale()
    assert lazy.w_scale == 1.0
    np.testing.assert_allclose(lazy.W, eager.W)


def test_first_layer_computes_no_input_gradient(rng):
    dense = make_dense(rng, input_grad=False)
    dense.forward(rng.standard_normal((3, 5)), training=True)
    assert dense.backward(rng.standard_normal((3, 4))) is None


def test_training_mode_reuses_buffers_and_inference_does_not_touch_them(rng):
    dense = make_dense(rng)
    X = rng.standard_normal((3, 5))
    Z1 = dense.forward(X, training=True)
    Z2 = dense.forward(X, training=True)
    assert Z1 is Z2 or np.shares_memory(Z1, Z2)
    before = Z2.copy()
    Z3 = dense.forward(rng.standard_normal((3, 5)))
    assert not np.shares_memory(Z3, Z2)
    np.testing.assert_array_equal(Z2, before)


def test_smaller_last_batch_uses_a_view_of_the_same_buffer(rng):
    dense = make_dense(rng)
    Z = dense.forward(rng.standard_normal((4, 5)), training=True)
    Zs = dense.forward(rng.standard_normal((2, 5)), training=True)
    assert Zs.shape == (2, 4) and np.shares_memory(Z, Zs) and Zs.flags.c_contiguous


def test_init_scales():
    rng = np.random.default_rng(0)
    scaled = Dense(400, 300, rng, init="scaled", dtype="float64")
    large = Dense(400, 300, rng, init="large", dtype="float64")
    assert scaled.W.std() == pytest.approx(1 / 20, rel=0.02)
    assert large.W.std() == pytest.approx(1.0, rel=0.02)
    assert scaled.b.std() == pytest.approx(1.0, rel=0.2)


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax", "tanh"])
def test_activation_layer_backward_matches_central_differences(name, rng, numgrad, gradclose):
    layer = ActivationLayer(name, "float64")
    Z = rng.uniform(-2, 2, size=(3, 4))
    G = rng.standard_normal((3, 4))
    layer.forward(Z, training=True)
    gradclose(layer.backward(G), numgrad(lambda: float(np.sum(G * layer.forward(Z))), Z))


def test_dropout_mask_is_kept_from_forward_and_applied_in_backward(rng):
    p = 0.4
    drop = Dropout(p, np.random.default_rng(1), dtype="float64")
    X = rng.uniform(0.5, 1.5, size=(200, 50))
    Y = drop.forward(X, training=True)
    kept = Y != 0
    assert 0.55 < kept.mean() < 0.65  # about 1 − p survive
    np.testing.assert_allclose(Y[kept], X[kept] / (1 - p))  # inverted: survivors scaled by 1/(1 − p)
    dY = rng.standard_normal(X.shape)
    dX = drop.backward(dY)
    np.testing.assert_array_equal(dX[~kept], 0.0)  # no gradient through dropped units
    np.testing.assert_allclose(dX[kept], dY[kept] / (1 - p))


def test_dropout_gradient_matches_central_differences_with_mask_fixed(rng, numgrad, gradclose):
    drop = Dropout(0.5, np.random.default_rng(2), dtype="float64")
    X, G = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    drop.forward(X, training=True)
    drop.frozen = True
    gradclose(drop.backward(G), numgrad(lambda: float(np.sum(G * drop.forward(X, training=True))), X))


def test_dropout_is_identity_at_evaluation_and_new_mask_each_batch(rng):
    drop = Dropout(0.5, np.random.default_rng(3), dtype="float64")
    X = rng.standard_normal((10, 20))
    assert drop.forward(X, training=False) is X
    m1 = drop.forward(X, training=True).copy() != 0
    m2 = drop.forward(X, training=True).copy() != 0
    assert (m1 != m2).any()


def test_dropout_keeps_the_expected_activation(rng):
    drop = Dropout(0.3, np.random.default_rng(4), dtype="float64")
    X = np.ones((2000, 100))
    assert drop.forward(X, training=True).mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_rejects_p_outside_0_1():
    with pytest.raises(ValueError):
        Dropout(1.0)
