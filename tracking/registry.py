"""The registered champion after the fact: load it as people use it, and re-evaluate it on the test set.

A study on the standard split registers its best network as a version of ``redes-mnist``
and moves the alias ``champion`` when it wins (:mod:`tracking.champion`; other slices have
registered models of their own). The weekly refresh loads
``models:/redes-mnist@champion`` through MLflow's pyfunc loader, evaluates it on the
test set of a freshly verified split and records that on a run of the experiment
``redes-refresh``, beside the test accuracy measured when the version was registered.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tracking.champion import CHAMPION_ALIAS, REGISTERED_MODEL, Evaluation, evaluate, log_test_evaluation

REFRESH_EXPERIMENT = "redes-refresh"
CHAMPION_URI = f"models:/{REGISTERED_MODEL}@{CHAMPION_ALIAS}"


@dataclass
class Champion:
    """The model version the alias points at, and the network it serves."""

    version: str
    source_run_id: str | None
    val_accuracy: float | None
    network: Any


def champion_version(client: MlflowClient) -> str | None:
    """The version ``champion`` points at, or None when nothing is registered or no version won yet."""
    found = client.search_registered_models(filter_string=f"name = '{REGISTERED_MODEL}'")
    if not found:
        return None
    version = (found[0].aliases or {}).get(CHAMPION_ALIAS)
    return None if version is None else str(version)


def load_champion(client: MlflowClient) -> Champion | None:
    """The champion loaded through ``models:/redes-mnist@champion``, or None when there is none."""
    version = champion_version(client)
    if version is None:
        return None
    details = client.get_model_version(REGISTERED_MODEL, version)
    model = mlflow.pyfunc.load_model(CHAMPION_URI)
    val = details.tags.get("val_accuracy")
    return Champion(
        version=str(version),
        source_run_id=details.tags.get("source_run_id") or details.run_id,
        val_accuracy=float(val) if val is not None else None,
        network=model.unwrap_python_model().network,
    )


def registered_test_accuracy(client: MlflowClient, run_id: str | None) -> float | None:
    """test/accuracy of the run that registered the version, as measured then."""
    if not run_id:
        return None
    try:
        return client.get_run(run_id).data.metrics.get("test/accuracy")
    except MlflowException:  # the run was deleted since
        return None


def log_refresh(client: MlflowClient, experiment_id: str, champion: Champion, split: Any) -> tuple[str, Evaluation]:
    """Evaluate CHAMPION on SPLIT's test set and record it on a new run; return the run id and the evaluation."""
    evaluation = evaluate(champion.network, split.X_test, split.y_test)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_id = client.create_run(
        experiment_id,
        run_name=f"refresh-v{champion.version}-{stamp}",
        tags={"kind": "refresh", "model.name": REGISTERED_MODEL, "model.alias": CHAMPION_ALIAS},
    ).info.run_id
    try:
        client.log_batch(
            run_id,
            params=[
                Param("model_version", champion.version),
                Param("model_uri", CHAMPION_URI),
                Param("split_key", split.manifest["key"]),
            ],
            tags=[RunTag("model.source_run_id", champion.source_run_id or "")],
        )
        with tempfile.TemporaryDirectory(prefix="redes-refresh-") as tmp:
            log_test_evaluation(client, run_id, evaluation, split, Path(tmp))
        before = registered_test_accuracy(client, champion.source_run_id)
        if before is not None:
            client.log_metric(run_id, "test/accuracy_at_registration", before)
            client.log_metric(run_id, "test/accuracy_change", evaluation.test_accuracy - before)
        if champion.val_accuracy is not None:
            client.log_metric(run_id, "val/accuracy_at_registration", champion.val_accuracy)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id, evaluation
