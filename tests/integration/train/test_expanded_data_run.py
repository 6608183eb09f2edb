"""`redes train` with momentum and expanded data on a slice: every setting is an MLflow parameter, the run's
name says it, and the run shows a batch of training images as the network saw them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

pytestmark = pytest.mark.integration

OPTIONS = {
    "momentum": "0.5", "max_norm": "3", "schedule": "cosine", "shift": "2", "rotate": "10", "scale": "0.1",
    "shear": "5", "elastic_alpha": "34", "elastic_sigma": "5",
}


def train(*options: str) -> dict:
    from cli.main import app

    result = CliRunner().invoke(
        app, ["train", "--sizes", "784,30,10", "--train-size", "1000", "--val-size", "500", "--epochs", "1",
              "--no-diagnostics", "--json", *options]
    )
    assert result.exit_code == 0, result.output
    return json.loads([line for line in result.output.splitlines() if line.startswith("{")][-1])


def test_every_new_setting_is_a_parameter_and_the_expanded_batch_is_drawn(prefect_harness, tracked_env, tmp_path):
    args = [a for name, value in OPTIONS.items() for a in (f"--{name.replace('_', '-')}", value)]
    outcome = train(*args, "--nesterov")
    client = MlflowClient()
    run = client.get_run(outcome["mlflow_run_id"])
    for name, value in OPTIONS.items():
        assert run.data.params[name] == (value if name == "schedule" else str(float(value))), name
    assert run.data.params["nesterov"] == "True"
    assert "μ0.5" in run.info.run_name and "elastic34/σ5" in run.info.run_name and "cosine" in run.info.run_name
    picture = client.download_artifacts(run.info.run_id, "plots/expanded_batch.png", str(tmp_path))
    with Image.open(picture) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert 300 <= pixels.shape[1] <= 3000 and pixels.std() > 20  # digits drawn, not an empty canvas


def test_a_run_without_distortion_draws_no_expanded_batch(prefect_harness, tracked_env):
    outcome = train("--momentum", "0.9")
    client = MlflowClient()
    logged = {a.path for a in client.list_artifacts(outcome["mlflow_run_id"], "plots")}
    assert "plots/learning_curve.png" in logged and "plots/expanded_batch.png" not in logged
    params = client.get_run(outcome["mlflow_run_id"]).data.params
    assert params["momentum"] == "0.9" and params["elastic_alpha"] == "0.0" and params["shift"] == "0.0"
