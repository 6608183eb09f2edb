"""Run a command in the warm launcher `redes up` started (`cli.launcher`), when there is one.

The command typed at the terminal stays the foreground process: it hands the launcher its
arguments, folder, environment and its standard input, output and error, forwards the
signals it gets (a terminal's Ctrl-C, SIGTERM, SIGHUP) to the forked command, and exits
with that command's code. Without a live launcher, or when the launcher refuses (another
environment), the command runs here, as it would without `redes up`. REDES_LAUNCHER=off
never uses it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

#: True in a command the launcher forked: it runs there and never asks a launcher again.
LAUNCHED = False
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OFF = ("off", "0", "false", "no")


def run_in_launcher(workdir: Path, argv: list[str]) -> tuple[int | None, str | None]:
    """(exit code, None) when the launcher ran the command; (None, why) when it runs here instead."""
    if LAUNCHED or os.environ.get("REDES_LAUNCHER", "").strip().lower() in OFF:
        return None, None
    from cli.launcher_control import NAME, connect, socket_path
    from runtime import server_record

    live, _stale = server_record.look(workdir)
    if not any(entry.name == NAME for entry in live):
        return None, None
    try:
        conn = connect(socket_path(workdir))
        umask = os.umask(0)
        os.umask(umask)
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        reader = conn.makefile("rb")
        first = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError) as exc:
        return None, f"the launcher of `redes up` did not answer ({exc})"
    if "pid" not in first:
        return None, f"the launcher of `redes up` did not run it: {first.get('refused', 'no answer')}"
    return _wait(first["pid"], reader), None


def _wait(pid: int, reader) -> int:
    """Forward this process's signals to PID until the launcher sends its exit code."""

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    for line in reader:
        message = json.loads(line)
        if "exit" in message:
            return int(message["exit"])
    sys.stderr.write(f"redes: the launcher's command (pid {pid}) ended without an exit code\n")
    return 1


def follow_caller(pid: int, interval: float = 0.5) -> None:
    """In the forked command: once the process that typed it is gone (`kill -9`), stop as if sent SIGTERM."""
    from runtime.servers import process_started, same_process

    started = process_started(pid)

    def watch() -> None:
        while started is not None and same_process(pid, started):
            threading.Event().wait(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="redes-caller-watch", daemon=True).start()
