"""Servers as child processes: start one, wait until its health URL answers, stop it by PID.

`redes ui` and the integration tests start MLflow, optuna-dashboard and Prefect the same
way. Each server runs in its own process group (its own session), so a Ctrl-C in the
terminal reaches only redes, which then stops every group it started: a signal to the
whole group, a wait, SIGKILL after a timeout. Readiness is a health URL that answers,
never a sleep. Servers bind 127.0.0.1 unless the caller passes another host.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1
WILDCARD_HOSTS = ("0.0.0.0", "::", "")

#: Names that keep the servers from phoning home; children get them unless the caller set them.
OFFLINE_ENV = {
    "DO_NOT_TRACK": "true",  # the string "true": MLflow ignores "1"
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}

#: Where `redes ui` serves the MLflow UI and optuna-dashboard unless told otherwise; the links a
#: study records for its embedded stores point there.
MLFLOW_UI_PORT = 5000
OPTUNA_DASHBOARD_PORT = 8080


class ServerError(RuntimeError):
    """A server did not start, or did not answer its health URL in time; the message says why."""


@dataclass
class Server:
    """A server started by :func:`start_server`: its process (the leader of its own group) and where it answers."""

    name: str
    process: subprocess.Popen
    health_url: str
    log_path: Path | None = None
    accept: tuple[int, ...] = (200,)
    started_at: float = field(default_factory=time.monotonic)
    seconds_to_ready: float | None = None
    cleanup: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True when binding HOST:PORT fails (another server has it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def connect_host(bind_host: str) -> str:
    """The address to reach a server that binds BIND_HOST from this machine."""
    return LOOPBACK if bind_host in WILDCARD_HOSTS else bind_host


def url_host(host: str) -> str:
    """HOST as written inside a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def child_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child server: ours, the offline defaults where unset, then EXTRA."""
    env = dict(os.environ if base is None else base)
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)
    env.update(extra or {})
    return env


def start_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log_path: str | Path | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    """Start ARGV in a new session (its own process group), output to LOG_PATH (or discarded).

    With DIE_WITH_PARENT, the kernel sends it SIGTERM when this process dies, even by `kill -9`.
    """
    if log_path is not None:
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")
    else:
        out = subprocess.DEVNULL
    try:
        return subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else child_env(),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with(os.getpid()) if die_with_parent else None,
        )
    finally:
        if log_path is not None:
            out.close()


def die_with(parent: int):
    """A ``preexec_fn``: the child gets SIGTERM when PARENT dies (Linux PR_SET_PDEATHSIG); exits if it already has."""

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def http_status(url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None) -> int | None:
    """The HTTP status URL answers with, or None when nothing answers."""
    return probe(url, timeout, headers)[0]


def probe(url: str, timeout: float = 2.0, headers: Mapping[str, str] | None = None) -> tuple[int | None, str]:
    """The HTTP status URL answers with and why, for a message: ``(200, "HTTP 200")``, ``(None, "Connection refused")``."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


def wait_for_http(
    url: str,
    *,
    timeout: float = 120.0,
    accept: Iterable[int] = (200,),
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
    interval: float = 0.25,
) -> float:
    """Poll URL until it answers with a status in ACCEPT; return the seconds it took.

    Fails at once, with the end of the log, when PROCESS exits first; fails after TIMEOUT
    seconds with the last status seen.
    """
    accepted = set(accept)
    started = time.monotonic()
    last: int | None = None
    while True:
        if process is not None and process.poll() is not None:
            raise ServerError(
                f"the server for {url} exited with code {process.returncode} before answering" + _log_tail(log_path)
            )
        last = http_status(url)
        if last in accepted:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            seen = f"HTTP {last}" if last is not None else "no answer"
            raise ServerError(f"{url} did not answer within {timeout:.0f} s ({seen})" + _log_tail(log_path))
        time.sleep(interval)


def wait_for_servers(servers: Sequence[Server], *, timeout: float = 120.0, interval: float = 0.25) -> None:
    """Poll every server's health URL at once until all answer; set each one's ``seconds_to_ready``.

    The time is counted from the server's start, so servers started together are timed fairly.
    """
    pending = [s for s in servers if s.seconds_to_ready is None]
    started = time.monotonic()
    while pending:
        for server in list(pending):
            if server.process.poll() is not None:
                raise ServerError(
                    f"{server.name} (pid {server.pid}) exited with code {server.process.returncode} before "
                    f"answering {server.health_url}" + _log_tail(server.log_path)
                )
            if http_status(server.health_url) in server.accept:
                server.seconds_to_ready = time.monotonic() - server.started_at
                pending.remove(server)
        if pending and time.monotonic() - started > timeout:
            names = ", ".join(f"{s.name} ({s.health_url})" for s in pending)
            raise ServerError(f"no answer within {timeout:.0f} s from {names}" + _log_tail(pending[0].log_path))
        if pending:
            time.sleep(interval)


def http_json(url: str, timeout: float = 5.0) -> dict:
    """GET URL and decode its JSON body."""
    import json

    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


def mask_url(url: str) -> str:
    """URL with its password replaced by ***, for tables and log lines."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    if password is None:
        return url
    user, location = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{location}"))


def _reachable(kill, target: int) -> bool:
    """True when signal 0 reaches TARGET through KILL (os.kill or os.killpg); someone else's counts."""
    try:
        kill(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """True while any process of the group PGID exists (zombies included)."""
    return _reachable(os.killpg, pgid)


def pid_alive(pid: int) -> bool:
    """True while process PID exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def process_started(pid: int) -> float | None:
    """When process PID started (seconds since the epoch), or None when there is none: with the PID,
    it tells a process apart from a later one that reuses its PID."""
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 2)  # the kernel counts in ticks of 10 ms
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def same_process(pid: int, started: float) -> bool:
    """True while the process PID that started at STARTED (see :func:`process_started`) is alive."""
    now = process_started(pid)
    return now is not None and abs(now - started) < 0.015 and pid_alive(pid)


def stop_process(
    process: subprocess.Popen | int,
    *,
    sig: int = signal.SIGTERM,
    timeout: float = 15.0,
) -> int | None:
    """Stop a process and its whole group: SIG to the group, wait up to TIMEOUT, then SIGKILL.

    PROCESS is a Popen started by :func:`start_process` (its PID is its group id) or a bare
    PID. Returns the exit code when PROCESS is our child, else None.
    """
    stop_processes([(process, sig)], timeout=timeout)
    return None if isinstance(process, int) else process.returncode


def stop_processes(
    processes: Sequence[tuple[subprocess.Popen | int, int]],
    *,
    timeout: float = 15.0,
) -> None:
    """Stop several processes and their groups at once: every signal first, then one shared wait.

    PROCESSES holds ``(process, signal)`` pairs; whatever is still alive after TIMEOUT is killed.
    """
    targets = []
    for process, sig in processes:
        pid = process if isinstance(process, int) else process.pid
        popen = None if isinstance(process, int) else process
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            pgid = pid
        group = pgid if pgid == pid else None  # never signal a group we merely belong to
        _signal(pid, group, sig)
        targets.append((pid, group, popen))
    deadline = time.monotonic() + timeout
    for pid, group, popen in targets:
        if not _wait_gone(pid, group, popen, deadline):
            _signal(pid, group, signal.SIGKILL)
            _wait_gone(pid, group, popen, time.monotonic() + 10)


def start_server(
    argv: Sequence[str],
    *,
    health_url: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log_path: str | Path | None = None,
    timeout: float = 120.0,
    accept: Iterable[int] = (200,),
    name: str | None = None,
    die_with_parent: bool = False,
) -> Server:
    """Start a server and return once HEALTH_URL answers; the server is stopped if it never does."""
    log = Path(log_path) if log_path is not None else None
    process = start_process(argv, env=env, cwd=cwd, log_path=log, die_with_parent=die_with_parent)
    server = Server(
        name=name or Path(argv[0]).name, process=process, health_url=health_url, log_path=log, accept=tuple(accept)
    )
    try:
        wait_for_servers([server], timeout=timeout)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: Server, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
    """Stop a server started by :func:`start_server` (its whole process group) and remove its temporary files."""
    try:
        return stop_process(server.process, sig=sig, timeout=timeout)
    finally:
        for path in server.cleanup:
            _remove(path)


def _signal(pid: int, pgid: int | None, sig: int) -> None:
    try:
        if pgid is not None:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, pgid: int | None, popen: subprocess.Popen | None, deadline: float) -> bool:
    while True:
        if popen is not None:
            popen.poll()
            leader_gone = popen.returncode is not None
        else:
            leader_gone = not pid_alive(pid)
        if leader_gone and (pgid is None or not group_has_live_members(pgid)):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def group_has_live_members(pgid: int) -> bool:
    """Live (non-zombie) processes left in group PGID; orphans are reaped by init, not by us."""
    import psutil

    if not group_alive(pgid):
        return False
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


def _log_tail(log_path: Path | None, lines: int = 20) -> str:
    if log_path is None or not Path(log_path).exists():
        return ""
    text = Path(log_path).read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log_path} ---\n" + "\n".join(text)


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
