"""`redes train` on a slice draws what the network learned: real MLflow server, Prefect's harness, real MNIST."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from tracking import plots

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PICTURES = (
    "plots/learning_curve.png",
    "plots/receptive_fields.png",
    "plots/learning_speed.png",
    "evaluation/per_class_accuracy.png",
    "evaluation/confusion_matrix.png",
    "evaluation/misclassified.png",
)


def png(path):
    """(width, height, text chunks) of a file that must be a PNG PIL can decode."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(path) as image:
        image.load()
        return image.width, image.height, dict(image.text)


def train(*options: str) -> dict:
    from cli.main import app

    result = CliRunner().invoke(app, ["train", "--train-size", "1000", "--val-size", "500", "--epochs", "2", "--json", *options])
    assert result.exit_code == 0, result.output
    # the JSON object is the command's last line of its own; Prefect's log handlers may write after it
    return json.loads([line for line in result.output.splitlines() if line.startswith("{")][-1])


def test_a_short_run_logs_every_picture_with_one_tile_per_hidden_unit(prefect_harness, tracked_env, tmp_path):
    outcome = train("--sizes", "784,30,10")
    client = MlflowClient()
    run_id = outcome["mlflow_run_id"]
    logged = {a.path for folder in ("plots", "evaluation") for a in client.list_artifacts(run_id, folder)}
    assert set(PICTURES) <= logged
    for artifact in PICTURES:
        width, height, text = png(client.download_artifacts(run_id, artifact, str(tmp_path)))
        assert 300 <= width <= 3000 and 300 <= height <= 3000, (artifact, width, height)
        if artifact == "plots/receptive_fields.png":
            assert text[plots.TILES_KEY] == "30" and text[plots.GRID_KEY] == "5x6"
    metrics = client.get_run(run_id).data.metrics
    assert {f"diag/layer{i}/{k}" for i in (1, 2) for k in ("grad_norm", "weight_norm", "saturated")} <= set(metrics)
    assert len(client.get_metric_history(run_id, "diag/layer1/grad_norm")) == 2


def test_without_diagnostics_there_is_no_learning_speed_plot_and_the_grid_stops_at_the_cap(
    prefect_harness, tracked_env, tmp_path
):
    outcome = train("--sizes", "784,120,10", "--no-diagnostics")
    client = MlflowClient()
    run_id = outcome["mlflow_run_id"]
    logged = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert "plots/receptive_fields.png" in logged and "plots/learning_speed.png" not in logged
    _, _, text = png(client.download_artifacts(run_id, "plots/receptive_fields.png", str(tmp_path)))
    assert text[plots.TILES_KEY] == "100" and text[plots.GRID_KEY] == "10x10"
    assert not any(k.startswith("diag/") for k in client.get_run(run_id).data.metrics)
