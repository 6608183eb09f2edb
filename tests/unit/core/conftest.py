"""Helpers for the core unit tests: central differences and small float64 problems."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

H = 1e-6  # central-difference step; truncation error ~H², round-off ~1e-16/H


def central_difference(f: Callable[[], float], x: np.ndarray, h: float = H) -> np.ndarray:
    """∂f/∂x for every entry of ``x`` (perturbed in place and restored), by (f(x+h) − f(x−h)) / 2h."""
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        up = f()
        x[index] = saved - h
        down = f()
        x[index] = saved
        grad[index] = (up - down) / (2 * h)
    return grad


def assert_gradient_close(analytic: np.ndarray, numeric: np.ndarray) -> None:
    """Relative error below 1e-6, entry by entry; entries near 0 are compared on the gradient's scale."""
    scale = max(float(np.max(np.abs(numeric))), 1.0)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * scale * 1e-2)


@pytest.fixture
def numgrad():
    return central_difference


@pytest.fixture
def gradclose():
    return assert_gradient_close


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
