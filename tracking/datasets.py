"""The MNIST split as MLflow dataset inputs: train, validation and test, each with a digest.

The digest of each part is derived from the SHA-256 of its ``.npy`` files in the split's
manifest, so two runs that used byte-identical data show the same digest in MLflow, and
a run on another split (other options, other bytes) shows another. ``redes data`` logs
them on a run ``prepare-data`` of the experiment ``redes-data``; a study logs the same
inputs on its parent run by calling :func:`log_split_inputs` with that run's id.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import mlflow
from mlflow.entities import DatasetInput, InputTag, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from mnist.split import load_split
from runtime.settings import Settings
from tracking.mlflow_store import is_duplicate_key

DATA_EXPERIMENT = "redes-data"
DATA_RUN_NAME = "prepare-data"
#: MLflow context of each part of the split.
CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


def part_digest(manifest: dict, part: str) -> str:
    """A short digest (MLflow stores at most 36 characters) of one part's features and targets."""
    arrays = manifest["arrays"]
    joined = arrays[f"X_{part}"]["sha256"] + arrays[f"y_{part}"]["sha256"]
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def split_datasets(manifest_or_split_dir: str | Path) -> list[tuple[object, str]]:
    """The three MLflow datasets of a stored split, each with its context."""
    split = load_split(manifest_or_split_dir)
    manifest = split.manifest
    datasets = []
    for part, context in CONTEXTS.items():
        with warnings.catch_warnings():  # MLflow registers the local source twice and warns about it
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_numpy(
                features=getattr(split, f"X_{part}"),
                targets=getattr(split, f"y_{part}"),
                source=str(split.path),
                name=f"mnist-{part}",
                digest=part_digest(manifest, part),
            )
        datasets.append((dataset, context))
    return datasets


def log_split_inputs(manifest_or_split_dir: str | Path, run_id: str | None = None) -> list[str]:
    """Log the split's train/val/test as dataset inputs of RUN_ID (default: the active run); return the digests."""
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise RuntimeError("log_split_inputs needs a run: pass run_id or call it inside mlflow.start_run()")
        run_id = active.info.run_id
    key = Path(manifest_or_split_dir)
    key = key.parent.name if key.name == "manifest.json" else key.name
    inputs = [
        DatasetInput(
            dataset=dataset._to_mlflow_entity(),
            tags=[InputTag(MLFLOW_DATASET_CONTEXT, context), InputTag("redes.split", key)],
        )
        for dataset, context in split_datasets(manifest_or_split_dir)
    ]
    log_inputs_once_inserted(MlflowClient(), run_id, inputs)
    return [i.dataset.digest for i in inputs]


def log_inputs_once_inserted(client: MlflowClient, run_id: str, inputs: list, attempts: int = 3) -> None:
    """Log dataset inputs of RUN_ID, racing other runs that log the same datasets at the same moment.

    MLflow's server looks a dataset up and inserts it if missing; two studies starting together
    on one tracking server both insert, and the second fails on the unique key. The dataset then
    exists, so the next attempt links it.
    """
    for attempt in range(attempts):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as exc:
            if attempt == attempts - 1 or not is_duplicate_key(exc):
                raise


def log_prepare_data_run(split_dir: str | Path, settings: Settings) -> str:
    """Record a stored split on a run ``prepare-data`` in experiment ``redes-data``; return the run id."""
    from tracking.mlflow_store import configure, experiment_id

    client = configure(settings)
    manifest = load_split(split_dir).manifest
    spec = manifest["spec"]
    run = client.create_run(
        experiment_id(client, DATA_EXPERIMENT, settings),
        run_name=DATA_RUN_NAME,
        tags={"redes.split": manifest["key"], "redes.split_path": str(Path(split_dir).resolve())},
    )
    run_id = run.info.run_id
    try:
        client.log_batch(
            run_id,
            params=[Param(name, str(value)) for name, value in {**spec, "split_key": manifest["key"]}.items()],
        )
        log_split_inputs(split_dir, run_id=run_id)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
