"""Pictures people would rather look at than read: learning curves, confusion matrices, mistakes,
what the first hidden layer looks for, per-class accuracy and how fast each layer learns.

Plain matplotlib with the Agg backend (no screen needed); every function draws one
picture, writes one PNG and returns its path. Grids of digits are drawn as one mosaic
image (one ``imshow``), not one subplot per digit: a hundred subplots take seconds to lay out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter  # noqa: E402

IMAGE_SIDE = 28  # MNIST digits are 28×28
TILE_GAP = 2  # pixels of background between the tiles of a mosaic
RECEPTIVE_FIELD_LIMIT = 100  # tiles drawn at most: the first hidden units
TILES_KEY, GRID_KEY = "redes:tiles", "redes:grid"  # PNG text chunks of the receptive-field picture
CURVE_MARGINS = {"left": 0.09, "right": 0.98, "bottom": 0.12, "top": 0.9, "wspace": 0.3}  # of a 10 × 4 in figure
# Fixed margins, as tight_layout found them for these figures' fixed sizes and labels: tight_layout
# lays every text out once more per picture, a quarter of a `redes train`'s drawing time.
CONFUSION_MARGINS = {"left": 0.08, "right": 0.98, "bottom": 0.09, "top": 0.95}  # of a 6.5 × 5.5 in figure
PER_CLASS_MARGINS = {"left": 0.1, "right": 0.98, "bottom": 0.18, "top": 0.9}  # of a 7 × 4 in figure
SPEED_MARGINS = {"left": 0.08, "right": 0.98, "bottom": 0.14, "top": 0.83, "wspace": 0.22}  # of an 11 (or 7) × 4.2 in figure
MOSAIC_MARGINS = {"left": 0.02, "right": 0.98, "bottom": 0.02}  # and room for the title on top; the PNG is cropped to what was drawn


def learning_curve(history: Sequence, best_epoch: int | None, path: str | Path, title: str = "") -> Path:
    """Accuracy and loss per epoch for training and validation, the early-stopping point marked."""
    epochs = [m.epoch for m in history]
    fig = Figure(figsize=(10, 4), dpi=100)  # not pyplot's: drawn on a study worker's background thread
    acc_ax, loss_ax = fig.subplots(1, 2)
    acc_ax.plot(epochs, [m.train_accuracy for m in history], "o-", label="train", markersize=3)
    acc_ax.plot(epochs, [m.val_accuracy for m in history], "o-", label="validation", markersize=3)
    loss_ax.plot(epochs, [m.train_loss for m in history], "o-", label="train", markersize=3)
    loss_ax.plot(epochs, [m.val_loss for m in history], "o-", label="validation", markersize=3)
    for ax, name in ((acc_ax, "accuracy"), (loss_ax, "loss")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "learning curve")
    fig.subplots_adjust(**CURVE_MARGINS)  # fixed: tight_layout would draw the figure twice, for every trial
    return _save(fig, path)


def confusion_matrix_plot(matrix: np.ndarray, path: str | Path, title: str = "confusion matrix (test)") -> Path:
    """Counts of true digit (rows) against predicted digit (columns), each cell labelled."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color="white" if count > threshold else "black")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.subplots_adjust(**CONFUSION_MARGINS)
    return _save(fig, path)


def misclassified_grid(
    images: np.ndarray, true: np.ndarray, predicted: np.ndarray, path: str | Path, limit: int = 64
) -> Path:
    """A grid of misclassified digits, each labelled `true→predicted`."""
    count = min(limit, len(images))
    cols = 8
    rows = max(1, -(-count // cols))
    tiles = [np.asarray(images[k], dtype=np.float64).reshape(IMAGE_SIDE, IMAGE_SIDE) for k in range(count)]
    mosaic = tile_mosaic(tiles, rows, cols, gap=8)
    fig, ax = plt.subplots(figsize=(cols * 1.1, rows * 1.2 + 0.4), dpi=100)
    ax.imshow(mosaic, cmap=_with_background("gray_r", "white"), interpolation="nearest")
    step = IMAGE_SIDE + 8
    for k in range(count):
        row, col = divmod(k, cols)
        ax.text(col * step + IMAGE_SIDE / 2, row * step - 0.5, f"{true[k]}→{predicted[k]}", ha="center", va="bottom", fontsize=8)
    ax.axis("off")
    ax.set_title(f"misclassified test digits (first {count}, true→predicted)", pad=14)
    _leave_title_room(fig, inches=0.3)
    return _save(fig, path, tight=True)


def expanded_batch(originals: np.ndarray, distorted: np.ndarray, path: str | Path, settings: str = "") -> Path:
    """Training digits as stored (left) and as the network saw them, distorted (right), tile for tile.

    Both arrays are ``(n, 784)`` in [0, 1]; ``settings`` names the distortions (e.g. ``shift ±2 px``).
    """
    count = min(len(originals), len(distorted))
    rows, cols = grid_shape(count)
    fig, axes = plt.subplots(1, 2, figsize=(2 * cols * 0.75 + 0.6, rows * 0.75 + 1.0), dpi=100)
    for ax, images, name in ((axes[0], originals, "as stored"), (axes[1], distorted, "as the network saw them")):
        tiles = [np.asarray(images[k], dtype=np.float64).reshape(IMAGE_SIDE, IMAGE_SIDE) for k in range(count)]
        ax.imshow(tile_mosaic(tiles, rows, cols), cmap=_with_background("gray_r", "white"), vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(f"expanded training data: {settings}, fresh each epoch" if settings else "training images")
    _leave_title_room(fig, inches=0.5, wspace=0.15)
    return _save(fig, path, tight=True)


# --- what the network learned -----------------------------------------------------------


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, cols) of the squarest grid with room for ``count`` tiles, never taller than wide: 30 → (5, 6)."""
    cols = max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / cols)), cols


def tile_mosaic(tiles: Sequence[np.ndarray], rows: int, cols: int, gap: int = TILE_GAP) -> np.ndarray:
    """Equal-sized 2-D tiles laid out row by row in one array; gaps and empty cells are NaN (drawn as background)."""
    h, w = tiles[0].shape if tiles else (IMAGE_SIDE, IMAGE_SIDE)
    mosaic = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for k, tile in enumerate(tiles):
        row, col = divmod(k, cols)
        mosaic[row * (h + gap) : row * (h + gap) + h, col * (w + gap) : col * (w + gap) + w] = tile
    return mosaic


def receptive_field_tiles(weights: np.ndarray, limit: int = RECEPTIVE_FIELD_LIMIT) -> list[np.ndarray]:
    """The incoming weights of the first ``limit`` units, each ``(28, 28)`` and scaled by its largest |w| into [−1, 1].

    ``weights`` is a first layer's matrix ``(784, n_units)`` (core's layout: inputs × units).
    """
    weights = np.asarray(weights, dtype=np.float64)
    side = math.isqrt(weights.shape[0])
    if weights.ndim != 2 or side * side != weights.shape[0]:
        raise ValueError(f"weights of shape {weights.shape} are not (side², units): cannot draw them as square images")
    tiles = []
    for unit in range(min(limit, weights.shape[1])):
        w = weights[:, unit]
        scale = np.max(np.abs(w))
        tiles.append((w / scale if scale > 0 else w).reshape(side, side))
    return tiles


def receptive_fields(
    weights: np.ndarray, path: str | Path, limit: int = RECEPTIVE_FIELD_LIMIT, title: str = ""
) -> Path:
    """The first hidden layer's incoming weights, one 28×28 tile per unit (the first ``limit``): what each unit looks for.

    Red pixels push the unit on, blue ones push it off; each tile has its own scale. The
    PNG's text chunks ``redes:tiles`` and ``redes:grid`` (e.g. ``30`` and ``5x6``) say what was drawn.
    """
    tiles = receptive_field_tiles(weights, limit)
    rows, cols = grid_shape(len(tiles))
    mosaic = tile_mosaic(tiles, rows, cols)
    size = max(4.0, cols * 0.75)
    fig, ax = plt.subplots(figsize=(size, size * rows / cols + 0.8), dpi=100)
    ax.imshow(mosaic, cmap=_with_background("RdBu_r", "#dddddd"), vmin=-1, vmax=1, interpolation="nearest")
    ax.axis("off")
    units = np.asarray(weights).shape[1]
    shown = f"{len(tiles)} of {units} units" if len(tiles) < units else f"{units} units"
    ax.set_title(
        title or f"first layer: incoming weights of {shown}\nred excites, blue inhibits (each tile scaled to its largest |w|)",
        fontsize=9,
    )
    _leave_title_room(fig, inches=0.35)
    return _save(fig, path, {TILES_KEY: str(len(tiles)), GRID_KEY: f"{rows}x{cols}"}, tight=True)


def per_class_accuracy(
    labels: np.ndarray, predictions: np.ndarray, path: str | Path, classes: int = 10, title: str = ""
) -> Path:
    """Test accuracy per true class as bars, each labelled, with the overall accuracy as a line."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    counts = np.bincount(labels, minlength=classes)[:classes]
    right = np.bincount(labels[predictions == labels], minlength=classes)[:classes]
    accuracy = np.divide(right, counts, out=np.zeros(classes), where=counts > 0)
    overall = float(np.mean(predictions == labels)) if len(labels) else float("nan")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    bars = ax.bar(range(classes), accuracy, color=["#c44e52" if a < overall else "#4c72b0" for a in accuracy])
    for bar, value in zip(bars, accuracy):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(overall, color="grey", linestyle="--")
    ax.set_xticks(range(classes), [f"{c}\n(n={n})" for c, n in enumerate(counts)], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("true digit")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"test accuracy per digit: overall {overall:.4f} (dashed), red bars below it")
    fig.subplots_adjust(**PER_CLASS_MARGINS)
    return _save(fig, path)


def diagnostics_by_epoch(history: Sequence) -> list[tuple[int, Mapping[str, float]]]:
    """(epoch, diagnostics) pairs from core's ``EpochMetrics``; epochs without diagnostics are left out."""
    return [(m.epoch, m.diagnostics) for m in history if getattr(m, "diagnostics", None)]


def learning_speed(per_epoch: Sequence[tuple[int, Mapping[str, float]]], path: str | Path, title: str = "") -> Path:
    """How fast each layer learns: the epoch's mean gradient norm per layer, and the fraction of saturated units.

    ``per_epoch`` holds (epoch, {``diag/layer1/grad_norm``: …, ``diag/layer1/saturated``: …}) as
    core's diagnostics name them (see ``core.training.Diagnostics``); ``title`` names the
    network (e.g. ``784-30-10 sigmoid, quadratic cost``). The gradient axis is logarithmic
    over whole decades, so two runs' pictures compare at a glance; a layer whose gradient is
    exactly 0 (a step activation) is drawn on a linear stretch at the bottom and labelled.
    """
    if not per_epoch:
        raise ValueError("no diagnostics to draw: train with diagnostics on (redes train --diagnostics)")
    layers = sorted({int(key.split("/")[1].removeprefix("layer")) for _, d in per_epoch for key in d if key.startswith("diag/layer")})
    has_saturation = any(f"diag/layer{i}/saturated" in d for _, d in per_epoch for i in layers)
    fig, axes = plt.subplots(1, 2 if has_saturation else 1, figsize=(11 if has_saturation else 7, 4.2), dpi=100, squeeze=False)
    grad_ax = axes[0, 0]
    values = []
    for i in layers:
        name = f"layer {i}" + (" (output)" if i == layers[-1] else "")
        points = [(epoch, d[f"diag/layer{i}/grad_norm"]) for epoch, d in per_epoch if f"diag/layer{i}/grad_norm" in d]
        if points:
            zero = all(v == 0 for _, v in points)
            grad_ax.plot(*zip(*points), "o-", markersize=3, label=name + (": exactly 0, it cannot learn" if zero else ""))
            values += [v for _, v in points]
        if has_saturation:
            sat = [(epoch, d[f"diag/layer{i}/saturated"]) for epoch, d in per_epoch if f"diag/layer{i}/saturated" in d]
            if sat:
                axes[0, 1].plot(*zip(*sat), "o-", markersize=3, label=name)
    positive = [v for v in values if v > 0]
    if positive:
        low, high = 10.0 ** math.floor(math.log10(min(positive))), 10.0 ** math.ceil(math.log10(max(positive)))
        high = high * 10 if high <= low else high
        if min(values) > 0:
            grad_ax.set_yscale("log")
            grad_ax.set_ylim(low, high)
        else:
            grad_ax.set_yscale("symlog", linthresh=low)
            grad_ax.set_ylim(0, high)
        grad_ax.yaxis.set_minor_formatter(NullFormatter())
    grad_ax.set_title("gradient norm ‖∂C/∂W‖ per layer (small = slow learning)", fontsize=11)
    grad_ax.set_ylabel("norm (mean over the epoch's mini-batches)")
    panels = [grad_ax]
    if has_saturation:
        sat_ax = axes[0, 1]
        sat_ax.set_ylim(-0.02, 1.02)
        sat_ax.set_title("saturated units per layer")
        sat_ax.set_ylabel("fraction (sigmoid/tanh within 0.01 of a bound,\nrelu zero all epoch)", fontsize=9)
        panels.append(sat_ax)
    for ax in panels:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"learning speed of {title}" if title else "learning speed")
    fig.subplots_adjust(**(SPEED_MARGINS if has_saturation else {**SPEED_MARGINS, "left": 0.12}))
    return _save(fig, path)


def _leave_title_room(fig, inches: float, wspace: float = 0.2) -> None:
    """Mosaic axes fill the figure but for INCHES on top for the title (cropped later, see `_save`'s ``tight``)."""
    fig.subplots_adjust(**MOSAIC_MARGINS, top=1 - inches / fig.get_size_inches()[1], wspace=wspace)


def _with_background(name: str, color: str):
    """A copy of colormap ``name`` that draws NaN (gaps, empty cells) in ``color``."""
    return matplotlib.colormaps[name].with_extremes(bad=color)


def _save(
    fig, path: str | Path, metadata: Mapping[str, str] | None = None, tight: bool = False, compress_level: int = 1
) -> Path:
    """Write ``fig`` as a PNG (``tight``: cropped to what was drawn, for mosaics of fixed aspect) and close it.

    ``compress_level`` 1 instead of zlib's 6 encodes in a fifth of the time, for a file about 12 % larger.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(
        path, metadata=dict(metadata or {}), bbox_inches="tight" if tight else None, pad_inches=0.1,
        pil_kwargs={"compress_level": compress_level},
    )
    if fig.canvas.manager is not None:  # a pyplot figure
        plt.close(fig)
    return path
