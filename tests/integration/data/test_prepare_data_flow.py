"""The ``prepare-data`` Prefect flow and ``redes data``, run for real in Prefect's test harness."""

from __future__ import annotations

import gzip
import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from typer.testing import CliRunner

from cli.main import app
from mnist.checksums import TRAIN_IMAGES, TRAIN_LABELS
from mnist.errors import MirrorsExhausted
from mnist.split import load_split
from flows.prepare_data import CLASS_COUNTS_ARTIFACT, prepare_data
from tracking.datasets import DATA_EXPERIMENT, DATA_RUN_NAME, log_split_inputs, part_digest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="session")
def tracking_db(tmp_path_factory):
    """One MLflow SQLite store for the module: creating its tables takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def tracking_uri(tracking_db, tmp_path, monkeypatch):
    uri = tracking_db
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


def test_flow_downloads_splits_publishes_and_tracks(server, tmp_path, tracking_uri):
    from prefect.artifacts import Artifact

    data_dir = tmp_path / "data"
    result = prepare_data(mirrors=[server.url("good")], data_dir=str(data_dir), retry_delay_seconds=0)
    assert isinstance(result, str)
    split = load_split(result)
    assert split.path.parent == data_dir / "splits"
    assert split.y_train.shape == (50_000,) and split.y_train[0] == 5

    artifact = Artifact.get(CLASS_COUNTS_ARTIFACT)
    rows = json.loads(artifact.data)
    assert [row["class"] for row in rows] == [str(c) for c in range(10)] + ["total"]
    assert rows[-1] == {"class": "total", "train": 50_000, "val": 10_000, "test": 10_000}
    assert rows[1]["test"] == 1135

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(DATA_EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id], f"tags.`redes.split_path` = '{split.path}'")
    assert run.info.run_name == DATA_RUN_NAME and run.info.status == "FINISHED"
    assert run.data.params["train_size"] == "50000" and run.data.params["seed"] == "None"
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"mnist-train", "mnist-val", "mnist-test"}
    assert inputs["mnist-train"].dataset.digest == part_digest(split.manifest, "train")
    contexts = {name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for name, i in inputs.items()}
    assert contexts == {"mnist-train": "training", "mnist-val": "validation", "mnist-test": "testing"}

    requests = len(server.requests)
    again = prepare_data(mirrors=[server.url("good")], data_dir=str(data_dir), track=False)
    assert again == result
    assert len(server.requests) == requests, "a second run makes no network request"


def test_dropped_connection_is_retried_then_succeeds(server, tmp_path):
    path = f"/good/{TRAIN_IMAGES.name}.gz"
    server.faults[path] = ["drop"]
    result = prepare_data(
        mirrors=[server.url("good")], data_dir=str(tmp_path / "data"), track=False, train_size=1_000, val_size=500,
        retry_delay_seconds=0,
    )  # fmt: skip
    assert server.counts()[path] == 2
    assert load_split(result).y_train.shape == (1_000,)
    assert not list((tmp_path / "data" / "raw").glob(".*"))


def test_server_error_is_retried_with_backoff(server, tmp_path):
    path = f"/good/{TRAIN_LABELS.name}.gz"
    server.faults[path] = ["503", "500"]
    prepare_data(
        mirrors=[server.url("good")], data_dir=str(tmp_path / "data"), track=False, train_size=1_000, val_size=500,
        download_retries=2, retry_delay_seconds=0.1,
    )  # fmt: skip
    assert server.counts()[path] == 3


def test_checksum_error_is_never_retried(server, make_mirror, tmp_path):
    def flip(raw: bytes):
        data = bytearray(raw)
        data[-1] ^= 0x01
        return f"{TRAIN_LABELS.name}.gz", gzip.compress(bytes(data))

    make_mirror("flipped", TRAIN_LABELS.name, flip)
    with pytest.raises(MirrorsExhausted, match="SHA-256"):
        prepare_data(
            mirrors=[server.url("flipped")], data_dir=str(tmp_path / "data"), track=False, download_retries=3,
            retry_delay_seconds=0,
        )  # fmt: skip
    assert server.counts()[f"/flipped/{TRAIN_LABELS.name}.gz"] == 1


def test_log_split_inputs_inside_an_active_run(server, tmp_path, tracking_uri):
    """How a study uses it: on its own parent run, active in this process or named by id."""
    result = prepare_data(
        mirrors=[server.url("good")], data_dir=str(tmp_path / "data"), track=False, train_size=1_000, val_size=500
    )
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(f"parent-study-{tmp_path.name}")
    # no set_experiment and no lasting set_tracking_uri: both would leak into later tests
    with _use_tracking_uri(tracking_uri):
        with mlflow.start_run(experiment_id=experiment_id) as parent:
            digests = log_split_inputs(result)
        from_manifest = log_split_inputs(f"{result}/manifest.json", run_id=parent.info.run_id)
    assert digests == from_manifest and len(set(digests)) == 3
    run = client.get_run(parent.info.run_id)
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == set(digests)
    with pytest.raises(RuntimeError, match="needs a run"):
        log_split_inputs(result)


def test_redes_data_prints_the_split_and_where_it_is_cached(mnist_dir, tmp_path, tracking_uri):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["data", "--mirror", str(mnist_dir), "--train-size", "1000", "--val-size", "500", "--seed", "1", "--stratify"],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the table title may wrap on a narrow terminal
    assert "total │ 1,000 │ 500 │ 10,000" in text
    assert f"split cached in {tmp_path / 'data' / 'splits'}" in text
    assert "seed 1" in text and "stratified" in text
    assert "redes-data" in text


def test_redes_data_reports_every_failed_mirror(tmp_path, closed_port, tracking_uri):
    result = CliRunner().invoke(
        app, ["data", "--mirror", f"http://127.0.0.1:{closed_port}/", "--mirror", str(tmp_path / "nothing")]
    )
    assert result.exit_code == 1
    assert "1. http://127.0.0.1:" in result.output and "2. " in result.output and "unreachable" in result.output


def test_redes_data_refuses_an_unknown_mirror_kind(tracking_uri):
    result = CliRunner().invoke(app, ["data", "--mirror", "ftp://example.org/mnist"])
    assert result.exit_code == 2
    assert "unknown mirror kind" in result.output
