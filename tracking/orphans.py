"""Recovery of what a dead process left RUNNING: its Optuna trials and its MLflow runs.

A journal storage has no heartbeat, and a killed `redes study` leaves its parent run
open; a process on this host is known dead by its PID and the PID's start time. Both the
objective (which records who runs a trial) and the storages' stale-trial callback use
this module, so it imports neither of them.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import optuna

from runtime.servers import pid_alive, process_started, same_process

OWNER_ATTRS = ("worker_host", "worker_pid", "worker_started")


def process_identity() -> dict[str, Any]:
    """Who runs a trial: host, PID and the PID's start time (stored as the trial's user attributes)."""
    started = process_started(os.getpid())
    return {"worker_host": socket.gethostname(), "worker_pid": os.getpid(), "worker_started": "" if started is None else f"{started:.2f}"}


def _owner_is_dead(attrs: dict[str, Any]) -> bool:
    """True only when the trial's process ran on this host and is certainly gone."""
    if attrs.get("worker_host") != socket.gethostname() or "worker_pid" not in attrs:
        return False
    pid = int(attrs["worker_pid"])
    if not pid_alive(pid):
        return True
    try:
        started = float(attrs.get("worker_started") or "")
    except ValueError:
        return False  # no start time to compare: alive as far as we can tell
    return not same_process(pid, started)


#: Seconds after which a RUNNING trial that names no process is taken for one whose process died as it began:
#: a live worker names itself within milliseconds of creating (or taking from the queue) its trial.
UNCLAIMED_AFTER = 60.0


def _unclaimed(trial: optuna.trial.FrozenTrial, before: float) -> bool:
    """A trial no process has named itself the owner of, begun before the unix time BEFORE."""
    started = trial.datetime_start
    return "worker_pid" not in trial.user_attrs and started is not None and started.timestamp() < before


def fail_orphaned_trials(
    study: optuna.Study, client: Any, retry: bool = True, reason: str | None = None, unclaimed_before: float | None = None
) -> list[int]:
    """Fail the RUNNING trials whose process on this host is dead (a journal storage has no heartbeat).

    Each is marked FAIL with ``fail_reason``, its MLflow run ended KILLED (not left RUNNING or FINISHED),
    and, with ``retry``, the same parameters are enqueued so the next trial runs them again.
    REASON replaces the default "its worker process … died" (e.g. `interrupted`, when redes
    itself stopped the process). Returns the numbers of the trials failed.

    A trial whose process died between creating it and naming itself (a pool broken at that moment) names no
    owner: it is failed once older than :data:`UNCLAIMED_AFTER`, or when begun before UNCLAIMED_BEFORE (unix
    time), which a caller gives that knows its workers are all gone.
    """
    failed = []
    before = max(time.time() - UNCLAIMED_AFTER, unclaimed_before or 0.0)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        unclaimed = _unclaimed(trial, before)
        if not unclaimed and not _owner_is_dead(trial.user_attrs):
            continue
        storage = study._storage
        why = reason or (
            "its worker process died as it began" if unclaimed else f"its worker process {trial.user_attrs['worker_pid']} died while it ran"
        )
        try:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", why)
            if not storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
                continue  # someone else finished it first
        except (RuntimeError, ValueError):  # already finished by another process
            continue
        failed.append(trial.number)
        end_orphaned_run(client, trial, why)
        params = trial.params or trial.system_attrs.get("fixed_params")  # those it was given from the queue
        if retry and params:
            study.enqueue_trial(dict(params), user_attrs={"retry_of": trial.number})
    return failed


def end_orphaned_parent_runs(client: Any, experiment_id: str, study_name: str) -> list[str]:
    """End KILLED the RUNNING parent runs of STUDY_NAME whose `redes study` process on this host died."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.kind = 'study' and tags.`optuna.study` = '{study_name}' and attributes.status = 'RUNNING'",
    )
    ended = []
    for run in runs:
        if _owner_is_dead(run.data.tags):
            client.set_tag(run.info.run_id, "stop_reason", "its redes study process died")
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    return ended


def end_orphaned_run(client: Any, trial: optuna.trial.FrozenTrial, reason: str) -> None:
    """End the MLflow run of a trial whose process died: KILLED, tagged FAIL with the reason.

    A run already FINISHED is ended KILLED too: its process died after ending it and before
    Optuna heard the trial's value, so the trial is FAIL and its run must not show as a
    finished trial's (its curves and weights stay). A FAILED run keeps its status.
    """
    run_id = trial.user_attrs.get("mlflow_run_id")
    if not run_id:
        return
    client.set_tag(run_id, "optuna.trial_state", "FAIL")
    client.set_tag(run_id, "fail_reason", reason)
    if client.get_run(run_id).info.status in ("RUNNING", "FINISHED"):
        client.set_terminated(run_id, status="KILLED")
