"""The one training loop: mini-batch SGD with L2, dropout, early stopping and a per-epoch callback.

Read top to bottom: :class:`EpochMetrics` and :class:`TrainResult` (what comes out),
:class:`SGD` (one mini-batch step and one epoch, every buffer allocated once), then
:func:`train` (epochs, validation, early stopping, the learning-rate schedule).
Per-layer diagnostics are in :mod:`core.diagnostics`, the distortions in :mod:`core.distort`.

Logging, tracking and pruning attach through ``on_epoch_end``; whatever it raises
(e.g. ``optuna.TrialPruned``) passes through untouched.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from core.config import TrainConfig
from core.costs import l2_penalty
from core.early_stopping import HALVE, IMPROVED, STOP, EarlyStopping
from core.errors import ConfigError, DataError, Diverged
from core.diagnostics import Diagnostics
from core.distort import Distorter
from core.network import CHUNK, MAX_PIXEL, Network
from core.schedules import eta_factor, momentum_factor

SCHEDULE_HALVINGS = 6  # the book: halve η until it reaches η/128, then stop
DISTORT_BLOCK = 512  # images distorted at a time: small enough to stay in cache, large enough to vectorise


@dataclass
class EpochMetrics:
    """What one epoch measured (epochs count from 1).

    ``train_loss`` and ``train_accuracy`` come for free from the epoch's own mini-batch
    forward passes: each example is scored by the weights it met (before that batch's
    update, with dropout on), and the L2 term uses the weights at the end of the epoch.
    ``val_loss`` and ``val_accuracy`` come from a full forward pass over the validation
    set after the epoch. Both losses are the seed's cost, mean over examples plus
    λ/(2n)·Σw² with n the training-set size. ``seconds`` covers the epoch and its
    validation; ``eta`` is the learning rate used during the epoch. ``diagnostics`` is
    empty unless ``train(..., diagnostics=True)`` (keys ``diag/layer1/grad_norm`` …, see
    :class:`Diagnostics`).
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    eta: float
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """The trained network and how training went. ``stop_reason``: patience, max_epochs or diverged."""

    network: Network
    history: list[EpochMetrics]
    best_epoch: int
    stopped_epoch: int
    stop_reason: str
    best_val_accuracy: float
    seconds: float


class SGD:
    """Mini-batch stochastic gradient descent on one network, with every buffer allocated once.

    One step, for a mini-batch of m examples out of n, with ∇C = (1/m)·Σ_x ∇C_x + (λ/n)·w:

    - plain (``momentum=0``): w ← w − η·∇C, that is (1 − ηλ/n)·w − (η/m)·Σ_x ∂C_x/∂w;
    - momentum μ (the book's form): v ← μ·v − η·∇C, w ← w + v;
    - Nesterov: the same v, but w ← w + μ·v − η·∇C, so the network holds the look-ahead
      point at which the next gradient is taken (Sutskever et al. 2013, as reformulated by
      Bengio et al. 2013);

    biases alike without the λ term. ``max_norm`` > 0 then rescales each unit's incoming
    weights (a column of W) to norm ≤ max_norm (Srivastava et al. 2014). ``distorter``
    (a :class:`core.distort.Distorter`) gives each epoch freshly distorted copies of X.
    :meth:`step` reads as those equations; the speed tricks live in one marked section below it.
    """

    def __init__(
        self,
        network: Network,
        batch_size: int,
        n_train: int,
        eta: float,
        lmbda: float,
        diagnostics: bool = False,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        max_norm: float = 0.0,
        distorter: Distorter | None = None,
    ) -> None:
        self.network = network
        self.diagnostics = Diagnostics(network) if diagnostics else None
        self.batch_size = batch_size
        self.n_train = n_train
        self.eta = eta
        self.lmbda = lmbda
        self.momentum = momentum
        self.nesterov = nesterov
        self.max_norm = max_norm
        self.distorter = distorter
        dtype = network.dtype
        self._X = np.empty((batch_size, network.sizes[0]), dtype=dtype)
        self._Y = np.empty((batch_size, network.sizes[-1]), dtype=dtype)
        self._delta = np.empty((batch_size, network.sizes[-1]), dtype=dtype)
        self._targets = network.target_rows  # one row per class: one-hot, or the class's bits
        self._raw: np.ndarray | None = None  # gather buffer when the data's dtype is not the network's
        self._outputs: np.ndarray | None = None
        # Velocities, v = σ·P + β·w per weight matrix (trick 4) and v_b = Pb per bias vector.
        self._P = [np.zeros_like(d.W) for d in network.dense] if momentum or nesterov else []
        self._Pb = [np.zeros_like(d.b) for d in network.dense] if momentum or nesterov else []
        self._sigma, self._beta = 1.0, 0.0
        self._scratch: list[np.ndarray] = []
        self._in_epoch = False  # the lazy decay may stay pending only inside epoch()
        self._lazy, self._factor = False, 1.0

    def step(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """One update from a mini-batch: X ``(m, sizes[0])``, target rows Y ``(m, sizes[-1])``, both in the network's dtype.

        Returns the output activations ``(m, sizes[-1])`` of the forward pass, computed
        before the update (a buffer, overwritten by the next step). Called on its own, the
        step leaves the network's weights complete; inside :meth:`epoch` the L2 decay may
        stay pending in ``Dense.w_scale`` until the epoch ends (trick 1).
        """
        net = self.network
        m = X.shape[0]
        w_scale = self._begin_step()  # trick 1: the scale s of the weights after this step
        # Backpropagation for the whole mini-batch at once: a forward pass, then
        # (BP1) the output error δᴸ = ∇ₐC ⊙ σ'(zᴸ);
        A = net.forward(X, training=True)
        out = net.output_layer
        delta = net.cost.delta(out.Z, A, Y, out.activation, out=self._delta if m == self.batch_size else self._delta[:m])
        # (BP2) δˡ = (δˡ⁺¹·wˡ⁺¹ᵀ) ⊙ σ'(zˡ), (BP3) ∂C/∂bˡ = Σ_x δˡ, (BP4) ∂C/∂wˡ = aˡ⁻¹ᵀ·δˡ, into each
        # layer's nabla_b and nabla_w; δᴸ scaled first so that they come out as −(η/m)·Σ_x ∂C_x/∂w (trick 2).
        scale = -self.eta / m / w_scale
        np.multiply(delta, scale, out=delta)
        net.backward(delta)
        if self.diagnostics is not None:
            self.diagnostics.observe(scale * m)  # nabla_w = scale·Σ_x ∂C_x/∂W = (scale·m)·(the mean gradient)
        # The update: w ← w − η·∇C, or through the velocity v; then the max-norm constraint.
        if self._P:
            self._momentum_update(w_scale)
        else:
            self._plain_update(w_scale)
        if self.max_norm:
            self._constrain_norms()
        if not self._in_epoch:
            self._fold()
        return A

    # --- the speed tricks, all of them here --------------------------------------------
    #
    # 1. Lazy L2 decay. The factor (1 − ηλ/n) of every step would be a pass over every
    #    weight matrix; instead the effective weights are s·W with one scalar s
    #    (``Dense.w_scale``, the same in every layer) that each step multiplies, and that
    #    is written into W (``_fold``) when the epoch ends or before s drops below ½.
    # 2. Scaled deltas. Backprop is linear in δᴸ, so scaling δᴸ by −η/(m·s) once makes each
    #    nabla_w the step itself, in units of W: the update is one addition per matrix.
    # 3. Buffers. Batches are gathered into one preallocated array (``take(out=,
    #    mode="clip")``), layers reuse their outputs, nothing is allocated per step.
    # 4. Momentum with the lazy decay. With the L2 term inside v, v ← μv − η·g − c·w (c =
    #    ηλ/n) mixes w into v each step. Held as v = σ·P + β·w (P an array in units of W,
    #    σ and β scalars), the step is exact with two passes (P ← (μσ/s')·P + nabla_w,
    #    W ← W + P) and three scalars: k = 1 − c + μβ, s' = k·s, σ' = s, β' = (k − 1)/k.
    #    (Substitute: w' = w + v' = k·w + μσP − ηg, so W' = W + P'; and v' = w' − w.)
    #    k settles near 1 − c/(1 − μ) when c is small beside (1 − μ)² (MNIST: c ≈ 10⁻⁵);
    #    with a stronger decay k keeps falling, and once k ≤ ½ a step takes the eager path,
    #    as Nesterov always does: the L2 term is added to nabla_w, P is v itself (σ = 1, β = 0).

    def _begin_step(self) -> float:
        """Choose lazy or eager decay for this step and return the weights' scale s' after it."""
        s = self.network.dense[0].w_scale
        decay = 1.0 - self.eta * self.lmbda / self.n_train
        if not self._P:
            factor, lazy = decay, 0.5 < decay < 1.0
        else:
            factor = decay + self.momentum * self._beta
            lazy = not self.nesterov and 0.5 < factor
        if s != 1.0 and (not lazy or s * factor < 0.5):
            self._fold()
            s = 1.0
        if self._P and not lazy and (self._sigma != 1.0 or self._beta != 0.0):
            for P, dense in zip(self._P, self.network.dense):  # v = σP + βw written out as P (s is 1 here)
                np.multiply(P, self._sigma, out=P)
                P += self._beta * dense.W
            self._sigma, self._beta = 1.0, 0.0
        self._lazy, self._factor = lazy, factor
        return s * factor if lazy else 1.0

    def _plain_update(self, w_scale: float) -> None:
        lazy, decay = self._lazy, self._factor
        for dense in self.network.dense:
            if lazy:
                dense.w_scale = w_scale
                np.multiply(dense.nabla_b, w_scale, out=dense.nabla_b)
            elif decay != 1.0:
                np.multiply(dense.W, decay, out=dense.W)
            np.add(dense.W, dense.nabla_w, out=dense.W)
            np.add(dense.b, dense.nabla_b, out=dense.b)

    def _momentum_update(self, w_scale: float) -> None:
        mu = self.momentum
        if self._lazy:  # trick 4
            k = self._factor
            p_factor = mu * self._sigma / w_scale
            for dense, P, Pb in zip(self.network.dense, self._P, self._Pb):
                dense.w_scale = w_scale
                np.multiply(dense.nabla_b, w_scale, out=dense.nabla_b)
                np.multiply(Pb, mu, out=Pb)
                np.add(Pb, dense.nabla_b, out=Pb)
                np.add(dense.b, Pb, out=dense.b)
                np.multiply(P, p_factor, out=P)
                np.add(P, dense.nabla_w, out=P)
                np.add(dense.W, P, out=dense.W)
            self._sigma, self._beta = w_scale / k, (k - 1.0) / k
            return
        c = self.eta * self.lmbda / self.n_train
        if not self._scratch:
            self._scratch = [np.empty_like(d.W) for d in self.network.dense]
        for dense, P, Pb, scratch in zip(self.network.dense, self._P, self._Pb, self._scratch):
            if c:
                np.multiply(dense.W, -c, out=scratch)  # −η·(λ/n)·w, the L2 term of −η·∇C
                np.add(dense.nabla_w, scratch, out=dense.nabla_w)
            np.multiply(Pb, mu, out=Pb)
            np.add(Pb, dense.nabla_b, out=Pb)
            np.multiply(P, mu, out=P)
            np.add(P, dense.nabla_w, out=P)
            if self.nesterov:  # w ← w + μ·v − η·∇C
                np.add(dense.W, dense.nabla_w, out=dense.W)
                np.multiply(P, mu, out=scratch)
                np.add(dense.W, scratch, out=dense.W)
                dense.b += dense.nabla_b + mu * Pb
            else:
                np.add(dense.W, P, out=dense.W)
                np.add(dense.b, Pb, out=dense.b)

    def _constrain_norms(self) -> None:
        """Rescale each column of every W whose effective norm exceeds ``max_norm`` down to it (v unchanged)."""
        limit = self.max_norm
        for i, dense in enumerate(self.network.dense):
            s = dense.w_scale
            norms = np.sqrt(np.einsum("ij,ij->j", dense.W, dense.W)) * abs(s)
            over = norms > limit
            if not over.any():
                continue
            factor = (limit / norms[over]).astype(dense.W.dtype)
            columns = dense.W[:, over]
            if self._P and self._beta != 0.0:  # keep v = σP + βw: P gains (β/σ)·(w_old − w_new)
                self._P[i][:, over] += (self._beta / self._sigma * s) * columns * (1 - factor)
            dense.W[:, over] = columns * factor

    def _fold(self) -> None:
        for dense in self.network.dense:
            dense.fold_scale()

    def velocities(self) -> list[np.ndarray]:
        """The weight velocities v (copies, in real units); zeros without momentum."""
        if not self._P:
            return [np.zeros_like(d.W) for d in self.network.dense]
        return [self._sigma * P + self._beta * d.w_scale * d.W for P, d in zip(self._P, self.network.dense)]

    # --- one epoch ----------------------------------------------------------------------

    def _gather(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of X in the network's dtype, in the preallocated batch buffer (never a copy of X)."""
        r = len(idx)
        Xb = self._X if r == self.batch_size else self._X[:r]
        # mode="clip" lets take write straight into out (mode="raise" buffers it); idx is a
        # permutation of valid rows, so nothing is ever clipped.
        if X.dtype == Xb.dtype:
            return X.take(idx, axis=0, out=Xb, mode="clip")
        if self._raw is None or self._raw.dtype != X.dtype:
            self._raw = np.empty(self._X.shape, dtype=X.dtype)
        raw = X.take(idx, axis=0, out=self._raw[:r], mode="clip")
        if X.dtype.kind in "ui":
            return np.divide(raw, Xb.dtype.type(MAX_PIXEL), out=Xb)
        np.copyto(Xb, raw)
        return Xb

    def _distorted_block(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of X, freshly distorted, as a new array in the network's dtype."""
        rows = X.take(idx, axis=0)
        if rows.dtype.kind in "ui":
            rows = np.divide(rows, MAX_PIXEL, dtype=self.network.dtype)
        return self.distorter(rows.astype(self.network.dtype, copy=False))

    def _batches(self, X: np.ndarray, perm: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """(start, mini-batch) over X in the order ``perm``; distorted copies when a distorter is set.

        Distortion runs a block of images ahead in a background thread (NumPy releases the
        GIL), drawing its blocks in order, so a seed gives the same distortions.
        """
        n, m = len(perm), self.batch_size
        if self.distorter is None:
            for start in range(0, n, m):
                yield start, self._gather(X, perm[start : start + m])
            return
        block = m * max(1, DISTORT_BLOCK // m)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="redes-distort") as pool:
            pending = pool.submit(self._distorted_block, X, perm[:block])
            for first in range(0, n, block):
                Xblock = pending.result()
                if first + block < n:
                    pending = pool.submit(self._distorted_block, X, perm[first + block : first + 2 * block])
                for start in range(0, len(Xblock), m):
                    yield first + start, Xblock[start : start + m]

    def epoch(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[float, float, dict[str, float]]:
        """One pass over X ``(n, sizes[0])``, y ``(n,)`` int64 in a fresh random order.

        Returns (train loss, train accuracy, diagnostics), the first two scored from the
        mini-batch forward passes (see :class:`EpochMetrics`; on the distorted images when
        distortion is on), the last empty unless diagnostics are on (see :class:`Diagnostics`).
        """
        net = self.network
        n = len(X)
        if self._outputs is None or len(self._outputs) != n:
            self._outputs = np.empty((n, net.sizes[-1]), dtype=net.dtype)
        outputs = self._outputs
        perm = rng.permutation(n)
        labels = y[perm]
        if self.diagnostics is not None:
            self.diagnostics.reset()
        self._in_epoch = True
        try:
            for start, Xb in self._batches(X, perm):
                stop = start + len(Xb)
                Yb = self._targets.take(labels[start:stop], axis=0, out=self._Y[: len(Xb)], mode="clip")
                outputs[start:stop] = self.step(Xb, Yb)
        finally:
            self._in_epoch = False
            self._fold()
        loss = 0.0
        for start in range(0, n, CHUNK):
            chunk = labels[start : start + CHUNK]
            loss += float(np.sum(net.cost.value(outputs[start : start + CHUNK], self._targets[chunk]), dtype=np.float64))
        loss = loss / n + l2_penalty(net.weights, self.lmbda, self.n_train)
        accuracy = float(np.count_nonzero(net.decode(outputs) == labels)) / n
        return loss, accuracy, (self.diagnostics.result() if self.diagnostics is not None else {})


def check_matches(network: Network, config: TrainConfig) -> None:
    """Raise :class:`ConfigError` when ``network`` is not the one ``config`` describes."""
    wanted = {
        "sizes": (tuple(config.sizes), network.sizes),
        "activation": (config.hidden_activations(), network.activations[:-1]),
        "cost": (config.cost, network.cost.name),
        "dtype": (config.dtype, network.dtype.name),
        "output_encoding": (config.output_encoding, network.output_encoding),
    }
    for name, (in_config, in_network) in wanted.items():
        if in_config != in_network:
            raise ConfigError(
                f"{name}={in_config!r} in the config but the network has {in_network!r}; "
                "build the network with Network.from_config(config)"
            )


def train(
    network: Network,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    rng: np.random.Generator | None = None,
    on_epoch_end: Callable[[EpochMetrics], str | None] | None = None,
    diagnostics: bool = False,
    epochs_that_fit: Callable[[list[EpochMetrics]], int] | None = None,
) -> TrainResult:
    """Train ``network`` in place with mini-batch SGD and return how it went.

    X arrays are ``(n, sizes[0])`` (or ``(n, 28, 28)``), float in [0, 1] or uint8 0..255,
    possibly read-only memory maps: only one mini-batch at a time is gathered. y arrays
    are integer labels ``(n,)``. ``rng`` shuffles and draws dropout masks (default: a
    generator seeded with ``(config.seed, 1)``, apart from the initialisation's stream);
    distortions of the training images, when the config asks for them, come from their
    own generator seeded with ``(config.seed, 2)``. Validation images are never distorted.

    Each epoch: η from ``config.schedule`` (:mod:`core.schedules`), shuffle, one SGD step
    per mini-batch, validation, ``on_epoch_end``.
    Stops after ``config.patience`` epochs without a better validation accuracy
    (``"patience"``), after ``config.epochs`` (``"max_epochs"``), when ``on_epoch_end``
    returns a reason, or when a time budget leaves no epoch (``"budget"``, see
    ``epochs_that_fit``); with a patience the
    network ends with the weights of its best epoch. A NaN or inf loss raises
    :class:`Diverged` carrying the epoch and a ``TrainResult`` with ``"diverged"``
    (best weights restored when there were any).

    ``diagnostics=True`` fills ``EpochMetrics.diagnostics`` with per-layer gradient and
    weight norms and saturation (see :class:`Diagnostics`); off, it costs nothing.

    ``epochs_that_fit``, called after each epoch with the epochs so far, says how many epochs
    a time budget leaves in all: the schedule then spans that many instead of ``config.epochs``
    (it only ever shortens), so that a cosine η has come down by the time the budget stops
    training instead of being cut off at its height; training stops (``"budget"``) when the
    shortened schedule is over.
    """
    X_train = network.check_inputs(X_train)
    X_val = network.check_inputs(X_val)
    n_train = len(X_train)
    config.validate(n_train=n_train)
    check_matches(network, config)
    y_train = network.check_labels(y_train, n_train)
    y_val = network.check_labels(y_val, len(X_val))
    if len(X_val) == 0:
        raise DataError("the validation set is empty; early stopping and the metrics need at least one example")
    for X in (X_train, X_val):
        for start in range(0, len(X), 16 * CHUNK):
            network.check_range(X[start : start + 16 * CHUNK])

    rng = rng if rng is not None else np.random.default_rng([config.seed, 1])
    network.set_dropout(config.dropout, rng)
    distorter = Distorter.from_config(config, np.random.default_rng([config.seed, 2])) if config.distorts() else None
    sgd = SGD(
        network, config.batch_size, n_train, config.eta, config.lmbda, diagnostics=diagnostics,
        momentum=config.momentum, nesterov=config.nesterov, max_norm=config.max_norm, distorter=distorter,
    )
    halving = 1.0  # eta_schedule: halved whenever validation stalls
    stopper = EarlyStopping(config.patience, SCHEDULE_HALVINGS if config.eta_schedule else 0)
    history: list[EpochMetrics] = []
    best_params: list[np.ndarray] | None = None
    stop_reason, epoch = "max_epochs", 0
    started = time.perf_counter()

    def result(stopped: int, reason: str) -> TrainResult:
        if best_params is not None and (config.patience is not None or reason == "diverged"):
            network.set_params(best_params)
        return TrainResult(
            network=network,
            history=history,
            best_epoch=stopper.best_epoch,
            stopped_epoch=stopped,
            stop_reason=reason,
            best_val_accuracy=stopper.best if stopper.best_epoch else float("nan"),
            seconds=time.perf_counter() - started,
        )

    span = config.epochs  # the epochs the schedule runs over; a time budget may shorten it
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        sgd.eta = eta = config.eta * eta_factor(config.schedule, epoch, span) * halving
        sgd.momentum = config.momentum * momentum_factor(config.schedule, epoch, span)
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is detected below, by value
            train_loss, train_accuracy, diag = sgd.epoch(X_train, y_train, rng)
            val_loss, val_accuracy = network.evaluate(X_val, y_val, config.lmbda, n_train, check=False)
        metrics = EpochMetrics(
            epoch, train_loss, train_accuracy, val_loss, val_accuracy, time.perf_counter() - t0, eta, diag
        )
        history.append(metrics)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            bad = train_loss if not math.isfinite(train_loss) else val_loss
            raise Diverged(epoch, bad, result(epoch, "diverged"))
        decision = stopper.update(epoch, val_accuracy)
        if decision == IMPROVED:
            best_params = network.get_params()
        asked = on_epoch_end(metrics) if on_epoch_end is not None else None
        if asked:
            stop_reason = str(asked)
            break
        if decision == STOP:
            stop_reason = "patience"
            break
        if decision == HALVE:
            halving /= 2
        if epochs_that_fit is not None:
            span = min(span, epochs_that_fit(history))  # only shorter: η never climbs back up
            if span <= epoch < config.epochs:  # the fitted schedule is over (η near zero): what is left of the budget is not used
                stop_reason = "budget"
                break
    return result(epoch, stop_reason)
