"""A champion is only compared with like: `redes-mnist` holds the standard split's networks, every
other slice registers under a name of its own with its own `champion`; each version says in its
tags and description which study, trial, split and budget it came from."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from core.network import Network
from tracking.champion import (
    CHAMPION_ALIAS,
    REGISTERED_MODEL,
    Provenance,
    is_standard_split,
    register,
    registered_model_name,
)


def manifest(train=50_000, val=10_000, test=10_000, seed=None, stratify=False, key="k"):
    """The parts of a split's manifest.json that say which images it holds."""
    return {
        "key": key,
        "sizes": {"train": train, "val": val, "test": test},
        "spec": {"train_size": train, "val_size": val, "seed": seed, "stratify": stratify},
    }


def provenance(split, study="quick", trial=3, parent="parent-run", epochs=5):
    return Provenance(study=study, trial=trial, parent_run_id=parent, trial_run_id="trial-run", epochs=epochs, split=split)


def test_only_the_standard_split_registers_as_redes_mnist():
    assert is_standard_split(manifest())
    assert registered_model_name(manifest()) == REGISTERED_MODEL == "redes-mnist"


@pytest.mark.parametrize(
    "split, name",
    [
        (manifest(train=1_000, val=1_000), "redes-mnist-train1000-val1000"),
        (manifest(train=50_000, val=5_000), "redes-mnist-train50000-val5000"),
        (manifest(seed=7), "redes-mnist-train50000-val10000-seed7"),
        (manifest(train=5_000, val=1_000, stratify=True), "redes-mnist-train5000-val1000-stratified"),
    ],
)
def test_every_other_slice_has_a_name_of_its_own(split, name):
    assert not is_standard_split(split)
    assert registered_model_name(split) == name


def test_a_version_says_where_it_came_from():
    record = provenance(manifest(train=2_000, val=1_000, key="abc123"), study="tutorial-grid", trial=2, epochs=5)
    assert record.tags() == {
        "optuna.study": "tutorial-grid",
        "optuna.trial_number": "2",
        "parent_run_id": "parent-run",
        "trial_run_id": "trial-run",
        "train_size": "2000",
        "val_size": "1000",
        "test_size": "10000",
        "split_key": "abc123",
        "epochs": "5",
    }
    text = record.description()
    assert "'tutorial-grid'" in text and "trial 2" in text and "at most 5 epochs" in text
    assert "train 2,000 / validation 1,000 / test 10,000" in text and "parent-run" in text


def test_the_summary_note_says_why_a_slice_is_not_redes_mnist():
    note = provenance(manifest(train=2_000, val=1_000)).registry_note("4", promoted=True)
    assert note.startswith("Registered as `redes-mnist-train2000-val1000` version 4: now `redes-mnist-train2000-val1000@champion`")
    assert "competes only with studies on the same slice" in note and "`redes-mnist` holds" in note
    standard = provenance(manifest()).registry_note("9", promoted=False)
    assert standard.startswith("Registered as `redes-mnist` version 9: `redes-mnist@champion` stays where it was")
    assert "slice" not in standard


@pytest.fixture
def registry(tmp_path, mlflow_db):
    """A real MLflow store (SQLite and an artifact folder), a parent run and a small network to register."""
    import mlflow

    uri = mlflow_db
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("records", artifact_location=(tmp_path / "artifacts").as_uri())
    weights = tmp_path / "network.npz"
    Network([784, 8, 10], activation="relu", cost="log-likelihood", rng=np.random.default_rng(0)).save(weights)
    yield client, experiment, weights
    mlflow.set_tracking_uri(None)


def test_a_slice_never_moves_the_standard_champion(registry):
    client, experiment, weights = registry

    def register_study(split, val_accuracy, study):
        parent = client.create_run(experiment, run_name=f"study-{study}").info.run_id
        record = provenance(split, study=study, parent=parent)
        return register(client, parent, weights, val_accuracy, record), parent

    (standard, won), standard_parent = register_study(manifest(), 0.90, "mnist")
    assert won
    (tutorial, tutorial_won), tutorial_parent = register_study(manifest(train=1_000, val=1_000), 0.99, "tutorial")
    assert tutorial_won  # the first of its own name
    (quick, quick_won), _ = register_study(manifest(), 0.85, "quick")
    assert not quick_won

    assert str(client.get_model_version_by_alias("redes-mnist", CHAMPION_ALIAS).version) == standard
    slice_champion = client.get_model_version_by_alias("redes-mnist-train1000-val1000", CHAMPION_ALIAS)
    assert str(slice_champion.version) == tutorial
    assert sorted(str(v.version) for v in client.search_model_versions("name = 'redes-mnist'")) == sorted([standard, quick])

    version = client.get_model_version("redes-mnist", standard)
    assert version.tags["optuna.study"] == "mnist" and version.tags["parent_run_id"] == standard_parent
    assert version.tags["train_size"] == "50000" and version.tags["epochs"] == "5"
    assert version.tags["val_accuracy"] == "0.900000" and version.tags["source_run_id"] == standard_parent
    assert "study 'mnist'" in version.description
    assert slice_champion.tags["optuna.study"] == "tutorial" and slice_champion.tags["parent_run_id"] == tutorial_parent
    assert "train 1,000 / validation 1,000" in client.get_registered_model("redes-mnist-train1000-val1000").description


def test_a_version_registered_by_hand_still_goes_to_redes_mnist(registry):
    client, experiment, weights = registry
    run = client.create_run(experiment).info.run_id
    version, won = register(client, run, weights, 0.5)
    assert won and str(client.get_model_version_by_alias("redes-mnist", CHAMPION_ALIAS).version) == version


def test_a_trial_is_registered_once_whatever_the_flow_runs_that_end_with_it(registry):
    """Each worker's flow run of one study evaluates the best trial it sees: the second finds it registered."""
    client, experiment, weights = registry
    outcomes = []
    for flow_run in range(2):
        parent = client.create_run(experiment, run_name=f"study-shared-{flow_run}").info.run_id
        outcomes.append(register(client, parent, weights, 0.9, provenance(manifest(), study="shared", trial=4, parent=parent)))
    assert outcomes == [("1", True), ("1", False)]
    assert [str(v.version) for v in client.search_model_versions("name = 'redes-mnist'")] == ["1"]
    parent = client.create_run(experiment, run_name="study-shared-2").info.run_id
    assert register(client, parent, weights, 0.95, provenance(manifest(), study="shared", trial=7, parent=parent)) == ("2", True)
