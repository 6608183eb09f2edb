"""A spinner with the elapsed time, for work that reports no progress of its own (libsvm, a training loop)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def spinner(description: str, enabled: bool) -> Iterator[None]:
    """Show ``description``, a spinner and the time elapsed while the block runs; nothing when not ``enabled``."""
    with Progress(SpinnerColumn(), TextColumn(description), TimeElapsedColumn(), disable=not enabled) as progress:
        progress.add_task(description, total=None)
        yield
