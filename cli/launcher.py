"""The warm launcher `redes up` leaves running: commands start in a process that has loaded everything.

A `redes train` spends about 3.5 of its 5.5 s importing Prefect, MLflow, pandas and
matplotlib. `python -m cli.launcher SOCKET` imports them once, then waits on a Unix socket
in the working folder. For each command (`cli.delegate` sends its arguments, folder,
environment and its standard input, output and error as file descriptors), it forks a
monitor in a session of its own, which forks the command: the command is this process as
it was after the imports, running `cli.main` with the caller's arguments, environment and
terminal. The monitor waits for it and sends its exit code back. Forks start nothing the
caller would not: the launcher runs no thread (checked after the imports).

It also starts the fork server of a study's worker processes (flows.study_workers), which loads
their modules at once: `redes study --workers W` forked from here finds it running, and its
workers start loaded instead of after seconds of imports.

A command is refused, and then runs where it was typed, when its environment differs from
the launcher's (libraries read some settings at import): `redes down` and `redes up` again
take a new environment. `redes down` stops the launcher; commands it started go on.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
import threading
import time

from cli import launcher_control

#: What the commands need, loaded once (none of `cli`: its consoles would see the launcher's log, not a terminal).
PRELOAD = (
    "numpy", "pandas", "matplotlib.pyplot", "prefect", "mlflow", "mlflow.store.tracking.sqlalchemy_store", "optuna",
    "flows.train_once", "flows.study", "flows.study_workers", "flows.baselines", "flows.prepare_data",
    "tracking.champion", "tracking.plots", "tracking.objective", "typer", "rich.console",
)  # fmt: skip
#: Variables that differ between two shells of one user without changing what a command does.
VOLATILE = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES"})
MAX_REQUEST = 1 << 20
#: The launcher's environment before its imports (some set variables: KMP_DUPLICATE_LIB_OK).
STARTED_WITH: dict[str, str] = dict(os.environ)


def env_difference(theirs: dict[str, str], ours: dict[str, str]) -> list[str]:
    """The variables (names only: values may be secrets) set differently in THEIRS and OURS."""
    keys = (set(theirs) | set(ours)) - VOLATILE
    return sorted(key for key in keys if theirs.get(key) != ours.get(key))


def read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """One JSON line, and the file descriptors that came with it."""
    data, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(MAX_REQUEST)
        if not more:
            raise ConnectionError("the request ended early")
        data += more
    return json.loads(data), list(fds)


def send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def peer_pid(conn: socket.socket) -> tuple[int, int]:
    """The PID and user of the process at the other end of CONN (the kernel's word, not the caller's)."""
    import struct

    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid


def log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def serve(listener: socket.socket, launcher_pid: int) -> dict | None:
    """Answer requests until SIGTERM (None); in a forked command, return its request."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the commands, not for this
    listener.settimeout(0.5)
    while not stopping.is_set():
        _reap()
        try:
            conn, _ = listener.accept()
        except (socket.timeout, InterruptedError):
            continue
        conn.settimeout(10)
        try:
            job = _answer(conn, listener)
        except (OSError, ValueError) as exc:  # a caller that went away mid-request, or sent garbage
            log(f"a request failed: {exc}")
            job = None
        if os.getpid() != launcher_pid:  # the forked command
            return job
        conn.close()
    return None


def _answer(conn: socket.socket, listener: socket.socket) -> dict | None:
    request, fds = read_request(conn)
    if request.get("argv") == [launcher_control.PING]:
        send(conn, {"ready": True, "pid": os.getpid()})
        return None
    pid, uid = peer_pid(conn)
    refusal = "another user" if uid != os.getuid() else None
    different = env_difference(request["env"], STARTED_WITH)
    if different:
        refusal = "its environment differs in " + ", ".join(different[:8]) + (" …" if len(different) > 8 else "")
    if refusal or len(fds) != 3:
        send(conn, {"refused": refusal or "no terminal descriptors came with the request"})
        log(f"refused `redes {' '.join(request.get('argv', []))}`: {refusal}")
        for fd in fds:
            os.close(fd)
        return None
    if os.fork() == 0:  # the monitor, in a session of its own: `redes down` does not stop it
        os.setsid()
        listener.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        command = os.fork()
        if command == 0:
            conn.close()
            return {**request, "fds": fds, "caller": pid}
        for fd in fds:
            os.close(fd)
        _monitor(conn, command, request["argv"])
    for fd in fds:
        os.close(fd)
    return None


def _monitor(conn: socket.socket, command: int, argv: list[str]) -> None:
    """Tell the caller the command's PID, wait for it, send its exit code (128 + N for a signal N), exit."""
    started = time.monotonic()
    code = 1
    try:
        conn.settimeout(None)
        send(conn, {"pid": command})
        _, status = os.waitpid(command, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        log(f"ran `redes {' '.join(argv)}` as pid {command}: exit {code} after {time.monotonic() - started:.1f} s")
        send(conn, {"exit": code})
    except OSError as exc:
        log(f"`redes {' '.join(argv)}` (pid {command}): its caller is gone ({exc})")
    finally:
        os._exit(0)


def _reap() -> None:
    """Collect the monitors that ended (each lives as long as its command)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def run_command(job: dict) -> None:
    """In the forked command: take the caller's terminal, folder and environment, then run `cli.main` as it asked."""
    import io

    for target, fd in enumerate(job["fds"]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(job["cwd"])
    os.umask(job["umask"])
    set_by_imports = {key: value for key, value in os.environ.items() if key not in STARTED_WITH}
    os.environ.clear()
    os.environ.update({**job["env"], **set_by_imports})  # as if this process had imported them itself
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)
    sys.stderr = io.TextIOWrapper(open(2, "wb", buffering=0, closefd=False), line_buffering=True, errors="backslashreplace")
    sys.argv = ["redes", *job["argv"]]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from cli import delegate

    delegate.LAUNCHED = True  # this process runs the command: it never asks the launcher again
    delegate.follow_caller(job["caller"])
    from cli.main import main

    main()


def start_workers_fork_server():
    """The fork server of the studies' workers, in a process group of its own; it loads their modules meanwhile."""
    from multiprocessing import forkserver, resource_tracker

    from flows.study_workers import start_fork_server
    from flows.worker_preload import OWN_GROUP

    os.environ[OWN_GROUP] = "1"  # for the server alone: it removes it, and this process's commands never see it
    try:
        start_fork_server()
    finally:
        del os.environ[OWN_GROUP]
    # Python started its resource tracker for the server; each command starts its own when it needs one (as
    # without the launcher): one here would outlive `redes down` for as long as any command holds it.
    resource_tracker._resource_tracker._stop()
    return forkserver._forkserver


def stop_workers_fork_server(server, timeout: float = 2.0) -> None:
    """Let the fork server go: it exits once no command of this launcher holds it any more (at once, if none runs)."""
    os.close(server._forkserver_alive_fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(server._forkserver_pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:  # reaped by the request loop
            return
        time.sleep(0.05)
    log("the workers' fork server goes on while the studies started here run")


def main(socket_path: str) -> int:
    started = time.monotonic()
    from runtime import collector

    collector.tune()
    for name in PRELOAD:
        importlib.import_module(name)
    threads = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    if threads:  # a fork copies one thread only; a lock another one held would stay locked in every command
        log(f"not started: loading the modules started threads ({', '.join(threads)}), and commands are forked")
        return 1
    fork_server = start_workers_fork_server()
    collector.skip_last_collection()  # frozen: no command's collection walks (and copies) the loaded objects
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # the socket: this user only
    listener.bind(launcher_control.address(socket_path))  # its folder is the commands' folder
    os.umask(previous)
    listener.listen(16)
    launcher = os.getpid()
    log(f"ready in {time.monotonic() - started:.1f} s on {socket_path}")
    sys.stdout.flush()
    job = serve(listener, launcher)
    if os.getpid() == launcher:
        listener.close()
        os.unlink(socket_path)
        stop_workers_fork_server(fork_server)
        log("stopped")
        return 0
    run_command(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
