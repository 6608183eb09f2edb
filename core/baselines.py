"""The seed's simple classifiers, to set beside the networks: random guessing, average darkness, perceptrons.

Each has ``fit(X, y)`` and ``predict(X)``: X ``(n, n_inputs)`` floats (e.g. pixels in
[0, 1], possibly a read-only memory map, read in chunks), y ``(n,)`` integer labels in
0..n_classes−1, predictions ``(n,)`` int64.

- :class:`RandomGuess`: a uniformly random label, from a seeded generator.
- :class:`AverageDarkness`: the seed's first "smart" baseline. The darkness of an image
  is the sum of its pixels; training keeps the mean darkness of each digit; an image
  gets the digit whose mean darkness is closest (the smaller digit on a tie).
- :class:`OneVsRestPerceptron`: one :class:`core.perceptron.Perceptron` per class, each
  learning "this class or not" with Rosenblatt's rule (zero start, η = 1, examples in
  order); the predicted class is the one whose perceptron is most sure, the largest
  w·x + b, since the step outputs alone may say "yes" for none or several classes.
  With a zero start η only scales the weights, so it changes no prediction.
"""

from __future__ import annotations

import numpy as np

from core.errors import DataError

CHUNK = 4096  # rows read at a time from a (possibly memory-mapped) X


def _labels(y, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "ui":
        raise DataError(f"expected {n} integer labels of shape ({n},), got shape {y.shape} and dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"labels must be in 0..{n_classes - 1}, found {y.min()}..{y.max()}")
    return y.astype(np.int64, copy=False)


def _rows(X) -> np.ndarray:
    X = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if X.ndim != 2:
        raise DataError(f"expected inputs of shape (n, n_inputs), got shape {X.shape}")
    return X


def darkness(X) -> np.ndarray:
    """The total intensity (sum of pixels) of each row of X ``(n, d)``, as float64 ``(n,)``."""
    X = _rows(X)
    return np.concatenate(
        [np.sum(X[start : start + CHUNK], axis=1, dtype=np.float64) for start in range(0, len(X), CHUNK)]
        or [np.empty(0)]
    )


class RandomGuess:
    """Guess a label uniformly at random: accuracy about 1/n_classes."""

    def __init__(self, n_classes: int = 10, seed: int = 0) -> None:
        self.n_classes = n_classes
        self.rng = np.random.default_rng(seed)

    def fit(self, X, y) -> "RandomGuess":
        return self

    def predict(self, X) -> np.ndarray:
        return self.rng.integers(0, self.n_classes, len(_rows(X)), dtype=np.int64)


class AverageDarkness:
    """Classify by total intensity: the class whose mean training darkness is nearest.

    ``averages`` ``(n_classes,)`` holds the mean darkness of each class after :meth:`fit`
    (NaN for a class with no training example, which is then never predicted).
    """

    def __init__(self, n_classes: int = 10) -> None:
        self.n_classes = n_classes
        self.averages: np.ndarray | None = None

    def fit(self, X, y) -> "AverageDarkness":
        values = darkness(X)
        y = _labels(y, len(values), self.n_classes)
        totals = np.bincount(y, weights=values, minlength=self.n_classes)
        counts = np.bincount(y, minlength=self.n_classes)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.averages = totals / counts
        return self

    def predict(self, X) -> np.ndarray:
        if self.averages is None:
            raise RuntimeError("call fit before predict")
        distances = np.abs(darkness(X)[:, None] - self.averages[None, :])
        distances[:, np.isnan(self.averages)] = np.inf
        return np.argmin(distances, axis=1).astype(np.int64)  # the first (smallest) class on a tie


class OneVsRestPerceptron:
    """``n_classes`` perceptrons side by side: ``W`` ``(n_inputs, n_classes)``, ``b`` ``(n_classes,)``.

    Column k of ``W`` with ``b[k]`` is exactly the :class:`core.perceptron.Perceptron`
    that the classic rule makes from the examples labelled 1 for class k and 0 otherwise
    (same start, same order): the ten rules are applied together, one example at a time.

    MNIST is not linearly separable, so the rule never settles: the weights after each
    epoch classify the validation set better or worse by a few percent. With validation
    data :meth:`fit` keeps the weights of the best validation epoch (as early stopping
    does for the networks). ``errors[e]`` counts the examples of epoch e+1 that changed
    at least one perceptron, ``val_accuracy[e]`` the validation accuracy after it.
    """

    def __init__(self, n_classes: int = 10, epochs: int = 10, eta: float = 1.0) -> None:
        self.n_classes = n_classes
        self.epochs = epochs
        self.eta = float(eta)
        self.W: np.ndarray | None = None
        self.b: np.ndarray | None = None
        self.errors: list[int] = []
        self.val_accuracy: list[float] = []
        self.best_epoch = 0

    def fit(self, X, y, X_val=None, y_val=None, on_epoch_end=None) -> "OneVsRestPerceptron":
        """Up to ``epochs`` sweeps over the examples in order (fewer if one makes no error).

        ``on_epoch_end(epoch, errors, val_accuracy)`` is called after each sweep
        (``val_accuracy`` is NaN without validation data).
        """
        X = _rows(X)
        n, d = X.shape
        y = _labels(y, n, self.n_classes)
        self.W = W = np.zeros((d, self.n_classes))
        self.b = b = np.zeros(self.n_classes)
        classes = np.arange(self.n_classes)
        eta = self.eta
        self.errors, self.val_accuracy, self.best_epoch = [], [], 0
        best = (-1.0, W.copy(), b.copy())
        for epoch in range(1, self.epochs + 1):
            wrong = 0
            for start in range(0, n, CHUNK):
                chunk = np.asarray(X[start : start + CHUNK], dtype=np.float64)
                wanted = (y[start : start + CHUNK, None] == classes).astype(np.float64)  # d: 1 for its class
                for x, d_x in zip(chunk, wanted):
                    error = d_x - (x @ W + b > 0)  # d − y for every perceptron
                    if error.any():
                        wrong += 1
                        W += np.multiply.outer(x, eta * error)
                        b += eta * error
            self.errors.append(wrong)
            val = accuracy(self.predict(X_val), y_val) if X_val is not None else float("nan")
            self.val_accuracy.append(val)
            if X_val is None or val > best[0]:
                best, self.best_epoch = (val, W.copy(), b.copy()), epoch
            if on_epoch_end is not None:
                on_epoch_end(epoch, wrong, val)
            if wrong == 0:
                break
        np.copyto(W, best[1])
        np.copyto(b, best[2])
        return self

    def decision_function(self, X) -> np.ndarray:
        """w·x + b of every perceptron: ``(n, n_classes)``."""
        if self.W is None:
            raise RuntimeError("call fit before predict")
        X = _rows(X)
        out = np.empty((len(X), self.n_classes))
        for start in range(0, len(X), CHUNK):
            out[start : start + CHUNK] = np.asarray(X[start : start + CHUNK], dtype=np.float64) @ self.W + self.b
        return out

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.decision_function(X), axis=1).astype(np.int64)


def accuracy(predicted, y) -> float:
    """The fraction of predictions equal to the labels."""
    predicted, y = np.asarray(predicted), np.asarray(y)
    if predicted.shape != y.shape:
        raise DataError(f"{predicted.shape[0] if predicted.ndim else 0} predictions for {len(y)} labels")
    return float(np.mean(predicted == y)) if len(y) else float("nan")
