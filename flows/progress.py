"""Progress in the terminal: a spinner for work that reports nothing, and the epochs of a training run."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

#: Who watches the epochs of the training run in this process (the `redes train` display).
_epoch_listeners: list[Callable[[Any], None]] = []


@contextmanager
def spinner(description: str, enabled: bool) -> Iterator[None]:
    """Show ``description``, a spinner and the time elapsed while the block runs; nothing when not ``enabled``."""
    with Progress(SpinnerColumn(), TextColumn(description), TimeElapsedColumn(), disable=not enabled) as progress:
        progress.add_task(description, total=None)
        yield


def report_epoch(metrics: Any) -> None:
    """An epoch of core's training loop ended (``EpochMetrics``): tell whoever watches; nothing when nobody does.

    The training task calls it from inside the flow, which `redes train` runs in its own process.
    """
    for listener in list(_epoch_listeners):
        listener(metrics)


def epoch_line(metrics: Any, total: int, elapsed: float) -> str:
    """epoch k/N, training loss, validation accuracy, training time so far."""
    return (
        f"epoch {metrics.epoch}/{total}  train loss {metrics.train_loss:.4f}  "
        f"val accuracy {metrics.val_accuracy:.4f}  {elapsed:.1f} s"
    )


@contextmanager
def epoch_progress(total: int, console: Console, live: bool) -> Iterator[None]:
    """While the block runs, show each epoch on CONSOLE: a live bar when LIVE (a terminal), else one line per epoch."""
    elapsed = 0.0
    progress = Progress(
        TextColumn("epoch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        console=console, disable=not live,
    )  # fmt: skip
    task = progress.add_task("train", total=total, status="")

    def show(metrics: Any) -> None:
        nonlocal elapsed
        elapsed += metrics.seconds
        if live:
            status = f"train loss {metrics.train_loss:.4f}  val accuracy {metrics.val_accuracy:.4f}"
            progress.update(task, completed=metrics.epoch, status=status)
        else:
            console.print(epoch_line(metrics, total, elapsed), highlight=False, soft_wrap=True)

    _epoch_listeners.append(show)
    try:
        with progress:
            yield
    finally:
        _epoch_listeners.remove(show)
