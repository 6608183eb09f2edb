"""Activations: derivatives against central differences (float64), stability at |z| = 1000, softmax rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.activations import ACTIVATIONS, get_activation
from core.errors import ConfigError

ELEMENTWISE = [name for name in ACTIVATIONS if name != "softmax"]
KINKS = {"step": (0.0,), "relu": (0.0,), "saturated-linear": (0.0, 1.0)}


def away_from_kinks(name: str, z: np.ndarray) -> np.ndarray:
    """Nudge z so no entry sits within 1e-3 of a point where the derivative jumps."""
    for kink in KINKS.get(name, ()):
        near = np.abs(z - kink) < 1e-3
        z = np.where(near, kink + 0.01, z)
    return z


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_difference(name, rng, gradclose):
    """σ'(z) against (σ(z + h) − σ(z − h)) / 2h; elementwise, so every entry can move at once."""
    act = get_activation(name)
    z = away_from_kinks(name, rng.uniform(-3, 3, size=(4, 5)))
    h = 1e-6
    numeric = (act.value(z + h) - act.value(z - h)) / (2 * h)
    gradclose(act.derivative(z), numeric)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_backward_is_the_gradient_of_sum_dA_times_a(name, rng, numgrad, gradclose):
    """backward(dA, z, a) = ∂/∂z Σ dA ⊙ σ(z), checked for every activation including softmax's Jacobian."""
    act = get_activation(name)
    z = away_from_kinks(name, rng.uniform(-3, 3, size=(3, 4)))
    dA = rng.standard_normal((3, 4))
    analytic = act.backward(dA, z, act.value(z))
    numeric = numgrad(lambda: float(np.sum(dA * act.value(z))), z)
    gradclose(analytic, numeric)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_out_buffer_is_used_and_matches_fresh_result(name, rng):
    act = get_activation(name)
    z = rng.uniform(-3, 3, size=(3, 4)).astype(np.float32)
    out = np.empty_like(z)
    result = act.value(z, out=out)
    assert result is out
    np.testing.assert_array_equal(out, act.value(z))
    assert out.dtype == np.float32


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_and_warning_free_at_plus_minus_1000(name, dtype):
    z = np.array([[-1000.0, -100.0, 0.5, 100.0, 1000.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = get_activation(name).value(z)
        d = get_activation(name).backward(np.ones_like(z), z, a)
    assert np.isfinite(a).all() and np.isfinite(d).all()
    assert a.dtype == dtype


@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(-1000, 1000)))
def test_sigmoid_is_stable_and_in_0_1(z):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = get_activation("sigmoid").value(z)
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_allclose(a[z > 40], 1.0)
    np.testing.assert_allclose(a[z < -40], 0.0, atol=1e-17)


@given(
    arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 8)), elements=st.floats(-1000, 1000)),
    st.sampled_from([np.float32, np.float64]),
)
def test_softmax_rows_sum_to_one(z, dtype):
    z = z.astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = get_activation("softmax").value(z)
    assert np.isfinite(a).all() and (a >= 0).all()
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)


@settings(max_examples=50)
@given(st.floats(-1000, 1000), st.floats(-1000, 1000))
def test_softmax_is_shift_invariant_even_at_1000(shift, other):
    z = np.array([[shift, other, 0.0]])
    a = get_activation("softmax").value(z)
    b = get_activation("softmax").value(z - 1000.0)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_known_values():
    z = np.array([[-2.0, 0.0, 0.5, 2.0]])
    np.testing.assert_allclose(get_activation("sigmoid").value(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_array_equal(get_activation("step").value(z), [[0, 0, 1, 1]])
    np.testing.assert_array_equal(get_activation("saturated-linear").value(z), [[0, 0, 0.5, 1]])
    np.testing.assert_array_equal(get_activation("relu").value(z), [[0, 0, 0.5, 2]])
    np.testing.assert_allclose(get_activation("gaussian").value(z), np.exp(-(z**2)))
    np.testing.assert_array_equal(get_activation("linear").value(z), z)


def test_unknown_activation_names_the_choices():
    with pytest.raises(ConfigError, match="sigmoid"):
        get_activation("swish")
