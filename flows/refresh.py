"""The ``refresh`` flow (weekly): re-verify MNIST and its split, then re-evaluate the registered champion.

``prepare_data`` checks the cached files against their SHA-256 (fetching any that went
missing or bad); the split's arrays are then checked against their manifest. The model
that ``models:/redes-mnist@champion`` points at is loaded as people load it and
evaluated on the test set, on a run of the experiment ``redes-refresh``. With no
champion yet (no study has finished), the flow says so and succeeds.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.prepare_data import prepare_data
from mnist.sizes import TRAIN_SIZE, VAL_SIZE
from runtime.environment import apply_offline_defaults
from runtime.settings import Settings


class DamagedSplit(RuntimeError):
    """A stored split's files no longer match its manifest."""


@task(name="verify-split", cache_policy=NO_CACHE)
def verify_stored_split(split_path: str) -> None:
    """Every array of the split still has the SHA-256 its manifest recorded."""
    from mnist.split import verify_split

    bad = verify_split(split_path)
    if bad:
        raise DamagedSplit(
            f"the split in {split_path} is damaged ({', '.join(bad)} changed since it was written); "
            "delete that folder and run `redes data` to write it again"
        )
    get_run_logger().info("split %s verified", split_path)


@task(name="evaluate-registered-champion", cache_policy=NO_CACHE)
def evaluate_registered_champion(split_path: str, settings: Settings) -> dict[str, Any]:
    """The champion evaluated on the test set and logged in ``redes-refresh``; ``champion: None`` without one."""
    from mnist.split import load_split
    from tracking import mlflow_store, registry

    logger = get_run_logger()
    client = mlflow_store.configure(settings)
    champion = registry.load_champion(client)
    if champion is None:
        logger.info("no champion yet: %s has no version with the alias to re-evaluate", registry.CHAMPION_URI)
        return {"champion": None}
    split = load_split(split_path)
    experiment_id = mlflow_store.experiment_id(client, registry.REFRESH_EXPERIMENT, settings)
    run_id, evaluation = registry.log_refresh(client, experiment_id, champion, split)
    logger.info(
        "champion version %s: test accuracy %.4f (run %s in %s)",
        champion.version, evaluation.test_accuracy, run_id, registry.REFRESH_EXPERIMENT,
    )  # fmt: skip
    return {
        "champion": champion.version,
        "test_accuracy": evaluation.test_accuracy,
        "test_loss": evaluation.test_loss,
        "run_id": run_id,
        "experiment_id": experiment_id,
    }


@flow(name="refresh")
def refresh(mirrors: list[str] | None = None, train_size: int = TRAIN_SIZE, val_size: int = VAL_SIZE) -> dict[str, Any]:
    """Re-verify MNIST and its split, then re-evaluate the registered champion on the test set."""
    apply_offline_defaults()  # for the MLflow work below; values the host set are kept
    settings = Settings.from_env()
    split_path = prepare_data(mirrors=mirrors, train_size=train_size, val_size=val_size)
    verify_stored_split(split_path)
    return {**evaluate_registered_champion(split_path, settings), "split_path": split_path}
