"""Rosenblatt's perceptron: a step activation and the classic learning rule.

Output y = 1 if w·x + b > 0, else 0. For an example x with desired output d the rule is
w ← w + η·(d − y)·x and b ← b + η·(d − y): nothing changes when the output is right.
It learns any linearly separable function (AND, OR, NAND) and never XOR.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class Perceptron:
    """A single perceptron with weights ``w`` ``(n_inputs,)``, bias ``b`` and learning rate ``eta``."""

    def __init__(self, w: Sequence[float] | int, b: float = 0.0, eta: float = 1.0) -> None:
        """``w`` is the initial weights, or a number of inputs to start from zero weights."""
        self.w = np.zeros(w) if isinstance(w, int) else np.array(w, dtype=np.float64)
        self.b = float(b)
        self.eta = float(eta)
        self.errors: list[int] = []  # misclassified examples per epoch of fit()

    def predict(self, X) -> np.ndarray:
        """Outputs 0/1: ``(n,)`` int64 for X ``(n, n_inputs)``, a 0-d array for one x ``(n_inputs,)``."""
        z = np.asarray(X, dtype=np.float64) @ self.w + self.b
        return (z > 0).astype(np.int64)

    def step(self, x, d: int) -> int:
        """Apply the rule to one example; return the error d − y (0 when x was classified right)."""
        x = np.asarray(x, dtype=np.float64)
        error = int(d) - int(self.predict(x))
        if error:
            self.w += self.eta * error * x
            self.b += self.eta * error
        return error

    def fit(self, X, d, epochs: int = 100) -> "Perceptron":
        """Sweep the examples in order, one rule step each, until an epoch makes no error (or ``epochs`` run out).

        ``errors`` records the misclassifications of each epoch; ``converged`` says whether the last was 0.
        """
        X = np.asarray(X, dtype=np.float64)
        d = np.asarray(d)
        for _ in range(epochs):
            wrong = sum(1 for x, target in zip(X, d) if self.step(x, target))
            self.errors.append(wrong)
            if wrong == 0:
                break
        return self

    @property
    def converged(self) -> bool:
        return bool(self.errors) and self.errors[-1] == 0

    def __repr__(self) -> str:
        return f"Perceptron(w={self.w.tolist()}, b={self.b}, eta={self.eta})"
