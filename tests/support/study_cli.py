"""`redes study` as the fault and security tests run it: a small, safe search space, the command
line, reading the study's trials, and killing the command (or one of its workers) mid-trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from support.spaces import space_toml

#: Trials of a second or two each on a 2,000-image slice, none that diverges.
SPACE_TOML = space_toml(
    eta=(0.1, 0.5), lmbda=(0.1, 1.0), dropout=(0.0, 0.1), n_hidden=(1, 1), hidden_1=(300, 400),
    batch_size=[32], activation=["sigmoid"], cost=["cross-entropy"],
)


QUIET = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}


def study_command(
    name: str, trials: int, *, workers: int = 1, epochs: int = 6, train_size: int = 2000, patience: int = 10
) -> list[str]:
    """`redes study` over SPACE_TOML, random sampler, no pruner; the storage (and any password) is in the environment."""
    redes = Path(sys.executable).with_name("redes")
    return [
        str(redes), "study", "--name", name, "--trials", str(trials), "--workers", str(workers), "--sampler", "random",
        "--pruner", "none", "--epochs", str(epochs), "--patience", str(patience), "--train-size", str(train_size),
        "--val-size", "500", "--space", "space.toml",
    ]  # fmt: skip


def trials_of(name: str, storage: str | Path) -> list[optuna.trial.FrozenTrial]:
    """The trials of study NAME, none before the study (or its journal file) exists."""
    from tracking import studies

    if "://" not in str(storage) and not Path(storage).exists():
        return []
    try:
        return optuna.load_study(study_name=name, storage=studies.open_storage(str(storage))).get_trials()
    except KeyError:  # not created yet
        return []


def wait_for_trials(
    process: subprocess.Popen, name: str, storage: str | Path, ready: Callable[[list], Any], what: str, timeout: float = 300
) -> Any:
    """Poll the study until READY(trials) is truthy and return it; fail if PROCESS ends first or TIMEOUT passes."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the study ended before {what}"
        found = ready(trials_of(name, storage))
        if found:
            return found
        assert time.monotonic() < deadline, f"not seen in {timeout} s: {what}"
        time.sleep(0.05)


def state_of(name: str, storage: str | Path, number: int) -> TrialState:
    """Trial NUMBER's state, read without the lock redes takes to open a journal (a frozen process may hold it)."""
    if "://" in str(storage):
        return next(t for t in trials_of(name, storage) if t.number == number).state
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(storage)))
    return next(t for t in optuna.load_study(study_name=name, storage=journal).get_trials() if t.number == number).state


def kill_mid_trial(process: subprocess.Popen, name: str, storage: str | Path, *, pool_only: bool = False):
    """`kill -9` once a trial (with its MLflow run) runs after a complete one; return that trial.

    The whole command and its children (PROCESS started with ``start_new_session``), or with
    ``pool_only`` just the pool process that runs the trial.
    """

    def running_after_complete(trials):
        running = [
            t for t in trials
            if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
            and not (pool_only and t.user_attrs.get("worker_pid") == process.pid)
        ]  # fmt: skip
        return running[0] if running and any(t.state == TrialState.COMPLETE for t in trials) else None

    try:
        while True:
            victim = wait_for_trials(process, name, storage, running_after_complete, "a trial ran after a complete one")
            pid = victim.user_attrs["worker_pid"] if pool_only else process.pid

            def send(sig: int) -> None:
                os.kill(pid, sig) if pool_only else os.killpg(pid, sig)

            send(signal.SIGSTOP)  # frozen, the trial cannot end between this look at it and the kill
            if state_of(name, storage, victim.number) == TrialState.RUNNING:
                break
            send(signal.SIGCONT)  # it ended before the stop: choose again
        send(signal.SIGKILL)  # no chance to clean up
        if not pool_only:
            process.wait(timeout=30)
        return victim
    except BaseException:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        raise
