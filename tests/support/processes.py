"""Waiting on what a subprocess prints."""

from __future__ import annotations

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
