"""Ctrl-C, SIGTERM and a vanished parent: a study stops within seconds and leaves nothing running.

In the process that runs the study, the first SIGINT or SIGTERM only asks for a stop
(:mod:`tracking.interruption`): no new trial starts, the pool's workers are told with a
SIGINT of their own, every running trial ends at its next epoch end (FAIL, reason
`interrupted`, its MLflow run KILLED) and the study loop returns. A second SIGINT, or
:data:`FORCE_AFTER` seconds without an end, kills the workers and the servers redes
started and exits at once; the next invocation repairs what was left RUNNING. A repeated
SIGTERM only waits: supervisors such as Prefect's runner send it more than once.

In each pool process, a SIGINT asks for the same stop, and a thread watches the parent:
once it is gone (`kill -9`) the running trial is stopped and the process exits within
:data:`ORPHAN_GRACE` seconds, so no orphan keeps training.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import psutil  # here, not in the function: it may run in a signal handler

from tracking import interruption

#: Seconds from the first signal to a forced exit when the clean stop has not finished.
FORCE_AFTER = 9.0
#: Seconds a pool process whose parent died has to record its trial before it exits.
ORPHAN_GRACE = 6.0
HANDLED = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []  # the signals this process got, first one first
_servers: list[subprocess.Popen] = []  # servers redes started in this process, killed on a forced exit
_timer: list[threading.Timer] = []
_depth = [0]


def register_server(process: subprocess.Popen) -> None:
    """A server this process started (the leader of its own group), killed too on a forced exit."""
    _servers.append(process)


def received() -> int | None:
    """The first SIGINT or SIGTERM this process got while stopping on signals, or None."""
    return _received[0] if _received else None


def exit_code() -> int:
    """The shell's code for the first signal received: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + (received() or signal.SIGINT)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM ask for a clean stop; a second one forces it. Re-entrant.

    Prefect installs its own SIGTERM handler around a flow run; entering this again inside
    the flow puts ours back for as long as the study loop waits on its workers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    for sig in HANDLED:
        signal.signal(sig, _on_signal)
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if _depth[0] == 0:
            for timer in _timer:
                timer.cancel()
            _timer.clear()


def _on_signal(signum: int, frame) -> None:
    if _received:  # a second Ctrl-C is the user insisting; a repeated SIGTERM is a supervisor's (Prefect's runner sends two)
        if signum == signal.SIGINT:
            force_exit(exit_code(), f"second {signal.Signals(signum).name}: stopped at once")
        return
    _received.append(signum)
    interruption.request_stop(signal.Signals(signum).name)
    stop_workers()
    timer = threading.Timer(
        FORCE_AFTER, force_exit, args=(exit_code(), f"not stopped {FORCE_AFTER:.0f} s after {signal.Signals(signum).name}: stopped at once")
    )
    timer.daemon = True
    timer.start()
    _timer.append(timer)


def stop_workers(why: str | None = None) -> None:
    """Ask this process's trials and every pool process to stop at their next epoch end."""
    if why is not None:
        interruption.request_stop(why)
    for child in multiprocessing.active_children():
        send(child.pid, signal.SIGINT)


def kill_workers(timeout: float = 5.0) -> list[int]:
    """SIGKILL every pool process still alive and wait for them, and the fork server they came from; their PIDs."""
    children = multiprocessing.active_children()
    for child in children:
        send(child.pid, signal.SIGKILL)
    for child in children:
        child.join(timeout)
    server = _fork_server_pid()
    if server is not None:  # it would exit by itself once this process is gone, after a slow teardown
        send(server, signal.SIGKILL)  # not reaped here: multiprocessing reaps it, and starts another if asked
    return [child.pid for child in children]


def _fork_server_pid() -> int | None:
    """The PID of the fork server this process started for its pool (flows.study_workers), if any.

    Not one it uses without having started it (`redes up`'s launcher's, which serves its other commands).
    """
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    try:
        return pid if pid is not None and psutil.Process(pid).ppid() == os.getpid() else None
    except psutil.Error:
        return None


def force_exit(code: int, message: str) -> None:
    """Say MESSAGE on one line, kill the servers this process started and the pool, exit with CODE.

    The line goes first, straight to file descriptor 2: called from a signal handler, this may
    interrupt the main thread anywhere (in a print, or in the pool's own clean-up, where killing
    the pool again can fail), and the line was then lost (test_a_second_ctrl_c_forces_the_stop,
    1 run in 2).
    """
    try:
        os.write(2, f"redes: {message}\n".encode(errors="replace"))
        for server in _servers:
            send(-server.pid, signal.SIGKILL)
        kill_workers(timeout=1.0)
    finally:
        os._exit(code)


def exit_now(code: int) -> None:
    """End a stopped study: the servers this process started stopped (SIGTERM, SIGKILL after 2 s), then exit.

    Everything is recorded by then; exiting at once skips the interpreter's teardown, which
    took 5-6 s here after a study (garbage collection of Prefect's and MLflow's objects).
    """
    from runtime.servers import stop_processes

    try:
        kill_workers(timeout=1.0)
        stop_processes([(server, signal.SIGTERM) for server in _servers if server.poll() is None], timeout=2.0)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def exit_flow_run_cancelled(message: str) -> None:
    """In a deployment's flow run (`redes serve`, a worker) stopped by a signal: record it Cancelled, exit at once.

    Its trials and MLflow runs are recorded by then. Left to Prefect's engine, the Cancelled
    state the flow returns is raised again as an error (a traceback in the runner's log), and
    the interpreter's teardown took 4-6 s here, while the runner waits on the process.
    """
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker
    from prefect.runtime import flow_run
    from prefect.states import Cancelled

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Cancelled(message=message), force=True)
        APILogWorker.drain_all(timeout=5)  # the flow run's logs still queued for the API
        sys.stderr.write(f"redes: flow run {flow_run.name} cancelled: {message}\n")
    except Exception as exc:  # noqa: BLE001 - the API may be gone; the trials are recorded, say so and exit
        sys.stderr.write(f"redes: flow run {flow_run.name} stopped ({message}); its state not recorded: {exc}\n")
    finally:
        exit_now(0)


def send(pid: int, sig: int) -> None:
    """Signal SIG to PID (a negative PID: its process group); one that is gone or not ours is left alone."""
    try:
        os.killpg(-pid, sig) if pid < 0 else os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def worker_initializer(parent_pid: int) -> None:
    """Run once in each pool process: a SIGINT asks for a stop, and so does the death of PARENT_PID."""
    from runtime import collector

    collector.tune()  # before the task's modules (MLflow, Optuna) are loaded
    signal.signal(signal.SIGINT, lambda signum, frame: interruption.request_stop("SIGINT"))
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="redes-parent-watch", daemon=True).start()


def stop_with_parent() -> None:
    """In a flow run started by a runner (`redes serve`, a process worker): stop as a pool process does when it dies."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="redes-parent-watch", daemon=True).start()


def _watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Poll the parent; once it is gone, stop the trial, give it ORPHAN_GRACE seconds to be recorded, exit.

    The parent is the process that started the pool, not necessarily this process's parent: a worker
    forked by the fork server (flows.study_workers) is the server's child. Its start time tells it
    apart from a later process with the same PID.
    """
    from runtime.servers import process_started, same_process

    started = process_started(parent_pid)
    while started is not None and same_process(parent_pid, started):
        time.sleep(interval)
    interruption.request_stop(f"its parent process {parent_pid} died")
    time.sleep(ORPHAN_GRACE)
    os._exit(1)
