"""Fixtures of the unit tests that run `redes` commands in-process."""

from __future__ import annotations

import shutil
import sqlite3

import pytest


@pytest.fixture(scope="session")
def migrated_mlflow_db(tmp_path_factory):
    """An MLflow SQLite store with its schema made once per test process: migrating takes a second or more, a copy milliseconds.

    Its default experiment is removed, so that each copy creates its own with the artifact root of the test that opens it.
    """
    from mlflow import MlflowClient

    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()
    with sqlite3.connect(template) as database:
        database.execute("DELETE FROM experiments")
    return template


@pytest.fixture
def mlflow_db(tmp_path, migrated_mlflow_db) -> str:
    """The URI of `tmp_path/mlflow.db`, a fresh MLflow store (a copy of the migrated one)."""
    target = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_mlflow_db, target)
    return f"sqlite:///{target}"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working folder with no store or data setting inherited: what a command writes lands here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("REDES_OPTUNA_STORAGE", raising=False)
    return tmp_path
