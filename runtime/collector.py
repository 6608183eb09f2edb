"""Python's garbage collector, tuned for a process that loads MLflow, Prefect and their libraries once.

Importing them allocates some 600,000 objects that live as long as the process. With Python's
thresholds (700, 10, 10) the collector made six full passes over them during a `redes train`'s
imports (0.4–0.5 s of CPU, 13 % of them), and a last one at exit over everything built since
(1.3–2.8 s of wall after a `redes train`'s last line on a loaded machine).
"""

from __future__ import annotations

import gc

#: Young objects counted before a collection: 10,000 instead of 700. Older generations keep Python's ratios.
THRESHOLDS = (10_000, 10, 10)


def tune() -> None:
    """Fewer collections while the libraries load; called first thing by the CLI and by each worker process."""
    gc.set_threshold(*THRESHOLDS)


def skip_last_collection() -> None:
    """Spare the interpreter's collection at exit: every live object is moved out of the collector's reach.

    Exit handlers (Prefect draining its logs and events, MLflow ending runs) still run, and the
    process's memory goes back to the system at once. Nothing of redes relies on a cycle being
    collected at exit: its files are closed by `with` blocks.
    """
    gc.freeze()
