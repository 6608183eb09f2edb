"""The training configuration: one typed, frozen object whose field names are the CLI's.

``--sizes``, ``--activation``, ``--cost``, ``--eta``, ``--lmbda``, ``--dropout``,
``--batch-size``, ``--epochs``, ``--patience``, ``--seed``, ``--output-encoding``,
``--momentum``, ``--nesterov``, ``--max-norm``, ``--schedule``, ``--shift``, ``--rotate``,
``--scale``, ``--shear``, ``--elastic-alpha``, ``--elastic-sigma``: one name means one thing
in the config, the command line, Optuna and MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError

ACTIVATION_NAMES = ("sigmoid", "relu", "tanh", "linear", "saturated-linear", "gaussian", "step", "softmax")
COST_NAMES = ("cross-entropy", "quadratic", "log-likelihood")
INIT_NAMES = ("scaled", "large")
DTYPE_NAMES = ("float32", "float64")
ENCODING_NAMES = ("onehot", "binary")  # one output per class | the class's code in bits, most significant first
SCHEDULE_NAMES = ("constant", "step", "cosine", "onecycle")  # core.schedules
DISTORTION_LIMITS = {  # field: (exclusive upper bound, unit)
    "shift": (float("inf"), "pixels"),
    "rotate": (180.0, "degrees"),
    "scale": (1.0, "a fraction, e.g. 0.1 for ±10 %"),
    "shear": (90.0, "degrees"),
    "elastic_alpha": (float("inf"), "pixels"),
}


def parse_activations(activation: str | tuple[str, ...] | list[str], n_hidden: int) -> tuple[str, ...]:
    """One activation name per hidden layer, from ``"relu"`` (all layers) or ``"relu,tanh"`` (per layer)."""
    if isinstance(activation, str):
        names = [part.strip() for part in activation.split(",")]
    else:
        names = [str(part).strip() for part in activation]
    for name in names:
        if name not in ACTIVATION_NAMES:
            raise ConfigError(
                f"activation={activation!r}: unknown activation {name!r}; choose from {', '.join(ACTIVATION_NAMES)}"
            )
    if len(names) == 1:
        return tuple(names) * n_hidden
    if len(names) != n_hidden:
        raise ConfigError(
            f"activation={activation!r} names {len(names)} activations but the network has {n_hidden} "
            "hidden layers; give one name for all of them or one per hidden layer, comma-separated"
        )
    return tuple(names)


def output_activation_for(cost: str) -> str:
    """The output layer the seed pairs with a cost: softmax for log-likelihood, sigmoid otherwise."""
    return "softmax" if cost == "log-likelihood" else "sigmoid"


def check_encoding(output_encoding: str, output_activation: str) -> str:
    """``output_encoding`` if known and possible with the output layer, else a :class:`ConfigError`.

    Binary outputs are read as bits (an output above 0.5 is a 1), so they need sigmoid
    outputs, each in (0, 1) on its own; a softmax's outputs share one unit of probability.
    """
    check_choice("output_encoding", output_encoding, ENCODING_NAMES)
    if output_encoding == "binary" and output_activation != "sigmoid":
        raise ConfigError(
            f"output_encoding='binary' reads each output as a bit and needs sigmoid outputs, but the output "
            f"layer is {output_activation}; use the cross-entropy or quadratic cost"
        )
    return output_encoding


def check_sizes(sizes) -> tuple[int, ...]:
    """``sizes`` as a tuple of positive ints (input first), or a :class:`ConfigError`."""
    try:
        values = tuple(sizes)
    except TypeError:
        raise ConfigError(f"sizes={sizes!r} is not a sequence; give layer sizes input first, e.g. 784,100,10") from None
    if len(values) < 2:
        raise ConfigError(f"sizes={sizes!r} needs at least an input and an output size, e.g. 784,100,10")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"sizes={sizes!r}: every layer size must be a whole number >= 1, got {value!r}")
    return tuple(int(v) for v in values)


def check_choice(field: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{field}={value!r} is unknown; choose from {', '.join(choices)}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs besides the data. Defaults are the seed's MNIST setting."""

    sizes: tuple[int, ...] = (784, 100, 10)
    activation: str = "sigmoid"  # hidden layers: one name, or per layer as "relu,tanh"
    cost: str = "cross-entropy"  # log-likelihood implies a softmax output layer; the others a sigmoid one
    eta: float = 0.5
    lmbda: float = 5.0
    dropout: float = 0.0  # inverted dropout probability on each hidden layer
    batch_size: int = 10
    epochs: int = 30
    patience: int | None = 10  # early stopping on validation accuracy; None = off
    seed: int = 0
    init: str = "scaled"  # "scaled" N(0, 1/n_in) | "large" N(0, 1)
    dtype: str = "float32"  # "float64" for gradient checks
    eta_schedule: bool = False  # halve eta when validation stalls (the book's exercise)
    output_encoding: str = "onehot"  # "binary": sizes[-1] sigmoid outputs hold the label's bits (4 for 10 digits)
    momentum: float = 0.0  # μ in v ← μ·v − η·∇C, w ← w + v; 0 is plain SGD
    nesterov: bool = False  # Nesterov's momentum: the gradient taken at the look-ahead point
    max_norm: float = 0.0  # after each step, each unit's incoming weights rescaled to norm <= max_norm; 0 = off
    schedule: str = "constant"  # eta over the epochs: constant | step | cosine | onecycle (core.schedules)
    # Expanded training data: every epoch sees freshly distorted copies (core.distort); 0 turns each off.
    shift: float = 0.0  # random shift, up to ± this many pixels in x and in y
    rotate: float = 0.0  # random rotation, up to ± this many degrees
    scale: float = 0.0  # random zoom by a factor in [1 − scale, 1 + scale]
    shear: float = 0.0  # random shear, up to ± this many degrees
    elastic_alpha: float = 0.0  # elastic distortion (Simard 2003): displacement strength in pixels
    elastic_sigma: float = 4.0  # width in pixels of the Gaussian that smooths the elastic displacement field

    def hidden_activations(self) -> tuple[str, ...]:
        """One activation name per hidden layer."""
        return parse_activations(self.activation, len(check_sizes(self.sizes)) - 2)

    def validate(self, n_train: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the first bad field, its value and the fix."""
        check_sizes(self.sizes)
        self.hidden_activations()
        check_choice("cost", self.cost, COST_NAMES)
        check_choice("init", self.init, INIT_NAMES)
        check_choice("dtype", self.dtype, DTYPE_NAMES)
        check_encoding(self.output_encoding, output_activation_for(self.cost))
        if not _is_number(self.eta) or not math.isfinite(self.eta) or self.eta <= 0:
            raise ConfigError(f"eta={self.eta!r}: the learning rate must be a finite number > 0, e.g. --eta 0.5")
        if not _is_number(self.lmbda) or not math.isfinite(self.lmbda) or self.lmbda < 0:
            raise ConfigError(f"lmbda={self.lmbda!r}: the L2 strength must be a finite number >= 0 (0 turns L2 off)")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"dropout={self.dropout!r}: the dropout probability must be in [0, 1) (0 turns dropout off)"
            )
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size!r}: the mini-batch size must be a whole number >= 1")
        if n_train is not None and self.batch_size > n_train:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than the {n_train} training examples; "
                f"use --batch-size {n_train} or less"
            )
        if not _is_int(self.epochs) or self.epochs < 1:
            raise ConfigError(f"epochs={self.epochs!r}: train for at least 1 epoch")
        if self.patience is not None and (not _is_int(self.patience) or self.patience < 1):
            raise ConfigError(
                f"patience={self.patience!r}: give a whole number of epochs >= 1, or None to turn early stopping off"
            )
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r}: the seed must be a whole number >= 0")
        if not isinstance(self.eta_schedule, bool):
            raise ConfigError(f"eta_schedule={self.eta_schedule!r}: must be True or False")
        self.validate_optimizer()
        self.validate_distortion()
        if self.eta_schedule and self.patience is None:
            raise ConfigError(
                "eta_schedule=True halves eta after `patience` epochs without improvement, "
                "but patience=None; set a patience (e.g. 10) or turn eta_schedule off"
            )

    def validate_optimizer(self) -> None:
        """Momentum, Nesterov, max-norm and the learning-rate schedule."""
        if not _is_number(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum={self.momentum!r}: μ must be in [0, 1), e.g. --momentum 0.9 (0 turns it off)")
        if not isinstance(self.nesterov, bool):
            raise ConfigError(f"nesterov={self.nesterov!r}: must be True or False")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs a momentum > 0, e.g. --momentum 0.9")
        if not _is_number(self.max_norm) or not math.isfinite(self.max_norm) or self.max_norm < 0:
            raise ConfigError(
                f"max_norm={self.max_norm!r}: the largest norm of a unit's incoming weights must be a finite "
                "number >= 0, e.g. --max-norm 3 (0 turns it off)"
            )
        check_choice("schedule", self.schedule, SCHEDULE_NAMES)

    def validate_distortion(self) -> None:
        """The expanded-data settings: each strength in its range, and images to distort."""
        for name, (high, unit) in DISTORTION_LIMITS.items():
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or not 0.0 <= value < high:
                bound = "" if high == float("inf") else f" and < {high:g}"
                raise ConfigError(f"{name}={value!r}: give a finite number >= 0{bound} ({unit}); 0 turns it off")
        if not _is_number(self.elastic_sigma) or not math.isfinite(self.elastic_sigma) or self.elastic_sigma <= 0:
            raise ConfigError(
                f"elastic_sigma={self.elastic_sigma!r}: the smoothing width must be a finite number of pixels > 0, "
                "e.g. --elastic-sigma 4"
            )
        if self.distorts():
            side = math.isqrt(check_sizes(self.sizes)[0])
            if side * side != self.sizes[0]:
                raise ConfigError(
                    f"shift/rotate/scale/shear/elastic_alpha distort square images, but sizes[0]={self.sizes[0]} "
                    "is not a square number of pixels (784 = 28×28); set them to 0"
                )

    def distorts(self) -> bool:
        """Whether training sees distorted copies of its images (any strength above 0)."""
        return any(getattr(self, name) for name in DISTORTION_LIMITS)
