"""Layers: small batch-first objects with ``forward(X, training)`` and ``backward(dY)``.

A network is a list of them: ``Dense → ActivationLayer → Dropout → … → Dense →
ActivationLayer``. Each caches only what its backward needs. In training mode the
outputs are written into buffers the layer owns and reuses batch after batch, so the
training loop allocates nothing per mini-batch; such an output is overwritten by the
next training-mode call. In inference mode (``training=False``) every call returns
fresh arrays and leaves the training buffers alone.
"""

from __future__ import annotations

import numpy as np

from core.activations import Activation, get_activation


class _Buffers:
    """Scratch arrays reused across calls: ``get("Z", m, n)`` is a C-contiguous ``(m, n)`` array.

    The last array handed out under each name is returned again while the shape stays
    the same (every full mini-batch); a smaller last batch gets a view of the same memory.
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self._arrays: dict[str, np.ndarray] = {}
        self._last: dict[str, np.ndarray] = {}

    def get(self, name: str, m: int, n: int) -> np.ndarray:
        last = self._last.get(name)
        if last is not None and last.shape[0] == m and last.shape[1] == n:
            return last
        array = self._arrays.get(name)
        if array is None or array.shape[0] < m or array.shape[1] != n:
            array = np.empty((m, n), dtype=self.dtype)
            self._arrays[name] = array
        view = array if array.shape[0] == m else array[:m]
        self._last[name] = view
        return view


class Dense:
    """Fully connected affine layer, Z = X·W + b, with W of shape ``(n_in, n_out)``.

    ``w_scale`` lets training apply L2 weight decay lazily: the effective weights are
    ``w_scale · W``, so the per-step decay (1 − ηλ/n) costs one multiplication of a
    scalar instead of a pass over W. :meth:`fold_scale` writes it back into W; outside
    the training loop it is always 1.

    ``input_grad=False`` (the first layer) skips ∂C/∂X, which nothing needs.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        rng: np.random.Generator,
        init: str = "scaled",
        dtype: str | np.dtype = "float32",
        input_grad: bool = True,
    ) -> None:
        self.dtype = np.dtype(dtype)
        std = 1.0 / np.sqrt(n_in) if init == "scaled" else 1.0
        # Drawn in float64 then cast, so float32 and float64 networks of one seed start alike.
        self.W = (rng.standard_normal((n_in, n_out)) * std).astype(self.dtype)
        self.b = rng.standard_normal(n_out).astype(self.dtype)
        self.w_scale = 1.0
        self.n_in, self.n_out = n_in, n_out
        self.input_grad = input_grad
        self.nabla_w = np.zeros_like(self.W)
        self.nabla_b = np.zeros_like(self.b)
        self.X: np.ndarray | None = None
        self._buf = _Buffers(self.dtype)

    def fold_scale(self) -> None:
        """Write the lazy decay factor into W (W ← w_scale·W, w_scale ← 1)."""
        if self.w_scale != 1.0:
            np.multiply(self.W, self.w_scale, out=self.W)
            self.w_scale = 1.0

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """X ``(m, n_in)`` → Z ``(m, n_out)``."""
        if not training:
            Z = X @ self.W
        else:
            self.X = X
            Z = np.matmul(X, self.W, out=self._buf.get("Z", X.shape[0], self.n_out))
        if self.w_scale != 1.0:
            np.multiply(Z, self.w_scale, out=Z)
        np.add(Z, self.b, out=Z)
        return Z

    def backward(self, dY: np.ndarray) -> np.ndarray | None:
        """dY = ∂C/∂Z ``(m, n_out)`` → ∂C/∂X = dY·Wᵀ ``(m, n_in)``, or None when ``input_grad`` is off.

        Stores ∂C/∂W = Xᵀ·dY ``(n_in, n_out)`` in ``nabla_w`` and ∂C/∂b (the column sums
        of dY) in ``nabla_b``; C sums over the batch's examples. Everything is linear in
        dY, so training scales the output delta once by −η/m and every layer's nabla is
        then its step (no pass over a weight-sized array to scale it).
        """
        dX = None
        if self.input_grad:
            dX = np.matmul(dY, self.W.T, out=self._buf.get("dX", dY.shape[0], self.n_in))
            if self.w_scale != 1.0:
                np.multiply(dX, self.w_scale, out=dX)
        np.matmul(self.X.T, dY, out=self.nabla_w)
        np.add.reduce(dY, axis=0, out=self.nabla_b)
        return dX


class ActivationLayer:
    """Applies an activation elementwise (softmax: per row); caches z and a for backward."""

    def __init__(self, activation: str | Activation, dtype: str | np.dtype = "float32") -> None:
        self.activation = get_activation(activation)
        self.Z: np.ndarray | None = None
        self.A: np.ndarray | None = None
        self._buf = _Buffers(np.dtype(dtype))

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        """Z ``(m, n)`` → A ``(m, n)``."""
        if not training:
            return self.activation.value(Z)
        self.Z = Z
        self.A = self.activation.value(Z, out=self._buf.get("A", Z.shape[0], Z.shape[1]))
        return self.A

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """dA = ∂C/∂A ``(m, n)`` → ∂C/∂Z ``(m, n)``."""
        out = self._buf.get("dZ", dA.shape[0], dA.shape[1])
        return self.activation.backward(dA, self.Z, self.A, out=out)


class Dropout:
    """Inverted dropout: in training, zero each unit with probability ``p`` and scale the rest by 1/(1 − p).

    The mask drawn in ``forward`` is kept and applied again in ``backward`` (the gradient
    flows only through the units that were kept). At evaluation it is the identity, so
    no rescaling is needed then. ``frozen = True`` reuses the last mask (gradient checks).
    """

    def __init__(self, p: float, rng: np.random.Generator | None = None, dtype: str | np.dtype = "float32") -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p={p!r} must be in [0, 1)")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()
        self.frozen = False
        self.mask: np.ndarray | None = None
        self._buf = _Buffers(np.dtype(dtype))

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """X ``(m, n)`` → X ⊙ mask ``(m, n)`` in training, X itself otherwise."""
        if not training or self.p == 0.0:
            return X
        m, n = X.shape
        if not (self.frozen and self.mask is not None and self.mask.shape == X.shape):
            mask = self._buf.get("mask", m, n)
            self.rng.random(dtype=mask.dtype, out=mask)  # uniform [0, 1)
            np.greater_equal(mask, self.p, out=mask)
            np.multiply(mask, 1.0 / (1.0 - self.p), out=mask)
            self.mask = mask
        return np.multiply(X, self.mask, out=self._buf.get("Y", m, n))

    def backward(self, dY: np.ndarray) -> np.ndarray:
        """dY ``(m, n)`` → dY ⊙ mask, the same mask as the forward pass."""
        if self.p == 0.0:
            return dY
        return np.multiply(dY, self.mask, out=self._buf.get("dX", dY.shape[0], dY.shape[1]))
