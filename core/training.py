"""The one training loop: mini-batch SGD with L2, dropout, early stopping and a per-epoch callback.

Read top to bottom: :class:`EpochMetrics` and :class:`TrainResult` (what comes out),
:class:`SGD` (one mini-batch step and one epoch, every buffer allocated once), then
:func:`train` (epochs, validation, early stopping, the learning-rate schedule).

Logging, tracking and pruning attach through ``on_epoch_end``; whatever it raises
(e.g. ``optuna.TrialPruned``) passes through untouched.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.config import TrainConfig
from core.costs import l2_penalty
from core.early_stopping import HALVE, IMPROVED, STOP, EarlyStopping
from core.errors import ConfigError, DataError, Diverged
from core.layers import ActivationLayer
from core.network import CHUNK, MAX_PIXEL, Network

SCHEDULE_HALVINGS = 6  # the book: halve η until it reaches η/128, then stop


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


class Diagnostics:
    """Per-layer numbers that show how each layer learns, gathered during an epoch from values backprop already has.

    For layer l (1 = the first weight layer), with keys ``diag/layer{l}/...``:

    - ``grad_norm``: the Frobenius norm of ∂C/∂W_l (the mean-over-batch gradient of the
      data cost, without the L2 term), averaged over the epoch's mini-batches; early
      layers of deep sigmoid networks show smaller values (they learn more slowly).
    - ``weight_norm``: the Frobenius norm of W_l at the end of the epoch.
    - ``saturated`` (sigmoid and tanh layers): the fraction of the epoch's activations
      within 0.01 of the activation's bounds; (relu layers): the fraction of units that
      were zero for every example of the epoch.
    """

    SATURATION = 0.01

    def __init__(self, network: Network) -> None:
        self.network = network
        self.activation_layers = [layer for layer in network.layers if isinstance(layer, ActivationLayer)]
        self.reset()

    def reset(self) -> None:
        layers = len(self.network.dense)
        self.steps = 0
        self.grad_norm_sum = [0.0] * layers
        self.saturated = [0] * layers
        self.seen = [0] * layers
        self.active: list[np.ndarray | None] = [None] * layers

    def observe(self, scale: float) -> None:
        """After one step's backward pass, whose ``nabla_w`` hold ``scale`` times the batch's mean gradient."""
        self.steps += 1
        for i, (dense, layer) in enumerate(zip(self.network.dense, self.activation_layers)):
            self.grad_norm_sum[i] += math.sqrt(float(np.vdot(dense.nabla_w, dense.nabla_w))) / abs(scale)
            name, a = layer.activation.name, layer.A
            if name == "sigmoid":
                low, high = np.count_nonzero(a < self.SATURATION), np.count_nonzero(a > 1 - self.SATURATION)
                self.saturated[i] += int(low) + int(high)
                self.seen[i] += a.size
            elif name == "tanh":
                self.saturated[i] += int(np.count_nonzero(np.abs(a) > 1 - self.SATURATION))
                self.seen[i] += a.size
            elif name == "relu":
                fired = np.any(a > 0, axis=0)
                active = self.active[i]
                self.active[i] = fired if active is None else np.logical_or(active, fired, out=active)

    def result(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for i, (w, layer) in enumerate(zip(self.network.weights, self.activation_layers)):
            key = f"diag/layer{i + 1}"
            values[f"{key}/grad_norm"] = self.grad_norm_sum[i] / max(self.steps, 1)
            values[f"{key}/weight_norm"] = math.sqrt(float(np.vdot(w, w)))
            if self.seen[i]:
                values[f"{key}/saturated"] = self.saturated[i] / self.seen[i]
            elif self.active[i] is not None:
                values[f"{key}/saturated"] = 1.0 - float(np.count_nonzero(self.active[i])) / self.active[i].size
        return values


class SGD:
    """Mini-batch stochastic gradient descent on one network, with every buffer allocated once.

    One step, for a mini-batch of m examples out of n:
    w ← (1 − ηλ/n)·w − (η/m)·Σ_x ∂C_x/∂w and b ← b − (η/m)·Σ_x ∂C_x/∂b.
    The decay (1 − ηλ/n) is applied lazily through ``Dense.w_scale`` (a scalar per
    step instead of a pass over every weight) and folded back into the weights at the
    end of each epoch.
    """

    def __init__(
        self, network: Network, batch_size: int, n_train: int, eta: float, lmbda: float, diagnostics: bool = False
    ) -> None:
        self.network = network
        self.diagnostics = Diagnostics(network) if diagnostics else None
        self.batch_size = batch_size
        self.n_train = n_train
        self.eta = eta
        self.lmbda = lmbda
        dtype = network.dtype
        self._X = np.empty((batch_size, network.sizes[0]), dtype=dtype)
        self._Y = np.empty((batch_size, network.sizes[-1]), dtype=dtype)
        self._delta = np.empty((batch_size, network.sizes[-1]), dtype=dtype)
        self._targets = network.target_rows  # one row per class: one-hot, or the class's bits
        self._raw: np.ndarray | None = None  # gather buffer when the data's dtype is not the network's
        self._outputs: np.ndarray | None = None

    def step(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """One update from a mini-batch: X ``(m, sizes[0])``, target rows Y ``(m, sizes[-1])``, both in the network's dtype.

        Returns the output activations ``(m, sizes[-1])`` of the forward pass, computed
        before the update (a buffer, overwritten by the next step). The weight decay may
        still be pending in ``Dense.w_scale``; ``Network.weights`` folds it in.
        """
        net = self.network
        m = X.shape[0]
        decay = 1.0 - self.eta * self.lmbda / self.n_train
        lazy = 0.5 < decay < 1.0
        w_scale = net.dense[0].w_scale
        if w_scale != 1.0 and (not lazy or w_scale * decay < 0.5):
            for dense in net.dense:
                dense.fold_scale()
            w_scale = 1.0
        new_scale = w_scale * decay if lazy else 1.0

        A = net.forward(X, training=True)
        out = net.output_layer
        delta = net.cost.delta(out.Z, A, Y, out.activation, out=self._delta if m == self.batch_size else self._delta[:m])
        # Scaling the output delta scales every nabla (backprop is linear): each nabla_w
        # becomes the step −(η/m)·Σ_x ∂C_x/∂w, in units of the lazily decayed weights.
        scale = -self.eta / m / new_scale
        np.multiply(delta, scale, out=delta)
        net.backward(delta)
        if self.diagnostics is not None:
            self.diagnostics.observe(scale * m)  # nabla_w = scale·Σ_x ∂C_x/∂W = (scale·m)·(the mean gradient)

        for dense in net.dense:
            if lazy:
                dense.w_scale = new_scale
                np.multiply(dense.nabla_b, new_scale, out=dense.nabla_b)
            elif decay != 1.0:
                np.multiply(dense.W, decay, out=dense.W)
            np.add(dense.W, dense.nabla_w, out=dense.W)
            np.add(dense.b, dense.nabla_b, out=dense.b)
        return A

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

    def epoch(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[float, float, dict[str, float]]:
        """One pass over X ``(n, sizes[0])``, y ``(n,)`` int64 in a fresh random order.

        Returns (train loss, train accuracy, diagnostics), the first two scored from the
        mini-batch forward passes (see :class:`EpochMetrics`), the last empty unless
        diagnostics are on (see :class:`Diagnostics`).
        """
        net = self.network
        n, m = len(X), self.batch_size
        if self._outputs is None or len(self._outputs) != n:
            self._outputs = np.empty((n, net.sizes[-1]), dtype=net.dtype)
        outputs = self._outputs
        perm = rng.permutation(n)
        labels = y[perm]
        if self.diagnostics is not None:
            self.diagnostics.reset()
        try:
            for start in range(0, n, m):
                stop = start + m
                idx = perm[start:stop]
                Xb = self._gather(X, idx)
                Yb = self._targets.take(labels[start:stop], axis=0, out=self._Y[: len(idx)], mode="clip")
                outputs[start:stop] = self.step(Xb, Yb)
        finally:
            for dense in net.dense:
                dense.fold_scale()
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
    on_epoch_end: Callable[[EpochMetrics], None] | None = None,
    diagnostics: bool = False,
) -> TrainResult:
    """Train ``network`` in place with mini-batch SGD and return how it went.

    X arrays are ``(n, sizes[0])`` (or ``(n, 28, 28)``), float in [0, 1] or uint8 0..255,
    possibly read-only memory maps: only one mini-batch at a time is gathered. y arrays
    are integer labels ``(n,)``. ``rng`` shuffles and draws dropout masks (default: a
    generator seeded with ``(config.seed, 1)``, apart from the initialisation's stream).

    Each epoch: shuffle, one SGD step per mini-batch, validation, ``on_epoch_end``.
    Stops after ``config.patience`` epochs without a better validation accuracy
    (``"patience"``) or after ``config.epochs`` (``"max_epochs"``); with a patience the
    network ends with the weights of its best epoch. A NaN or inf loss raises
    :class:`Diverged` carrying the epoch and a ``TrainResult`` with ``"diverged"``
    (best weights restored when there were any).

    ``diagnostics=True`` fills ``EpochMetrics.diagnostics`` with per-layer gradient and
    weight norms and saturation (see :class:`Diagnostics`); off, it costs nothing.
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
    sgd = SGD(network, config.batch_size, n_train, config.eta, config.lmbda, diagnostics=diagnostics)
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

    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        eta = sgd.eta
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
        if on_epoch_end is not None:
            on_epoch_end(metrics)
        if decision == STOP:
            stop_reason = "patience"
            break
        if decision == HALVE:
            sgd.eta /= 2
    return result(epoch, stop_reason)
