"""`redes study` with an MLflow server that does not answer: it fails in seconds, before any work,
naming the tracking URI (exit 1: a missing service, not bad input)."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from cli.main import app
from runtime.servers import free_port


def test_study_with_an_unreachable_tracking_server_fails_in_seconds_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REDES_OPTUNA_STORAGE", raising=False)
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)

    started = time.monotonic()
    result = CliRunner().invoke(app, ["study", "--trials", "1", "--train-size", "1000", "--val-size", "100"])
    output = " ".join(result.output.split())
    assert time.monotonic() - started < 10
    assert result.exit_code == 1, result.output
    assert url in output and "MLFLOW_TRACKING_URI" in output
    assert list(tmp_path.iterdir()) == [], "no data, no journal, no MLflow store"
