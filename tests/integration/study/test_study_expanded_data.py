"""A study that searches expanded data: its trials carry the distortion settings as parameters, and its
parent run shows a batch of training images as the champion saw them."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from support.spaces import space_toml

pytestmark = pytest.mark.integration

SPACE = space_toml(hidden_1=(16, 40), n_hidden=(1, 1), batch_size=[32], activation=["sigmoid"], shift=(1.0, 3.0))


def test_parent_run_shows_the_champions_expanded_batch(prefect_harness, tracked_env, tmp_path):
    from flows.study import run_study
    from tracking.study_request import StudyRequest

    space = tmp_path / "space.toml"
    space.write_text(SPACE + "[space.momentum]\n\n[fixed]\nelastic_alpha = 34.0\n")
    outcome = run_study(StudyRequest(
        name="expanded", trials=2, sampler="random", pruner="none", space_file=str(space),
        epochs=1, patience=1, seed=0, train_size=1_000, val_size=500,
    ))
    client = MlflowClient()
    parent = outcome["parent_run_id"]
    assert "plots/expanded_batch.png" in {a.path for a in client.list_artifacts(parent, "plots")}
    with Image.open(client.download_artifacts(parent, "plots/expanded_batch.png", str(tmp_path))) as image:
        assert image.format == "PNG" and min(image.size) >= 300
    trials = client.search_runs([outcome["experiment_id"]], filter_string="tags.kind = 'trial'")
    assert len(trials) == 2
    for run in trials:
        assert 1.0 <= float(run.data.params["shift"]) <= 3.0 and 0.0 <= float(run.data.params["momentum"]) <= 0.95
        assert run.data.params["elastic_alpha"] == "34.0"
