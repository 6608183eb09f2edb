"""Early stopping on validation accuracy, with the book's optional learning-rate schedule.

A small pure object: it sees one score per epoch and says what to do next. It holds no
weights; the training loop snapshots them when :meth:`EarlyStopping.update` says
``"improved"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

IMPROVED, WAIT, HALVE, STOP = "improved", "wait", "halve", "stop"


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs in a row without a strictly better score.

    With ``halvings > 0`` (the book's schedule) the first ``halvings`` stalls answer
    ``"halve"`` instead, and the stall count starts again; the next stall stops. The book
    halves η until it is 1/128 of its start: ``halvings=6`` halvings, stop at the 7th
    stall. ``patience=None`` never stops or halves, but still tracks the best epoch.
    """

    patience: int | None
    halvings: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    stalled: int = 0
    halved: int = 0

    def update(self, epoch: int, score: float) -> str:
        """Record ``score`` for ``epoch``; return ``"improved"``, ``"wait"``, ``"halve"`` or ``"stop"``."""
        if score > self.best:
            self.best, self.best_epoch, self.stalled = score, epoch, 0
            return IMPROVED
        if self.patience is None:
            return WAIT
        self.stalled += 1
        if self.stalled < self.patience:
            return WAIT
        if self.halved < self.halvings:
            self.halved += 1
            self.stalled = 0
            return HALVE
        return STOP
