"""Learning-rate schedules by name: the factor η is multiplied by in each epoch (epochs count from 1).

- ``constant``: 1 throughout (η as given; ``eta_schedule`` may still halve it on a plateau).
- ``step``: ×0.1 after half of the epochs and again after three quarters (the classic
  ImageNet-style drops, scaled to the run's length).
- ``cosine``: ½(1 + cos(π·(t − 1)/T)) for epoch t of T, from 1 down towards 0
  (Loshchilov & Hutter 2017, without restarts).
- ``onecycle``: a linear warm-up from 0.1 to 1 over the first 30 % of the epochs, then a
  cosine down to 0.001 (Smith 2018). With momentum, μ goes the other way: down to 0.85/0.95
  of its setting while η rises, then back (:func:`momentum_factor`).

A factor per epoch, not per mini-batch, so ``EpochMetrics.eta`` is the η each epoch used.
"""

from __future__ import annotations

import math

from core.config import SCHEDULE_NAMES
from core.errors import ConfigError

WARMUP = 0.3  # onecycle: the share of the epochs spent rising
START, END = 0.1, 0.001  # onecycle: the first and last factors
MOMENTUM_LOW = 0.85 / 0.95  # onecycle: μ falls to this share of its setting at the peak of η


def _onecycle_phase(epoch: int, epochs: int) -> tuple[bool, float]:
    """(rising?, progress 0..1 within the phase) of epoch ``epoch`` of ``epochs``."""
    rise = max(1, round(WARMUP * epochs))
    if epoch <= rise:
        return True, (epoch - 1) / max(rise - 1, 1) if rise > 1 else 1.0
    return False, (epoch - rise) / max(epochs - rise, 1)


def eta_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The factor η is multiplied by in epoch ``epoch`` (1-based) of ``epochs``."""
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return 0.1 ** ((epoch > epochs // 2) + (epoch > (3 * epochs) // 4))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    if schedule == "onecycle":
        rising, t = _onecycle_phase(epoch, epochs)
        if rising:
            return START + (1.0 - START) * t
        return END + (1.0 - END) * 0.5 * (1.0 + math.cos(math.pi * t))
    raise ConfigError(f"schedule={schedule!r} is unknown; choose from {', '.join(SCHEDULE_NAMES)}")


def momentum_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The factor μ is multiplied by: 1 except in ``onecycle``, where μ dips while η peaks (Smith 2018)."""
    if schedule != "onecycle":
        return 1.0
    rising, t = _onecycle_phase(epoch, epochs)
    low = MOMENTUM_LOW
    return 1.0 - (1.0 - low) * t if rising else low + (1.0 - low) * 0.5 * (1.0 - math.cos(math.pi * t))
