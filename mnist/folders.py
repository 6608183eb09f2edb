"""Whether the data folder can take new files: a read-only REDES_DATA_DIR serves what it already holds."""

from __future__ import annotations

import os
from pathlib import Path


def writable(folder: str | Path) -> bool:
    """Whether this user can create FOLDER's files (FOLDER, or its nearest parent that exists when it does not);
    False on a read-only mount, even for root."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return os.access(existing, os.W_OK | os.X_OK)
