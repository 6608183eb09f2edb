"""Folders that may not exist yet: what a check can look at before anything is created."""

from __future__ import annotations

from pathlib import Path


def nearest_existing(path: Path) -> Path:
    """PATH itself when it exists, else its nearest parent that does: where a folder created there would go."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing
