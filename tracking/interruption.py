"""A process-wide stop request: set by a signal handler, seen by a trial at its next epoch end.

Signal handlers may do little, so they only call :func:`request_stop`; the trial raises
:class:`Interrupted` from its ``on_epoch_end`` callback, ends its MLflow run KILLED and is
recorded by Optuna as FAIL with the reason ``interrupted`` (its parameters queued again).
Standard library only: the handlers import it in every process.
"""

from __future__ import annotations

import threading

#: The fail_reason of a trial stopped by a signal, and the stop_reason tag of its MLflow run.
REASON = "interrupted"

_stop = threading.Event()
_why: list[str] = []


class Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM, the parent process or Prefect's server gone)."""


def request_stop(why: str) -> None:
    """Ask every trial of this process to stop at its next epoch end, and no new one to start."""
    if not _stop.is_set():
        _why.append(why)
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def why() -> str:
    """What asked for the stop first (e.g. ``SIGINT``), or an empty string."""
    return _why[0] if _why else ""


def check() -> None:
    """Raise :class:`Interrupted` when a stop was requested."""
    if _stop.is_set():
        raise Interrupted(f"{REASON} ({why()})")


def reset() -> None:
    """Forget a stop request (a new study in the same process, tests)."""
    _stop.clear()
    _why.clear()
