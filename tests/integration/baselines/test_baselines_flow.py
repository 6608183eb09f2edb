"""`redes baselines` end to end without the SVM: a real MLflow server, Prefect's harness, a slice of the real MNIST."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

pytestmark = pytest.mark.integration


def test_each_baseline_is_one_run_tagged_baseline_with_both_accuracies(prefect_harness, tracked_env):
    from flows.baselines import DARKNESS, PERCEPTRON, RANDOM, SOFTMAX
    from cli.main import app

    args = [
        "baselines", "--no-svm", "--experiment", "study-beside", "--train-size", "3000", "--val-size", "1000",
        "--epochs", "3", "--perceptron-epochs", "2", "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output.strip().splitlines()[-1])
    assert sorted(outcome) == sorted([RANDOM, DARKNESS, PERCEPTRON, SOFTMAX])

    client = MlflowClient()
    experiment = client.get_experiment_by_name("study-beside")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'baseline'")
    assert sorted(r.info.run_name for r in runs) == sorted(outcome)
    for run in runs:
        name = run.info.run_name
        metrics, params = run.data.metrics, run.data.params
        assert run.info.status == "FINISHED", name
        assert run.data.tags["baseline"] == name and params["baseline"] == name
        assert params["train_size"] == "3000" and params["val_size"] == "1000"
        assert metrics["test/accuracy"] == pytest.approx(outcome[name]["test_accuracy"])
        assert 0.0 <= metrics["val/accuracy"] <= 1.0 and metrics["seconds"] >= 0.0
        assert outcome[name]["run_id"] == run.info.run_id
        assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"mnist-train", "mnist-val", "mnist-test"}

    test = {name: outcome[name]["test_accuracy"] for name in outcome}
    assert 0.05 < test[RANDOM] < 0.15
    assert 0.17 < test[DARKNESS] < 0.27
    assert test[PERCEPTRON] > 0.75 and test[SOFTMAX] > 0.8
    softmax = next(r for r in runs if r.info.run_name == SOFTMAX)
    assert softmax.data.params["sizes"] == "784,10" and softmax.data.params["cost"] == "log-likelihood"
    assert softmax.data.params["output_encoding"] == "onehot"
    history = client.get_metric_history(softmax.info.run_id, "val/accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3]
    perceptron = next(r for r in runs if r.info.run_name == PERCEPTRON)
    assert [m.step for m in client.get_metric_history(perceptron.info.run_id, "epoch/val_accuracy")] == [1, 2]
