"""What a study records for people: Optuna names its metric and links each trial to its MLflow run,
optuna-dashboard's page of the study, and a Prefect summary with links and rounded numbers."""

from __future__ import annotations

import json
import wsgiref.util
from types import SimpleNamespace

import numpy as np
import optuna
from mlflow.tracking import MlflowClient
from optuna.storages.journal import JournalFileBackend, JournalStorage

from runtime.settings import Settings
from tracking import studies
from tracking.mlflow_store import run_page_url, ui_base_url
from tracking.objective import Objective, StudyContext, epochs_that_fit
from tracking.search_space import FloatRange, SearchSpace

SPACE = SearchSpace(
    dimensions={"eta": FloatRange(0.05, 0.5, log=True)},
    fixed={
        "epochs": 1, "lmbda": 1.0, "dropout": 0.0, "n_hidden": 1, "hidden_1": 8, "batch_size": 16, "activation": "relu",
        "cost": "log-likelihood",
    },  # fmt: skip
)


def test_a_new_study_names_its_metric():
    study = studies.create_or_load("new", optuna.storages.InMemoryStorage(), SPACE)
    assert study.metric_names == ["val/accuracy"]


def test_an_older_study_without_the_name_gets_it_when_continued():
    storage = optuna.storages.InMemoryStorage()
    old = optuna.create_study(study_name="old", storage=storage, direction="maximize")
    old.tell(old.ask(), 0.5)
    assert old.metric_names is None
    study = studies.create_or_load("old", storage, SPACE)
    assert study.metric_names == ["val/accuracy"] and len(study.trials) == 1


def test_the_trials_table_names_the_objective_by_its_metric():
    study = studies.create_or_load("table", optuna.storages.InMemoryStorage(), SPACE)
    study.tell(study.ask(), 0.91)
    frame = studies.trials_table(study)
    assert "val/accuracy" in frame.columns and not any(c.startswith("value") for c in frame.columns)
    assert frame["val/accuracy"].tolist() == [0.91]


def test_run_pages_of_a_server_and_of_the_local_store():
    assert run_page_url("http://mlflow.example:5000/", "3", "abc") == "http://mlflow.example:5000/#/experiments/3/runs/abc"
    assert ui_base_url("https://alice:s3cret@mlflow.example/team/") == "https://mlflow.example/team"
    assert run_page_url("sqlite:////work/mlflow.db", "1", "r1") == "http://127.0.0.1:5000/#/experiments/1/runs/r1"


def tiny_split(n_train=48, n_val=16):
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        X_train=rng.random((n_train, 784), dtype=np.float32), y_train=rng.integers(0, 10, n_train),
        X_val=rng.random((n_val, 784), dtype=np.float32), y_val=rng.integers(0, 10, n_val),
        manifest={"spec": {"train_size": n_train, "val_size": n_val, "seed": None, "stratify": False}},
    )  # fmt: skip


def test_each_trial_links_to_its_mlflow_run(tmp_path, mlflow_db):
    client = MlflowClient(mlflow_db)
    experiment = client.create_experiment("links", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment).info.run_id
    study = studies.create_or_load("links", optuna.storages.InMemoryStorage(), SPACE, sampler="random", pruner="none")
    for uri, base in [
        (mlflow_db, "http://127.0.0.1:5000"),  # what `redes ui` serves
        ("http://bob:pw@tracking.example:5000", "http://tracking.example:5000"),  # the server, no password
    ]:
        context = StudyContext(
            study_name="links", storage="memory", sampler="random", pruner="none", space=SPACE, split_path="",
            experiment_id=experiment, parent_run_id=parent,
            settings=Settings.from_env({"MLFLOW_TRACKING_URI": uri}, workdir=tmp_path),
        )  # fmt: skip
        study.optimize(Objective(context, client, tiny_split()), n_trials=1)
        trial = study.trials[-1]
        assert trial.state == optuna.trial.TrialState.COMPLETE
        run_id = trial.user_attrs["mlflow_run_id"]
        assert trial.user_attrs["mlflow_run_url"] == f"{base}/#/experiments/{experiment}/runs/{run_id}"


def dashboard_get(storage, path: str) -> dict:
    """GET PATH from optuna-dashboard's own WSGI app on STORAGE, in this process."""
    from optuna_dashboard import wsgi

    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(wsgi(storage)(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)


def test_the_dashboard_link_opens_this_study(tmp_path):
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    studies.create_or_load("first", storage, SPACE)
    study = studies.create_or_load("second", storage, SPACE)
    url = studies.dashboard_url(study)
    assert url.startswith("http://127.0.0.1:8080/dashboard/studies/")
    study_id = int(url.rsplit("/", 1)[1])
    listed = {s["study_id"]: s["study_name"] for s in dashboard_get(storage, "/api/studies")["study_summaries"]}
    assert listed[study_id] == "second"
    assert dashboard_get(storage, f"/api/studies/{study_id}")["objective_names"] == ["val/accuracy"]  # not "Objective 0"


SUMMARY = {
    "trials": 4,
    "states": {"COMPLETE": 3, "PRUNED": 1},
    "best_trial": 2,
    "best_value": 0.986549,
    "best_params": {"eta": 0.123456789, "lmbda": 5.0, "batch_size": 32, "activation": "relu"},
    "best_run_url": "http://127.0.0.1:5000/#/experiments/1/runs/best",
    "best_seconds": 12.3456,
    "test_accuracy": 0.98123,
    "registry_note": "Registered as `redes-mnist` version 7: now `redes-mnist@champion`.",
}


def test_the_summary_links_to_mlflow_and_the_dashboard_and_rounds_its_numbers():
    text = studies.summary_markdown(
        SUMMARY, "quick", "http://127.0.0.1:5000/#/experiments/1/runs/parent", "http://127.0.0.1:8080/dashboard/studies/3"
    )
    assert "[MLflow: this study's run](http://127.0.0.1:5000/#/experiments/1/runs/parent)" in text
    assert "[optuna-dashboard](http://127.0.0.1:8080/dashboard/studies/3)" in text
    assert "([MLflow run](http://127.0.0.1:5000/#/experiments/1/runs/best))" in text
    assert "validation accuracy **98.65 %**" in text and "trained in 12.3 s" in text
    assert "evaluated once): **98.12 %**" in text
    assert "| eta | 0.1235 |" in text and "| lmbda | 5.0 |" in text and "| batch_size | 32 |" in text
    assert "Registered as `redes-mnist` version 7" in text
    assert "0.986549" not in text and "0.123456789" not in text


def test_a_study_without_a_complete_trial_says_so():
    text = studies.summary_markdown({"trials": 2, "states": {"FAIL": 2}, "best_trial": None}, "bad")
    assert "No trial completed." in text and "Trials: 2 (FAIL 2)" in text


def test_the_top_trials_table_is_rounded():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "number": [0, 1],
            "val/accuracy": [0.912345, 0.8],
            "params_eta": [0.0123456, 1.0],
            "params_hidden_2": [512.0, float("nan")],
            "duration": [12.345, 3.0],
            "user_attrs_seconds": [11.96, 2.04],
            "state": ["COMPLETE", "COMPLETE"],
        }
    )
    rows = json.loads(studies.rounded(frame).to_json(orient="records"))
    assert rows[0] == {
        "number": 0, "val/accuracy": 0.9123, "params_eta": 0.01235, "params_hidden_2": 512.0, "duration": 12.3,
        "user_attrs_seconds": 12.0, "state": "COMPLETE",
    }  # fmt: skip
    assert rows[1]["params_hidden_2"] is None


def test_a_trial_running_when_the_budget_is_spent_completes_with_its_best_epoch(tmp_path, mlflow_db):
    client = MlflowClient(mlflow_db)
    experiment = client.create_experiment("budget", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment).info.run_id
    space = SearchSpace(SPACE.dimensions, {**SPACE.fixed, "epochs": 5, "patience": 5})
    study = studies.create_or_load("budget", optuna.storages.InMemoryStorage(), space, sampler="random", pruner="none")
    context = StudyContext(
        study_name="budget", storage="memory", sampler="random", pruner="none", space=space, split_path="",
        experiment_id=experiment, parent_run_id=parent,
        settings=Settings.from_env({"MLFLOW_TRACKING_URI": mlflow_db}, workdir=tmp_path),
        deadline=0.0,  # long past: the first epoch is the last
    )  # fmt: skip
    study.optimize(Objective(context, client, tiny_split()), n_trials=1)
    trial = study.trials[-1]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["stop_reason"] == "budget" and trial.user_attrs["stopped_epoch"] == 1
    run = client.get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["stop_reason"] == "budget"


def test_the_epochs_that_fit_follow_the_recent_pace():
    epochs = [SimpleNamespace(seconds=s) for s in (30.0, 2.0, 2.0, 2.0, 9.0, 2.5)]
    assert epochs_that_fit(epochs, 11.0) == 6 + 5  # the last five epochs' median is 2 s: a slow one does not count
    assert epochs_that_fit(epochs[:4], 11.0) == 4 + 5  # nor a slow first one
    assert epochs_that_fit(epochs, -3.0) == 6  # the budget is spent: no more


def test_each_trial_records_its_split_and_the_champion_comes_from_the_current_one(tmp_path, mlflow_db):
    """A study continued with --force on other sizes: the best trial of the first split (the higher accuracy,
    on more images) is not registered under the new split's name; each trial run says what it trained on."""
    client = MlflowClient(mlflow_db)
    experiment = client.create_experiment("splits", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment).info.run_id
    first, second = tiny_split(48, 16), tiny_split(32, 16)
    study = studies.create_or_load(
        "splits", optuna.storages.InMemoryStorage(), SPACE, sampler="random", pruner="none", split=first.manifest["spec"]
    )
    context = StudyContext(
        study_name="splits", storage="memory", sampler="random", pruner="none", space=SPACE, split_path="",
        experiment_id=experiment, parent_run_id=parent,
        settings=Settings.from_env({"MLFLOW_TRACKING_URI": mlflow_db}, workdir=tmp_path),
    )  # fmt: skip
    study.optimize(Objective(context, client, first), n_trials=1)
    study.optimize(Objective(context, client, second), n_trials=1)
    a, b = study.trials
    assert studies.SPLIT_ATTR not in a.user_attrs  # the study's first split says it
    assert studies.trial_split(a, study) == first.manifest["spec"]
    assert json.loads(b.user_attrs[studies.SPLIT_ATTR]) == second.manifest["spec"]
    tags = client.get_run(b.user_attrs["mlflow_run_id"]).data.tags
    assert (tags["train_size"], tags["val_size"]) == ("32", "16")
    assert tags["optuna.trial_state"] == "COMPLETE"  # said with the outcome, without a callback's call after it
    study.add_trial(optuna.trial.create_trial(
        params=a.params, distributions=a.distributions, value=2.0,  # the best of all, on the first split
        user_attrs={**a.user_attrs},
    ))  # fmt: skip
    assert studies.summary(study)["best_trial"] == 2
    assert studies.summary(study, split=second.manifest["spec"])["best_trial"] == 1
    assert studies.summary(study, split=first.manifest["spec"])["best_trial"] == 2
