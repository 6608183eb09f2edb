"""Costs, each a small object with a value and an output-layer delta (as in Nielsen's network2).

Shapes are batch-first: activations ``a`` and one-hot targets ``y`` are ``(m, k)``.

- ``value(a, y)``: the cost of each example, shape ``(m,)``. The network's cost is the
  mean over examples plus the L2 term :func:`l2_penalty`, λ/(2n)·Σw² (weights only).
- ``derivative(a, y)``: ∂C_x/∂a for each example, shape ``(m, k)``.
- ``delta(z, a, y, activation, out=None)``: ∂C_x/∂z at the output layer. With the
  activation each cost is paired with (sigmoid for cross-entropy, softmax for
  log-likelihood) the σ' factor cancels and delta is simply ``a − y``; that cancellation
  is why these pairs learn fast from a saturated start.
"""

from __future__ import annotations

import numpy as np

from core.activations import Activation
from core.config import COST_NAMES
from core.errors import ConfigError


def _safe_log(x: np.ndarray) -> np.ndarray:
    """ln x with x clipped to the smallest normal number, so ln 0 is finite (about −87 or −708)."""
    return np.log(np.maximum(x, np.finfo(x.dtype).tiny))


class Cost:
    """Base class. Subclasses define ``value`` and ``derivative``; ``delta`` chains through σ'."""

    name = ""
    pairs_with = ""  # the output activation whose σ' cancels in delta

    def value(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def delta(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation, out: np.ndarray | None = None
    ) -> np.ndarray:
        """∂C_x/∂z of the output layer, shape ``(m, k)``."""
        if out is None:
            out = np.empty_like(a)
        if activation.name == self.pairs_with:
            return np.subtract(a, y, out=out)
        return activation.backward(self.derivative(a, y), z, a, out=out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class QuadraticCost(Cost):
    """½‖a − y‖². With a sigmoid output its delta keeps the σ' factor, so a saturated unit learns slowly."""

    name = "quadratic"
    pairs_with = "linear"

    def value(self, a, y):
        return 0.5 * np.sum(np.square(a - y), axis=-1)

    def derivative(self, a, y):
        return a - y


class CrossEntropyCost(Cost):
    """−Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)], finite even where a is exactly 0 or 1."""

    name = "cross-entropy"
    pairs_with = "sigmoid"

    def value(self, a, y):
        return -np.sum(y * _safe_log(a) + (1 - y) * _safe_log(1 - a), axis=-1)

    def derivative(self, a, y):
        tiny = np.finfo(a.dtype).tiny
        return (a - y) / np.maximum(a * (1 - a), tiny)


class LogLikelihoodCost(Cost):
    """−ln a_y, the log-probability of the true class, for a softmax output."""

    name = "log-likelihood"
    pairs_with = "softmax"

    def value(self, a, y):
        return -np.sum(y * _safe_log(a), axis=-1)

    def derivative(self, a, y):
        return -y / np.maximum(a, np.finfo(a.dtype).tiny)


def l2_penalty(weights: list[np.ndarray], lmbda: float, n: int) -> float:
    """λ/(2n)·Σ w², summed over every weight (biases are not regularised)."""
    if lmbda == 0:
        return 0.0
    return 0.5 * lmbda / n * sum(float(np.vdot(w, w)) for w in weights)


COSTS: dict[str, Cost] = {cls.name: cls() for cls in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}
assert tuple(sorted(COSTS)) == tuple(sorted(COST_NAMES))


def get_cost(name: str | Cost) -> Cost:
    """The cost called ``name`` (or ``name`` itself if it already is one)."""
    if isinstance(name, Cost):
        return name
    try:
        return COSTS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"cost={name!r} is unknown; choose from {', '.join(COST_NAMES)}") from None
