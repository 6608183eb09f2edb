"""W worker processes on one study that outlive the death of one of them.

A process killed inside Prefect's process pool (the OOM killer, `kill -9`) breaks the whole
pool: Python stops the other workers with it. Their RUNNING trials are failed, their MLflow
runs ended KILLED and their parameters queued again, and the trials still owed run in a fresh
pool, so a dead process costs the trials it was running, never the study.

A stop asked by a signal (flows.signals), a full disk (tracking.stores) or the loss of the
Prefect server redes started ends the loop instead: the workers get :data:`GRACE` seconds to end their trials at the
next epoch end, then whatever still runs is killed and its trials recorded `interrupted`.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

import optuna
from prefect import get_run_logger
from prefect.futures import wait

from flows.worker_errors import WorkersKeepDying

#: Fresh pools started after deaths before the study gives up (each needs a killed process).
MAX_RESTARTS = 3
#: Seconds the workers get, once a stop is asked, to end their trials before they are killed.
GRACE = 6.0


#: What a worker loads before its first trial (Prefect, MLflow and its SQL store, Optuna, matplotlib for the curves),
#: in the fork server's order; the last one freezes them (flows.worker_preload).
WORKER_MODULES = (
    "flows.study", "tracking.objective", "tracking.plots", "mlflow.store.tracking.sqlalchemy_store", "flows.worker_preload",
)  # fmt: skip


def start_fork_server() -> None:
    """Start the process that loads the workers' modules once, in the background, and forks every worker from itself.

    Prefect's pool spawns its workers, and each imported Prefect, MLflow, its SQL store and Optuna
    again: about 4 s of CPU per worker before its first trial, the workers on the same two cores.
    Forked from this server they start with the modules loaded, and the server loads them on the
    other core while this process prepares the data and opens the study. The server is started
    once per process and keeps the environment of its start, as its workers do, but Prefect
    applies this process's environment and settings to every task it runs in a worker; the working
    folder is the one of each pool's start (multiprocessing sends it with every worker).
    """
    from multiprocessing import forkserver

    multiprocessing.set_forkserver_preload(list(WORKER_MODULES))
    server = forkserver._forkserver
    _adopt_inherited_fork_server(server)
    server.ensure_running()


def _adopt_inherited_fork_server(server) -> None:
    """Use the fork server of the process this one was forked from (`redes up`'s launcher), already loaded.

    Python checks that its fork server lives with ``waitpid``, which only its parent may call: in a
    command forked from the launcher it raises. A living inherited server is checked with a signal 0
    instead; a dead one is forgotten, and a fresh one starts as without the launcher.
    """
    pid = server._forkserver_pid
    if pid is None:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
        return  # this process started it: Python's own check works
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        os.close(server._forkserver_alive_fd)
        server._forkserver_address = server._forkserver_alive_fd = server._forkserver_pid = None
        return
    from multiprocessing import resource_tracker

    server.ensure_running = resource_tracker.ensure_running  # what Python's check does besides waitpid


def pool_runner(workers: int):
    """Prefect's process pool of W workers forked from the fork server, each stopping on SIGINT and on the death of this process."""
    from flows.signals import worker_initializer

    return _fork_server_pool()(max_workers=workers, initializer=worker_initializer, initargs=(os.getpid(),))


def _fork_server_pool():
    """Prefect's ProcessPoolTaskRunner whose executor forks its workers from the fork server instead of spawning them.

    Prefect 3.9 builds a spawning executor in ``__enter__`` (its processes start at the first
    submit); it is replaced at once by the same executor (initializer, arguments, size) on the
    ``forkserver`` context. Should a later Prefect build it otherwise, its own spawning executor is kept.
    """
    from concurrent.futures import ProcessPoolExecutor

    from prefect.task_runners import ProcessPoolTaskRunner

    class ForkServerPoolTaskRunner(ProcessPoolTaskRunner):
        def __enter__(self):
            runner = super().__enter__()
            spawning = getattr(self, "_executor", None)
            if isinstance(spawning, ProcessPoolExecutor) and hasattr(spawning, "_initializer"):
                self._executor = ProcessPoolExecutor(
                    max_workers=spawning._max_workers, mp_context=multiprocessing.get_context("forkserver"),
                    initializer=spawning._initializer, initargs=spawning._initargs,
                )  # fmt: skip
                spawning.shutdown(wait=False)  # it started no process yet
            return runner

    return ForkServerPoolTaskRunner


def shares(trials: int, workers: int) -> list[int]:
    """TRIALS split as evenly as possible over WORKERS."""
    return [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]


def run_workers(
    run_trials: Any,
    context: Any,
    trials: int,
    timeout_seconds: float | None,
    workers: int,
    blas_threads: int,
    on_progress: Callable[[int], None],
) -> None:
    """Run TRIALS trials of the study in W workers of the flow's task runner; start a fresh pool if one breaks.

    ``on_progress`` is called every few seconds with the trials finished so far. Raises
    :class:`~tracking.interruption.Interrupted` once a stop was asked and the trials are recorded.
    """
    from flows.prefect_api import lost_server
    from flows.signals import stop_workers
    from tracking import interruption, mlflow_store, studies
    from tracking.orphans import fail_orphaned_trials

    logger = get_run_logger()
    study = studies.load(context.study_name, studies.open_storage(context.storage))
    start = studies.finished_count(study)
    requeued = 0  # failed by a death and queued again: not part of the count asked for
    started = time.monotonic()
    runner = None  # the flow's own task runner first
    try:
        for restart in range(MAX_RESTARTS + 1):
            owed = trials - (studies.finished_count(study) - start - requeued)
            timeout = None if timeout_seconds is None else timeout_seconds - (time.monotonic() - started)
            if interruption.stop_requested():
                raise interruption.Interrupted(f"{interruption.REASON} ({interruption.why()}) before any trial")
            if owed <= 0 or (timeout is not None and timeout <= 0):
                return
            submit = _submitter(run_trials, runner)
            futures = [
                submit(context, share, timeout, index, blas_threads)
                for index, share in enumerate(shares(owed, workers))
                if share > 0
            ]
            shown = time.monotonic()
            while True:
                _, pending = wait(futures, timeout=0.5)
                if not pending:
                    break
                lost = lost_server()
                if lost:
                    stop_workers(lost)
                if _stop_asked():
                    _stop(futures, study, context, lost)
                if time.monotonic() - shown >= 5:
                    on_progress(studies.finished_count(study) - start - requeued)
                    shown = time.monotonic()
            on_progress(studies.finished_count(study) - start - requeued)
            if not _pool_broke(futures):
                if _stop_asked():  # every worker ended its trial at the stop
                    _stop(futures, study, context, lost_server())
                return
            _wait_for_pool_exit(study)
            pids = _running_pids(study)
            failed = fail_orphaned_trials(study, mlflow_store.configure(context.settings), unclaimed_before=time.time())
            requeued += len(failed)
            logger.warning(
                "a worker process died: trials %s were RUNNING in worker processes %s and are marked FAIL, their "
                "MLflow runs ended KILLED and their parameters queued again; %s",
                failed, sorted({pids[n] for n in failed if pids.get(n) is not None}),
                "continuing in a fresh pool" if restart < MAX_RESTARTS else "giving up",
            )  # fmt: skip
            if restart == MAX_RESTARTS:
                break
            if runner is not None:
                runner.__exit__(None, None, None)
            runner = pool_runner(workers).__enter__()
        raise WorkersKeepDying(
            f"worker processes died {MAX_RESTARTS + 1} times; the trials they finished are kept. Look for the OOM "
            "killer (`dmesg`), then run the same command again, perhaps with fewer --workers, to continue the study"
        )
    finally:
        if runner is not None:
            runner.__exit__(None, None, None)


def _stop_asked() -> bool:
    """A stop asked of this process, or a full disk met by a worker (its reserve gone: tracking.stores).

    Also asked once every worker has returned: the workers may all end at a full disk before
    this process looks, and the study must not then go on to evaluate a champion and exit 0.
    """
    from tracking import interruption, stores

    stores.check_reserve()
    return interruption.stop_requested()


def _stop(futures: list[Any], study: optuna.Study, context: Any, lost: str | None) -> None:
    """Give the workers GRACE seconds to end their trials, kill what still runs, record its trials; raise Interrupted.

    With the Prefect server gone, no Prefect call can succeed (each would be retried for
    minutes): the parent run is ended here and the process exits with one line instead.
    """
    from flows.signals import force_exit, kill_workers
    from tracking import interruption, mlflow_store
    from tracking.orphans import fail_orphaned_trials

    wait(futures, timeout=GRACE)
    killed = kill_workers()
    client = mlflow_store.configure(context.settings)
    failed = fail_orphaned_trials(study, client, reason=interruption.REASON, unclaimed_before=time.time()) if killed else []
    why = interruption.why()
    if lost:
        client.set_tag(context.parent_run_id, "stop_reason", lost)
        client.set_terminated(context.parent_run_id, status="KILLED")
        force_exit(
            1,
            f"error: {lost} mid-study; the trials are recorded (the running ones FAIL `interrupted`, queued again). "
            "Run the same command again to continue the study",
        )
    raise interruption.Interrupted(
        f"{interruption.REASON} ({why}): the running trials ended FAIL `interrupted` and are queued again"
        + (f"; trials {failed} were stopped with their worker processes" if failed else "")
    )


def _submitter(run_trials: Any, runner: Any) -> Callable[..., Any]:
    """Submit to the flow's task runner, or to a fresh pool started after a death."""
    if runner is None:
        return run_trials.submit

    def submit(context, share, timeout, index, blas_threads):
        parameters = dict(context=context, n_trials=share, timeout=timeout, worker_index=index, blas_threads=blas_threads)
        return runner.submit(run_trials, parameters=parameters)

    return submit


def _pool_broke(futures: list[Any]) -> bool:
    """True when a process of the pool died; any other error of a worker is raised."""
    broke = False
    for future in futures:
        try:
            future.result()
        except BrokenProcessPool:
            broke = True
    return broke


def _running_pids(study: optuna.Study) -> dict[int, int]:
    """Trial number → worker PID of every RUNNING trial."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return {t.number: t.user_attrs.get("worker_pid") for t in running}


def _wait_for_pool_exit(study: optuna.Study, timeout: float = 60.0) -> None:
    """Wait until no RUNNING trial belongs to a live child of this process (Python is stopping the others)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = {p.pid for p in multiprocessing.active_children()}  # also reaps the dead ones
        if not children & set(_running_pids(study).values()):
            return
        time.sleep(0.1)

