"""The weekly refresh flow: re-verify the data, re-evaluate the registered champion, or say there is none.

Prefect's harness, a 2,000-image slice of the real MNIST, and the embedded MLflow store
(SQLite in the test's folder, so the registry holds only what the test registered). The
champion is registered the way a study registers one (tracking.champion.register), with a
small network whose test accuracy the test computes itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration

SIZES = {"train_size": 2_000, "val_size": 500}


@pytest.fixture
def embedded_env(monkeypatch, tmp_path, mnist_dir, tmp_path_factory):
    """A working folder with the embedded MLflow store; data from ../shared through the session's cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path_factory.getbasetemp() / "shared-data-cache"))
    monkeypatch.setenv("REDES_MNIST_MIRRORS", str(mnist_dir))
    return tmp_path


def test_refresh_without_a_champion_verifies_the_data_and_succeeds(prefect_harness, embedded_env):
    from flows.refresh import refresh
    from tracking.registry import REFRESH_EXPERIMENT

    outcome = refresh(**SIZES)
    assert outcome["champion"] is None
    assert outcome["split_path"]
    client = MlflowClient(tracking_uri=f"sqlite:///{embedded_env / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(REFRESH_EXPERIMENT)
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_refresh_re_evaluates_the_champion_on_the_test_set(prefect_harness, embedded_env, tmp_path):
    from core.network import Network
    from mnist.split import load_split
    from flows.prepare_data import prepare_data
    from flows.refresh import refresh
    from runtime.settings import Settings
    from tracking import champion, mlflow_store
    from tracking.registry import REFRESH_EXPERIMENT, champion_version

    split = load_split(prepare_data(track=False, **SIZES))
    network = Network([784, 16, 10], activation="relu", cost="log-likelihood", rng=np.random.default_rng(0))
    network.save(tmp_path / "network.npz")
    expected = champion.evaluate(network, split.X_test, split.y_test)

    settings = Settings.from_env()
    client = mlflow_store.configure(settings)
    parent = client.create_run(mlflow_store.experiment_id(client, "refresh-test", settings), run_name="study-refresh-test").info.run_id
    client.log_metric(parent, "test/accuracy", 0.5)
    version, promoted = champion.register(client, parent, tmp_path / "network.npz", val_accuracy=0.25)
    client.set_terminated(parent)
    assert promoted and champion_version(client) == version

    outcome = refresh(**SIZES)
    assert outcome["champion"] == version
    assert outcome["test_accuracy"] == pytest.approx(expected.test_accuracy)
    runs = client.search_runs([client.get_experiment_by_name(REFRESH_EXPERIMENT).experiment_id])
    assert [r.info.run_id for r in runs] == [outcome["run_id"]]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name.startswith(f"refresh-v{version}-")
    assert run.data.tags["kind"] == "refresh" and run.data.tags["model.source_run_id"] == parent
    assert run.data.params["model_version"] == version
    assert run.data.params["model_uri"] == "models:/redes-mnist@champion"
    assert run.data.metrics["test/accuracy"] == pytest.approx(expected.test_accuracy)
    assert run.data.metrics["test/loss"] == pytest.approx(expected.test_loss, rel=1e-5)
    assert run.data.metrics["test/accuracy_at_registration"] == 0.5
    assert run.data.metrics["test/accuracy_change"] == pytest.approx(expected.test_accuracy - 0.5)
    assert run.data.metrics["val/accuracy_at_registration"] == 0.25
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/confusion_matrix.csv"} <= artifacts


def test_a_damaged_split_is_rebuilt_by_the_refresh(prefect_harness, embedded_env, monkeypatch, tmp_path):
    import os
    from pathlib import Path

    from mnist.split import verify_split
    from flows.prepare_data import prepare_data
    from flows.refresh import refresh

    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path / "data"))  # a split of this test's own
    sizes = {"train_size": 1_000, "val_size": 300}
    path = Path(prepare_data(track=False, **sizes))
    target = path / "y_val.npy"
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    assert verify_split(path) != []
    refresh(**sizes)
    assert verify_split(path) == []

