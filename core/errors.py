"""The errors core raises on purpose, so callers can tell a bad setting from a bug.

Every class derives from :class:`RedesCoreError` and from the built-in exception a
caller would naturally catch (``ValueError``, ``ArithmeticError``).
"""

from __future__ import annotations

from typing import Any


class RedesCoreError(Exception):
    """Base class of every error that core raises on purpose."""


class ConfigError(RedesCoreError, ValueError):
    """A setting is invalid; the message names the field, the bad value and the fix."""


class ModelFileError(RedesCoreError, ValueError):
    """A saved network (``.npz``) is damaged, of the wrong shape, or not a redes network."""


class Diverged(RedesCoreError, ArithmeticError):
    """The training loss became NaN or infinite.

    ``epoch`` is the (1-based) epoch where it happened, ``loss`` the value seen, and
    ``result`` (when training got that far) the :class:`core.training.TrainResult` with
    ``stop_reason == "diverged"``: the history up to that epoch and the network holding
    the best weights seen before it.
    """

    def __init__(self, epoch: int, loss: float = float("nan"), result: Any = None) -> None:
        self.epoch = epoch
        self.loss = loss
        self.result = result
        super().__init__(
            f"training diverged at epoch {epoch}: the loss is {loss}; lower eta "
            "(the learning rate) or lmbda, or use the scaled initialisation"
        )

    def __reduce__(self):
        # Keep epoch/loss/result when the error crosses a process boundary (pickle).
        return (type(self), (self.epoch, self.loss, self.result))


class DataError(RedesCoreError, ValueError):
    """Input arrays of the wrong shape, type or range (e.g. pixels outside [0, 1] or labels outside 0..k−1)."""
