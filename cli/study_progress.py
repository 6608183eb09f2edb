"""A live terminal view of a running study, read from the study's storage (not from the workers).

Trials done of the total, the best validation accuracy so far, and the epoch of each
running trial (its last reported step), refreshed every second or two.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class StudyProgress:
    """Poll the study in a background thread while the flow runs in the foreground."""

    def __init__(self, name: str, storage: str, total: int, interval: float = 1.5, enabled: bool = True) -> None:
        self.name = name
        self.storage = storage
        self.total = total
        self.interval = interval
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_count: int | None = None

    def __enter__(self) -> "StudyProgress":
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="study-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _snapshot(self, study) -> tuple[int, str]:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        if self._start_count is None:
            self._start_count = sum(t.state != TrialState.RUNNING and t.state != TrialState.WAITING for t in trials)
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
        complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        running = [t for t in trials if t.state == TrialState.RUNNING]
        best = f"best val {max(complete):.4f}" if complete else "best val –"
        current = ", ".join(
            f"trial {t.number} epoch {max(t.intermediate_values) if t.intermediate_values else 0}" for t in running
        )
        return len(finished) - self._start_count, f"{best}  {current}"

    def _run(self) -> None:
        from tracking import studies

        study = None
        with Progress(
            TextColumn(f"study [bold]{escape(self.name)}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            transient=False,
        ) as progress:
            task = progress.add_task("trials", total=self.total, status="starting…")
            while not self._stop.wait(self.interval):
                try:
                    if study is None:
                        study = studies.load(self.name, studies.open_storage(self.storage))
                    done, status = self._snapshot(study)
                    progress.update(task, completed=min(done, self.total), status=status)
                except Exception:  # the study may not exist yet while data is prepared
                    study = None
            if study is not None:
                done, status = self._snapshot(study)
                progress.update(task, completed=min(done, self.total), status=status)
