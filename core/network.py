"""The network: fully connected layers, a cost, forward and backprop over whole mini-batches.

Batch-first throughout: inputs ``X`` are ``(m, sizes[0])``, ``weights[i]`` is
``(sizes[i], sizes[i+1])``, outputs are ``(m, sizes[-1])``. One dtype is chosen at
construction (float32 by default, float64 for gradient checks) and kept everywhere.

The output encoding says what the outputs mean. ``"onehot"`` (the default): one output
per class, the target is a one-hot row and the prediction the most active output.
``"binary"``: the ``k = sizes[-1]`` sigmoid outputs are the bits of the class, most
significant first (digit 6 is 0110 with k = 4); the target is that code and the
prediction the code read back from the outputs, each above 0.5 a 1. The code read back
can be one no class has (10–15 for the ten digits): it never equals a label, so it
counts as an error.

No I/O here: :meth:`Network.save` and :meth:`Network.load` hand over to :mod:`core.io`
(a single ``.npz``, no pickle).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from core import io
from core.config import (
    DTYPE_NAMES,
    INIT_NAMES,
    check_choice,
    check_encoding,
    check_sizes,
    output_activation_for,
    parse_activations,
)
from core.costs import Cost, get_cost, l2_penalty
from core.errors import ConfigError, DataError
from core.layers import ActivationLayer, Dense, Dropout

if TYPE_CHECKING:
    from core.config import TrainConfig

CHUNK = 2048  # rows per forward pass at evaluation: bounded memory, GEMMs still large
MAX_PIXEL = 255
MAX_CODE_BITS = 16  # binary encoding: at most 2**16 classes (the code table is built once)


class Network:
    """A feed-forward network of ``Dense`` layers, each followed by an activation (and dropout when hidden).

    ``activation`` names the hidden layers' activation (one name, or one per hidden layer
    as ``"relu,tanh"``); the output layer is softmax for the log-likelihood cost and
    sigmoid otherwise, unless ``output_activation`` says so. ``init="scaled"`` draws
    weights from N(0, 1/n_in), ``"large"`` from N(0, 1); biases from N(0, 1) (the seed's
    choice). ``rng=None`` draws from a fresh, unseeded generator. ``output_encoding`` is
    ``"onehot"`` or ``"binary"`` (sigmoid outputs read as bits; see the module's docstring).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        cost: str | Cost = "cross-entropy",
        init: str = "scaled",
        dtype: str = "float32",
        rng: np.random.Generator | None = None,
        *,
        output_activation: str | None = None,
        dropout: float = 0.0,
        output_encoding: str = "onehot",
    ) -> None:
        self.sizes = check_sizes(sizes)
        hidden = parse_activations(activation, len(self.sizes) - 2)
        self.cost = get_cost(cost)
        check_choice("init", init, INIT_NAMES)
        check_choice("dtype", dtype if isinstance(dtype, str) else np.dtype(dtype).name, DTYPE_NAMES)
        self.dtype = np.dtype(dtype)
        output = output_activation or output_activation_for(self.cost.name)
        parse_activations(output, 1)
        self.output_encoding = check_encoding(output_encoding, output)
        if output_encoding == "binary" and self.sizes[-1] > MAX_CODE_BITS:
            raise ConfigError(
                f"output_encoding='binary' with {self.sizes[-1]} outputs would code 2**{self.sizes[-1]} classes; "
                f"use at most {MAX_CODE_BITS} outputs (4 code the ten digits)"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout={dropout!r} must be in [0, 1)")
        rng = rng if rng is not None else np.random.default_rng()

        self.layers: list = []
        self.dense: list[Dense] = []
        self.dropouts: list[Dropout] = []
        names = hidden + (output,)
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            dense = Dense(n_in, n_out, rng, init=init, dtype=self.dtype, input_grad=i > 0)
            self.dense.append(dense)
            self.layers += [dense, ActivationLayer(names[i], self.dtype)]
            if i < len(hidden):
                drop = Dropout(dropout, rng, self.dtype)
                self.dropouts.append(drop)
                self.layers.append(drop)
        self.output_layer: ActivationLayer = self.layers[-1]
        self._backward_layers = self.layers[-2::-1]  # the cost's delta already includes the output activation
        # target_rows[c] is what the outputs should be for class c: (n_classes, sizes[-1])
        k = self.sizes[-1]
        if self.output_encoding == "binary":
            self._bit_values = 1 << np.arange(k - 1, -1, -1, dtype=np.int64)  # 8, 4, 2, 1 for k = 4
            codes = np.arange(2**k, dtype=np.int64)
            self.target_rows = ((codes[:, None] & self._bit_values) != 0).astype(self.dtype)
        else:
            self.target_rows = np.eye(k, dtype=self.dtype)

    @classmethod
    def from_config(cls, config: "TrainConfig", rng: np.random.Generator | None = None) -> "Network":
        """The network ``config`` describes, initialised from ``rng`` (default: seeded with ``config.seed``)."""
        config.validate()
        return cls(
            config.sizes,
            activation=config.hidden_activations(),
            cost=config.cost,
            init=config.init,
            dtype=config.dtype,
            rng=rng if rng is not None else np.random.default_rng(config.seed),
            dropout=config.dropout,
            output_encoding=config.output_encoding,
        )

    # --- architecture and parameters -------------------------------------------------

    @property
    def weights(self) -> list[np.ndarray]:
        """The weight matrices, ``(sizes[i], sizes[i+1])``; the network's own arrays, not copies.

        Reading them changes nothing. Only inside an :class:`core.training.SGD` epoch can
        a weight decay still be pending in ``Dense.w_scale``; the epoch writes it in before
        it returns.
        """
        return [dense.W for dense in self.dense]

    @property
    def biases(self) -> list[np.ndarray]:
        """The bias vectors, ``(sizes[i+1],)``; the network's own arrays, not copies."""
        return [dense.b for dense in self.dense]

    @property
    def activations(self) -> tuple[str, ...]:
        """The activation of every layer after the input, hidden ones first, then the output's."""
        return tuple(layer.activation.name for layer in self.layers if isinstance(layer, ActivationLayer))

    @property
    def n_classes(self) -> int:
        """How many classes the outputs can name: sizes[-1] one-hot, 2**sizes[-1] binary."""
        return len(self.target_rows)

    @property
    def dropout(self) -> float:
        return self.dropouts[0].p if self.dropouts else 0.0

    def set_dropout(self, p: float, rng: np.random.Generator | None = None) -> None:
        """Use inverted dropout with probability ``p`` on every hidden layer, masks drawn from ``rng``."""
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"dropout={p!r} must be in [0, 1)")
        for drop in self.dropouts:
            drop.p = p
            drop.mask = None
            if rng is not None:
                drop.rng = rng

    def get_params(self) -> list[np.ndarray]:
        """Copies of every parameter: weights then biases (a snapshot, e.g. of the best epoch)."""
        return [w.copy() for w in self.weights] + [b.copy() for b in self.biases]

    def set_params(self, params: Sequence[np.ndarray]) -> None:
        """Copy a :meth:`get_params` snapshot back into the network."""
        for target, source in zip(self.weights + self.biases, params, strict=True):
            np.copyto(target, source)

    def __repr__(self) -> str:
        encoding = f", output_encoding={self.output_encoding!r}" if self.output_encoding != "onehot" else ""
        return (
            f"Network(sizes={self.sizes}, activations={self.activations}, cost={self.cost.name!r}, "
            f"dtype={self.dtype.name!r}{encoding})"
        )

    # --- forward and backward ---------------------------------------------------------

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """X ``(m, sizes[0])`` in the network's dtype → output activations ``(m, sizes[-1])``.

        Raises :class:`DataError` for anything that is not such a 2-D real array.
        """
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[1] != self.sizes[0] or X.dtype.kind not in "uif":
            raise DataError(
                f"forward expects a real array of shape (m, {self.sizes[0]}), got "
                f"{getattr(X, 'shape', type(X).__name__)} {getattr(X, 'dtype', '')}".rstrip()
            )
        a = X
        for layer in self.layers:
            a = layer.forward(a, training)
        return a

    def backward(self, delta: np.ndarray) -> None:
        """Backpropagate the output layer's ∂C/∂z ``(m, sizes[-1])`` after a training-mode forward.

        Leaves ∂C/∂W and ∂C/∂b in each Dense layer's ``nabla_w`` and ``nabla_b``, for the C
        whose output delta was given (backprop is linear: a scaled delta scales them all).
        The first layer computes no gradient for its input.
        """
        out = self.output_layer
        A = getattr(out, "A", None)
        if (
            not isinstance(delta, np.ndarray) or A is None or delta.shape != A.shape
            or delta.dtype.kind not in "uif"
        ):
            raise DataError(
                f"backward expects a real delta of the shape of the last training forward's outputs "
                f"{None if A is None else A.shape}, got {getattr(delta, 'shape', type(delta).__name__)}"
            )
        dY = delta
        for layer in self._backward_layers:
            dY = layer.backward(dY)
            if dY is None:
                break

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Labels ``(m,)`` → target rows ``(m, sizes[-1])`` (one-hot, or the label's bits); rows pass through."""
        y = np.asarray(y)
        if y.ndim == 2:
            return y.astype(self.dtype, copy=False)
        return self.target_rows[y]

    def decode(self, a: np.ndarray) -> np.ndarray:
        """Output activations ``(m, sizes[-1])`` → predicted classes ``(m,)`` int64.

        One-hot: the most active output. Binary: the code whose bits are the outputs above
        0.5, which may be a code no label has (then it is simply wrong).
        """
        if self.output_encoding == "binary":
            return (a > 0.5).astype(np.int64) @ self._bit_values
        return np.argmax(a, axis=1).astype(np.int64)

    def loss(self, X: np.ndarray, y: np.ndarray, lmbda: float = 0.0, n: int | None = None, training: bool = False) -> float:
        """The seed's cost on one batch: mean over examples plus λ/(2n)·Σw² (n defaults to the batch size).

        ``training=True`` runs the training-mode forward pass (dropout on; frozen masks reused).
        """
        a = self.forward(X, training)
        n = len(X) if n is None else n
        return float(np.mean(self.cost.value(a, self.targets(y)))) + l2_penalty(self.weights, lmbda, n)

    def backprop(
        self, X: np.ndarray, y: np.ndarray, lmbda: float = 0.0, n: int | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(nabla_b, nabla_w): the gradient of :meth:`loss` (with ``training=True``) for one batch.

        The mean over the batch's examples plus (λ/n)·W for the weights. A reference
        implementation for gradient checks and teaching; training fuses this with the update.
        """
        X = np.asarray(X, dtype=self.dtype)
        m = len(X)
        n = m if n is None else n
        self.forward(X, training=True)
        out = self.output_layer
        delta = self.cost.delta(out.Z, out.A, self.targets(y), out.activation)
        self.backward(delta / m)  # the mean over the batch
        nabla_w = [d.nabla_w.copy() + (lmbda / n) * w for d, w in zip(self.dense, self.weights)]
        nabla_b = [d.nabla_b.copy() for d in self.dense]
        return nabla_b, nabla_w

    # --- inference --------------------------------------------------------------------

    def check_inputs(self, X) -> np.ndarray:
        """``X`` as a 2-D ``(n, sizes[0])`` array without copying: 28×28 images are flattened."""
        X = np.asarray(X) if not isinstance(X, np.ndarray) else X
        n_in = self.sizes[0]
        if X.ndim < 2:
            raise DataError(
                f"expected a batch of inputs of shape (n, {n_in}), got shape {X.shape}; "
                "wrap a single example as X[None]"
            )
        if X.ndim > 2:
            if int(np.prod(X.shape[1:])) != n_in:
                raise DataError(f"inputs of shape {X.shape} do not flatten to {n_in} values per example")
            X = X.reshape(len(X), n_in)
        if X.shape[1] != n_in:
            raise DataError(f"inputs have {X.shape[1]} values per example; this network expects {n_in}")
        if X.dtype.kind not in "uif":
            raise DataError(f"inputs of dtype {X.dtype} are not pixels; give floats in [0, 1] or integers 0..255")
        return X

    @staticmethod
    def check_range(X: np.ndarray) -> None:
        """Raise :class:`DataError` unless integer pixels are in 0..255 and float pixels in [0, 1] (no NaN)."""
        if X.size == 0:
            return
        low, high = X.min(), X.max()
        if X.dtype.kind in "ui":
            if low < 0 or high > MAX_PIXEL:
                raise DataError(f"integer pixels must be in 0..255, found values in {low}..{high}")
        elif not (0.0 <= low and high <= 1.0):  # also catches NaN
            raise DataError(
                f"float pixels must be in [0, 1], found values in [{low}, {high}]; "
                "divide 0..255 pixels by 255, and remove NaN or inf"
            )

    def as_float(self, X: np.ndarray, check: bool = True) -> np.ndarray:
        """One chunk of inputs in the network's dtype: integers 0..255 are scaled to [0, 1]."""
        if check:
            self.check_range(X)
        if X.dtype.kind in "ui":
            return np.divide(X, self.dtype.type(MAX_PIXEL), dtype=self.dtype)
        return X.astype(self.dtype, copy=False)

    def predict_proba(self, X) -> np.ndarray:
        """Output activations ``(n, sizes[-1])`` for X ``(n, 784)`` or ``(n, 28, 28)``.

        Pixels are integers 0..255 (e.g. uint8) or floats in [0, 1].
        """
        X = self.check_inputs(X)
        out = np.empty((len(X), self.sizes[-1]), dtype=self.dtype)
        for start in range(0, len(X), CHUNK):
            out[start : start + CHUNK] = self.forward(self.as_float(X[start : start + CHUNK]))
        return out

    def predict(self, X) -> np.ndarray:
        """Predicted labels ``(n,)`` int64: the most active output unit, or the binary code read back (:meth:`decode`)."""
        return self.decode(self.predict_proba(X))

    def check_labels(self, y, n: int) -> np.ndarray:
        """Labels as int64 ``(n,)`` in 0..n_classes−1."""
        y = np.asarray(y)
        if y.shape != (n,):
            raise DataError(f"expected {n} labels of shape ({n},), got shape {y.shape}")
        if y.dtype.kind not in "ui":
            raise DataError(f"labels must be integers, got dtype {y.dtype}")
        k = self.n_classes
        if n and (y.min() < 0 or y.max() >= k):
            raise DataError(f"labels must be in 0..{k - 1}, found {y.min()}..{y.max()}")
        return y.astype(np.int64, copy=False)

    def evaluate(self, X, y, lmbda: float = 0.0, n: int | None = None, check: bool = True) -> tuple[float, float]:
        """(mean cost, accuracy) on ``X``, ``y``, in chunks of rows.

        The cost is the seed's: the mean over the examples plus λ/(2n)·Σw² when ``lmbda``
        is given (``n`` is the training-set size; it defaults to ``len(X)`` as in the book).
        ``check=False`` skips the input checks (the training loop checks its data once).
        """
        if check:
            X = self.check_inputs(X)
            y = self.check_labels(y, len(X))
        if len(X) == 0:
            return float("nan"), float("nan")
        total, correct = 0.0, 0
        for start in range(0, len(X), CHUNK):
            labels = y[start : start + CHUNK]
            a = self.forward(self.as_float(X[start : start + CHUNK], check))
            total += float(np.sum(self.cost.value(a, self.target_rows[labels]), dtype=np.float64))
            correct += int(np.count_nonzero(self.decode(a) == labels))
        n = len(X) if n is None else n
        return total / len(X) + l2_penalty(self.weights, lmbda, n), correct / len(X)

    # --- files (the format and its checks: core.io) -------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the network to one ``.npz`` at exactly ``path``, atomically (see :mod:`core.io`)."""
        io.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Read a network written by :meth:`save`; anything else raises :class:`ModelFileError`."""
        return io.load(cls, path)
