"""A study's parent run tells its story in pictures: Optuna's plots, and the champion's own pictures."""

from __future__ import annotations

import pytest
from support.spaces import space_toml
from mlflow.tracking import MlflowClient
from PIL import Image

from tracking import plots

pytestmark = pytest.mark.integration

SPACE = space_toml(hidden_1=(16, 40), n_hidden=(1, 1), batch_size=[32], activation=["sigmoid"])


def test_parent_run_has_optuna_plots_and_the_champions_pictures(prefect_harness, tracked_env, tmp_path):
    from flows.study import run_study
    from tracking.study_request import StudyRequest

    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    outcome = run_study(StudyRequest(
        name="pictures", trials=3, sampler="random", pruner="none", space_file=str(space),
        epochs=2, patience=2, seed=0, train_size=1_000, val_size=500, diagnostics=True,
    ))
    client = MlflowClient()
    parent = outcome["parent_run_id"]
    logged = {a.path for folder in ("study", "plots", "evaluation") for a in client.list_artifacts(parent, folder)}
    expected = {
        "study/optimization_history.png", "study/param_importances.png", "study/parallel_coordinate.png",
        "study/slice.png", "plots/receptive_fields.png", "plots/learning_speed.png", "evaluation/per_class_accuracy.png",
    }
    assert expected <= logged
    for artifact in expected:
        path = client.download_artifacts(parent, artifact, str(tmp_path))
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) >= 300
            if artifact == "plots/receptive_fields.png":
                hidden = int(client.get_run(outcome["best_run_id"]).data.params["hidden_1"])
                assert image.text[plots.TILES_KEY] == str(hidden)

    trials = client.search_runs([outcome["experiment_id"]], filter_string="tags.kind = 'trial'")
    assert len(trials) == 3
    assert all("diag/layer1/grad_norm" in run.data.metrics for run in trials)
