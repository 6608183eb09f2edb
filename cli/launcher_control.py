"""Starting the warm launcher (`cli.launcher`) and reaching it: its socket, its readiness, its record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NAME = "launcher"
SOCKET = Path(".redes") / "launcher.sock"
PING = "ping"
STOP_SIGNAL = signal.SIGTERM


def start(workdir: Path, prefect_api: str | None) -> subprocess.Popen:
    """Start the launcher for WORKDIR with this process's environment (and PREFECT_API_URL, when given):
    the environment the commands typed here will have."""
    from runtime.servers import start_process

    env = dict(os.environ)
    if prefect_api:
        env["PREFECT_API_URL"] = prefect_api
    log_path = Path(workdir) / ".redes" / "logs" / "launcher.log"
    argv = [sys.executable, "-m", "cli.launcher", str(socket_path(workdir).resolve())]
    return start_process(argv, env=env, cwd=workdir, log_path=log_path)


def wait_ready(process: subprocess.Popen, workdir: Path, timeout: float):
    """The launcher's record once it answers on its socket; ServerError if it exits or stays silent."""
    from runtime.server_record import Recorded
    from runtime.servers import ServerError, process_started

    path = socket_path(workdir)
    log_path = Path(workdir) / ".redes" / "logs" / "launcher.log"
    deadline = time.monotonic() + timeout
    while not ping(path):
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
            raise ServerError(f"the launcher exited with code {process.returncode}: {' '.join(tail)} (log {log_path})")
        if time.monotonic() > deadline:
            raise ServerError(f"the launcher did not answer on {path} within {timeout:.0f} s (log {log_path})")
        time.sleep(0.1)
    return Recorded(
        name=NAME, pid=process.pid, started=process_started(process.pid) or 0.0, url=f"unix:{path}", health_url="",
        stop_signal=int(STOP_SIGNAL), log=str(log_path),
    )  # fmt: skip


def socket_path(workdir: Path) -> Path:
    return Path(workdir) / SOCKET


def address(path: Path) -> str:
    """PATH as a socket address: relative to this process's folder when the absolute one is too long for a
    Unix socket (108 bytes on Linux; a deep working folder)."""
    text = str(path)
    return os.path.relpath(text) if len(os.fsencode(text)) >= 100 else text


def connect(path: Path, timeout: float = 5.0) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    conn.connect(address(path))
    conn.settimeout(None)
    return conn


def ping(path: Path, timeout: float = 2.0) -> bool:
    """True when a launcher answers on PATH."""
    try:
        with connect(path, timeout) as conn:
            conn.settimeout(timeout)
            socket.send_fds(conn, [json.dumps({"argv": [PING]}).encode() + b"\n"], [])
            return json.loads(conn.makefile("rb").readline() or b"{}").get("ready", False)
    except (OSError, ValueError):
        return False
