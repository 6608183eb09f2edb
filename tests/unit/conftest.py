"""Fixtures of the unit tests that run `redes` commands in-process."""

from __future__ import annotations

import pytest


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working folder with no store or data setting inherited: what a command writes lands here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("REDES_OPTUNA_STORAGE", raising=False)
    return tmp_path
