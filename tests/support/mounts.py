"""A small tmpfs mounted on a test's folder: a disk that is full, nearly full or read-only, for real."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def tmpfs(folder: Path, options: str, lazy: bool = False) -> Iterator[Path]:
    """FOLDER (made if missing) with a tmpfs mounted on it with OPTIONS (``size=5m``, ``ro,size=64k``), unmounted
    at the end (``lazy``: even while a process still holds a file in it). Mounting needs root: skipped otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", *(["--lazy"] if lazy else []), str(folder)], check=True)
