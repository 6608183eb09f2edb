"""Waiting on what a subprocess prints, and on every process working in a folder to be gone."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def wait_for_output(process: subprocess.Popen, path: Path, mark: str, timeout: float) -> str:
    """The output in PATH so far, once it contains MARK; fails if PROCESS exits first or TIMEOUT passes."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if mark in text:
            return text
        assert process.poll() is None, f"exited with {process.returncode} before printing {mark!r}:\n{text}"
        assert time.monotonic() < deadline, f"{mark!r} not printed within {timeout:.0f} s:\n{text}"
        time.sleep(0.2)


def processes_in(folder) -> list[str]:
    """`pid command` of every live process working in FOLDER (redes, its pool, the servers it started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") != str(folder):
                continue
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]
            command = open(f"/proc/{entry}/cmdline").read().replace("\0", " ")
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(f"{entry} {command[:160]}")
    return found


def wait_gone(folder, timeout: float) -> float:
    """Seconds until nothing runs in FOLDER; fails with what still runs after TIMEOUT."""
    started = time.monotonic()
    while processes_in(folder):
        assert time.monotonic() - started < timeout, f"still running after {timeout} s: {processes_in(folder)}"
        time.sleep(0.1)
    return time.monotonic() - started


#: What every child process of a test runs with: offline, one BLAS thread.
CHILD_ENV = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
