"""Costs: value, ∂C/∂a and the output delta against central differences (float64); finiteness at a ∈ {0, 1}."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core.activations import get_activation
from core.costs import COSTS, get_cost, l2_penalty
from core.errors import ConfigError


def one_hot(labels, k):
    return np.eye(k)[labels]


def targets(name, rng, m=4, k=3):
    """One-hot rows for log-likelihood (it assumes one true class); any y in [0, 1] for the others."""
    if name == "log-likelihood":
        return one_hot(rng.integers(0, k, m), k)
    return rng.uniform(0, 1, size=(m, k))


@pytest.mark.parametrize("name", list(COSTS))
def test_derivative_matches_central_difference(name, rng, numgrad, gradclose):
    cost = get_cost(name)
    a = rng.uniform(0.05, 0.95, size=(4, 3))
    y = targets(name, rng)
    numeric = numgrad(lambda: float(np.sum(cost.value(a, y))), a)
    gradclose(cost.derivative(a, y), numeric)


PAIRS = [
    ("quadratic", "sigmoid"),  # the seed's slow learner: delta keeps σ'
    ("quadratic", "linear"),  # paired: delta = a − y
    ("quadratic", "tanh"),
    ("cross-entropy", "sigmoid"),  # paired: σ' cancels
    ("cross-entropy", "softmax"),
    ("log-likelihood", "softmax"),  # paired
    ("log-likelihood", "sigmoid"),
]


@pytest.mark.parametrize("cost_name, activation_name", PAIRS)
def test_delta_is_the_gradient_with_respect_to_z(cost_name, activation_name, rng, numgrad, gradclose):
    cost, act = get_cost(cost_name), get_activation(activation_name)
    z = rng.uniform(-2, 2, size=(4, 3))
    y = targets(cost_name, rng)
    if activation_name == "tanh":
        y = rng.uniform(-1, 1, size=(4, 3))
    numeric = numgrad(lambda: float(np.sum(cost.value(act.value(z), y))), z)
    gradclose(cost.delta(z, act.value(z), y, act), numeric)


def test_paired_delta_is_a_minus_y_and_quadratic_keeps_sigma_prime(rng):
    z = rng.uniform(-2, 2, size=(4, 3))
    y = one_hot(rng.integers(0, 3, 4), 3)
    sig, soft = get_activation("sigmoid"), get_activation("softmax")
    a = sig.value(z)
    np.testing.assert_array_equal(get_cost("cross-entropy").delta(z, a, y, sig), a - y)
    np.testing.assert_allclose(get_cost("quadratic").delta(z, a, y, sig), (a - y) * a * (1 - a))
    s = soft.value(z)
    np.testing.assert_array_equal(get_cost("log-likelihood").delta(z, s, y, soft), s - y)


def test_known_values():
    a = np.array([[0.8, 0.1]])
    y = np.array([[1.0, 0.0]])
    np.testing.assert_allclose(get_cost("quadratic").value(a, y), [0.5 * (0.04 + 0.01)])
    np.testing.assert_allclose(get_cost("cross-entropy").value(a, y), [-np.log(0.8) - np.log(0.9)])
    np.testing.assert_allclose(get_cost("log-likelihood").value(a, y), [-np.log(0.8)])


@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.sampled_from([0.0, 1.0, 0.5])),
    arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.sampled_from([0.0, 1.0])),
    st.sampled_from([np.float32, np.float64]),
)
def test_cross_entropy_is_finite_where_a_is_exactly_0_or_1(a, y, dtype):
    m, k = min(a.shape[0], y.shape[0]), min(a.shape[1], y.shape[1])
    a, y = a[:m, :k].astype(dtype), y[:m, :k].astype(dtype)
    cost = get_cost("cross-entropy")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = cost.value(a, y)
        delta = cost.delta(a, a, y, get_activation("sigmoid"))
        derivative = cost.derivative(a, y)
    assert np.isfinite(value).all() and np.isfinite(delta).all() and np.isfinite(derivative).all()
    right = (a == y).all(axis=1)
    np.testing.assert_array_equal(value[right], 0.0)  # a perfect answer costs nothing


def test_log_likelihood_is_finite_at_zero_probability():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = get_cost("log-likelihood").value(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert np.isfinite(value).all() and value[0] > 700


def test_l2_penalty_is_lambda_over_2n_times_sum_of_squared_weights():
    weights = [np.full((2, 3), 2.0), np.full((3,), -1.0)]
    assert l2_penalty(weights, lmbda=5.0, n=10) == pytest.approx(5.0 / 20 * (6 * 4 + 3))
    assert l2_penalty(weights, lmbda=0.0, n=10) == 0.0


def test_unknown_cost_names_the_choices():
    with pytest.raises(ConfigError, match="cross-entropy"):
        get_cost("hinge")
