"""Per-layer numbers that show how each layer learns, gathered from what backprop already has.

:class:`core.training.SGD` calls :meth:`Diagnostics.observe` after each step's backward
pass when ``train(..., diagnostics=True)``; off, nothing here runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.layers import ActivationLayer

if TYPE_CHECKING:
    from core.network import Network


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
