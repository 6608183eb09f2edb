"""Pictures people would rather look at than read: learning curves, confusion matrices, mistakes.

Plain matplotlib with the Agg backend (no screen needed); every function writes one PNG
and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def learning_curve(history: Sequence, best_epoch: int | None, path: str | Path, title: str = "") -> Path:
    """Accuracy and loss per epoch for training and validation, the early-stopping point marked."""
    epochs = [m.epoch for m in history]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    acc_ax.plot(epochs, [m.train_accuracy for m in history], "o-", label="train", markersize=3)
    acc_ax.plot(epochs, [m.val_accuracy for m in history], "o-", label="validation", markersize=3)
    loss_ax.plot(epochs, [m.train_loss for m in history], "o-", label="train", markersize=3)
    loss_ax.plot(epochs, [m.val_loss for m in history], "o-", label="validation", markersize=3)
    for ax, name in ((acc_ax, "accuracy"), (loss_ax, "loss")):
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "learning curve")
    fig.tight_layout()
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
    fig.tight_layout()
    return _save(fig, path)


def misclassified_grid(
    images: np.ndarray, true: np.ndarray, predicted: np.ndarray, path: str | Path, limit: int = 64
) -> Path:
    """A grid of misclassified digits, each titled `true→predicted`."""
    count = min(limit, len(images))
    cols = 8
    rows = max(1, -(-count // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.35), dpi=100, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < count:
            ax.imshow(np.asarray(images[k]).reshape(28, 28), cmap="gray_r")
            ax.set_title(f"{true[k]}→{predicted[k]}", fontsize=8)
    fig.suptitle(f"misclassified test digits (first {count}, true→predicted)")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
