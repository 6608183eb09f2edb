"""A run's name from its hyperparameters, so two runs side by side in MLflow can be told apart.

``784-30-10 sigmoid η0.5 λ0``: the layer sizes, the hidden activation, η and λ always;
then only what differs from the defaults of `core.config.TrainConfig` (cost, dropout,
mini-batch size, initialisation, η schedule, output encoding, momentum, max-norm and the
distortions of expanded data: ``μ0.9 nesterov max-norm3 cosine shift2 rotate15
elastic34/σ4``), so a name stays short
and says what was changed. Numbers keep three significant digits: a name is for
reading, the exact values are the run's parameters.
"""

from __future__ import annotations

from core.config import TrainConfig

#: The MLflow tag the UI shows as a run's description (its "Description" column).
DESCRIPTION_TAG = "mlflow.note.content"


def _number(value: float) -> str:
    return f"{float(value):.3g}"


def describe(config: TrainConfig) -> str:
    """The short readable description of a training configuration, e.g. ``784-30-10 sigmoid η0.5 λ0``."""
    default = TrainConfig()
    sizes = tuple(config.sizes)
    words = ["-".join(str(size) for size in sizes)]
    if len(sizes) > 2:  # no hidden layer, no hidden activation
        words.append(str(config.activation))
    if config.cost != default.cost:
        words.append(str(config.cost))
    words += [f"η{_number(config.eta)}", f"λ{_number(config.lmbda)}"]
    if config.dropout > 0:
        words.append(f"dropout{_number(config.dropout)}")
    if config.batch_size != default.batch_size:
        words.append(f"batch{config.batch_size}")
    if config.init != default.init:
        words.append(f"init-{config.init}")
    if config.eta_schedule:
        words.append("η-halving")
    if config.output_encoding != default.output_encoding:
        words.append(f"{config.output_encoding}-outputs")
    if config.momentum > 0:
        words.append(f"μ{_number(config.momentum)}")
    if config.nesterov:
        words.append("nesterov")
    if config.max_norm > 0:
        words.append(f"max-norm{_number(config.max_norm)}")
    if config.schedule != default.schedule:
        words.append(str(config.schedule))
    for name in ("shift", "rotate", "scale", "shear"):
        if getattr(config, name) > 0:
            words.append(f"{name}{_number(getattr(config, name))}")
    if config.elastic_alpha > 0:
        words.append(f"elastic{_number(config.elastic_alpha)}/σ{_number(config.elastic_sigma)}")
    return " ".join(words)
