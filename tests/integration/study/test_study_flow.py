"""Studies end to end: a real MLflow server, Prefect's harness, a 2,000-image slice of the real MNIST."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from support.spaces import space_toml
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

SPACE = space_toml(hidden_1=(16, 48, "log"), n_hidden=(1, 1), batch_size=[32, 64], activation=["sigmoid", "relu"])


def _study(tmp_path, name, trials, workers=1, enqueue=None, pruner="none", epochs=3):
    from flows.study import run_study
    from tracking.study_request import StudyRequest

    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    return run_study(StudyRequest(
        workers=workers,
        name=name,
        trials=trials,
        sampler="tpe",
        pruner=pruner,
        space_file=str(space),
        epochs=epochs,
        patience=epochs,
        seed=0,
        enqueue=tuple(enqueue or ()),
        train_size=2_000,
        val_size=1_000,
    ))


def _children(client, experiment_id):
    runs = client.search_runs([experiment_id], filter_string="tags.kind = 'trial'", max_results=1000)
    return sorted(runs, key=lambda r: int(r.data.tags["optuna.trial_number"]))


def test_three_trials_are_tracked_and_the_best_is_tested_and_registered(prefect_harness, tracked_env, tmp_path):
    import mlflow

    from mnist.split import load_split
    from core.network import Network

    outcome = _study(tmp_path, "three", trials=3)
    client = MlflowClient()
    parents = client.search_runs([outcome["experiment_id"]], filter_string="tags.kind = 'study'")
    assert [p.info.run_id for p in parents] == [outcome["parent_run_id"]]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["optuna.study"] == "three" and parent.data.tags["optuna.sampler"] == "tpe"

    study = optuna.load_study(study_name="three", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna-journal.log"))))
    children = _children(client, outcome["experiment_id"])
    assert len(children) == 3
    for trial, run in zip(study.trials, children):
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.info.status == "FINISHED"
        for key, value in trial.params.items():
            assert run.data.params[key] == str(value)
        history = client.get_metric_history(run.info.run_id, "val/accuracy")
        assert sorted(m.step for m in history) == [1, 2, 3]
        assert all(0.0 <= m.value <= 1.0 for m in history)
        assert {"best_epoch", "stopped_epoch"} <= set(run.data.metrics)
        assert run.data.tags["stop_reason"] in {"patience", "max_epochs"}
        assert run.data.tags["optuna.trial_state"] == "COMPLETE"
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert "plots/learning_curve.png" in artifacts

    assert 0.5 < parent.data.metrics["test/accuracy"] <= 1.0
    assert "test/loss" in parent.data.metrics
    evaluation = {a.path for a in client.list_artifacts(parent.info.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/confusion_matrix.csv", "evaluation/misclassified.png"} <= evaluation

    version = outcome["model_version"]
    assert outcome["model_name"] == "redes-mnist-train2000-val1000"  # a slice: never `redes-mnist`
    model = mlflow.pyfunc.load_model(f"models:/redes-mnist-train2000-val1000/{version}")
    best_run = outcome["best_run_id"]
    weights = client.download_artifacts(best_run, "model/network.npz", str(tmp_path))
    network = Network.load(weights)
    split = load_split(outcome["split_path"])
    X = np.asarray(split.X_test[:200])
    np.testing.assert_array_equal(np.asarray(model.predict(X)), network.predict(X))


def test_the_records_say_which_study_they_come_from_and_link_to_each_other(prefect_harness, tracked_env, tmp_path):
    """The registered version's tags and description, Optuna's metric name and run links, Prefect's
    flow-run name and summary: what a person opening each tool sees of one real study."""
    import os

    from prefect.artifacts import Artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName

    from tracking.studies import dashboard_url

    outcome = _study(tmp_path, "records", trials=2, epochs=2)
    server = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
    client = MlflowClient()
    name, version, parent = outcome["model_name"], outcome["model_version"], outcome["parent_run_id"]
    assert name == "redes-mnist-train2000-val1000"
    details = client.get_model_version(name, version)
    assert details.tags["optuna.study"] == "records" and details.tags["parent_run_id"] == parent
    assert details.tags["optuna.trial_number"] == str(outcome["best_trial"])
    assert details.tags["trial_run_id"] == outcome["best_run_id"]
    assert (details.tags["train_size"], details.tags["val_size"], details.tags["test_size"]) == ("2000", "1000", "10000")
    assert details.tags["epochs"] == "2"
    assert "study 'records'" in details.description and "train 2,000 / validation 1,000" in details.description

    study = optuna.load_study(study_name="records", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna-journal.log"))))
    assert study.metric_names == ["val/accuracy"]
    for trial in study.trials:
        run_id = trial.user_attrs["mlflow_run_id"]
        assert trial.user_attrs["mlflow_run_url"] == f"{server}/#/experiments/{outcome['experiment_id']}/runs/{run_id}"

    with get_client(sync_client=True) as prefect:
        runs = prefect.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["mnist-study"])),
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["study-records"])),
        )
    assert len(runs) == 1 and runs[0].state.is_completed()
    summary = Artifact.get("study-records-summary")
    assert summary.flow_run_id == runs[0].id
    text = summary.data
    assert f"]({server}/#/experiments/{outcome['experiment_id']}/runs/{parent})" in text
    assert f"]({dashboard_url(study)})" in text
    assert f"validation accuracy **{100 * outcome['best_value']:.2f} %**" in text
    assert f"**{100 * outcome['test_accuracy']:.2f} %**" in text
    assert f"Registered as `{name}` version {version}" in text and "competes only with studies on the same slice" in text


def test_a_study_continues_where_it_stopped(prefect_harness, tracked_env, tmp_path):
    first = _study(tmp_path, "resume", trials=2, epochs=2)
    second = _study(tmp_path, "resume", trials=2, epochs=2)
    assert second["trials"] == 4
    client = MlflowClient()
    children = _children(client, first["experiment_id"])
    assert [int(r.data.tags["optuna.trial_number"]) for r in children] == [0, 1, 2, 3]
    parents = {r.data.tags["mlflow.parentRunId"] for r in children}
    assert parents == {first["parent_run_id"], second["parent_run_id"]}


def test_a_diverging_trial_is_recorded_and_the_study_goes_on(prefect_harness, tracked_env, tmp_path):
    bad = {"eta": 1e6, "lmbda": 0.01, "dropout": 0.0, "batch_size": 32, "activation": "relu",
           "cost": "log-likelihood", "n_hidden": 1, "hidden_1": 32}
    outcome = _study(tmp_path, "diverge", trials=2, enqueue=[bad], epochs=2)
    assert outcome["states"].get("FAIL") == 1 and outcome["states"].get("COMPLETE") == 1
    client = MlflowClient()
    children = _children(client, outcome["experiment_id"])
    failed = [r for r in children if r.data.tags.get("stop_reason") == "diverged"]
    assert len(failed) == 1 and failed[0].info.status == "FAILED"
    assert "diverged" in failed[0].data.tags.get("fail_reason", "")
    assert all(r.info.status != "RUNNING" for r in children)


def test_two_workers_share_one_study(prefect_harness, tracked_env, tmp_path):
    outcome = _study(tmp_path, "pair", trials=6, workers=2, epochs=2)
    client = MlflowClient()
    children = _children(client, outcome["experiment_id"])
    numbers = [int(r.data.tags["optuna.trial_number"]) for r in children]
    assert sorted(numbers) == list(range(6))
    assert outcome["trials"] == 6
    assert all(r.info.status == "FINISHED" for r in children)
