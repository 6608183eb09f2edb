"""Registering the network stays quiet unless MLflow's logger shows INFO (`redes --verbose`): no type-hint
UserWarning (MLflow raises it under its own simplefilter("once")), no "Successfully registered model" print."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from tracking.champion import MODEL_CODE

SHOW_WARNINGS = (
    "import runpy, warnings; warnings.simplefilter('default'); runpy.run_path({path!r}); print('defined')"
)


@pytest.mark.parametrize("level, shown", [("WARNING", False), ("INFO", True)])
def test_the_type_hint_warning_of_the_model_code_follows_mlflows_level(level, shown):
    env = {**os.environ, "MLFLOW_LOGGING_LEVEL": level}
    done = subprocess.run(
        [sys.executable, "-c", SHOW_WARNINGS.format(path=str(MODEL_CODE))], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "defined"
    assert ("Add type hints" in done.stderr) is shown, done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def mlflow_level():
    logger = logging.getLogger("mlflow")
    previous = logger.level

    def set_level(level: int) -> None:
        logger.setLevel(level)

    yield set_level
    logger.setLevel(previous)


@pytest.mark.parametrize("level, shown", [(logging.WARNING, False), (logging.INFO, True)])
def test_registering_prints_nothing_unless_mlflow_shows_info(tmp_path, mlflow_db, monkeypatch, capfd, mlflow_level, level, shown):
    import mlflow
    from mlflow.tracking import MlflowClient

    from core.config import TrainConfig
    from core.network import Network
    from tracking import champion

    uri = mlflow_db
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: uri)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("quiet", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    weights = tmp_path / "network.npz"
    Network.from_config(TrainConfig(sizes=(784, 10, 10))).save(weights)
    capfd.readouterr()
    mlflow_level(level)
    version, promoted = champion.register(client, run_id, weights, val_accuracy=0.5)
    err = capfd.readouterr().err
    assert version == "1" and promoted
    assert ("Successfully registered model 'redes-mnist'" in err) is shown, err
    assert ("Created version '1' of model 'redes-mnist'" in err) is shown, err
