"""The ``prepare-data`` flow: download and verify MNIST, store the split, publish its class counts.

Arrays never travel through Prefect: tasks pass folder paths, and the flow returns the
split folder as a string (open it with :func:`mnist.split.load_split`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task, exponential_backoff

from mnist.download import fetch_mnist
from mnist.errors import MirrorsExhausted
from mnist.sources import resolve_mirrors
from mnist.sizes import N_CLASSES, TRAIN_SIZE, VAL_SIZE
from mnist.split import SplitSpec, read_manifest, write_split
from runtime.environment import apply_offline_defaults
from runtime.settings import Settings

CLASS_COUNTS_ARTIFACT = "mnist-class-counts"


def retry_on_transient(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry a download only when a failure was a network hiccup, never on bad bytes."""
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(error, MirrorsExhausted) and error.transient


@task(
    name="download-mnist",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
def download_mnist(mirrors: list[str], raw_dir: str) -> dict[str, str]:
    """Fetch the four MNIST files into the verified cache; return where each one came from."""
    origins = fetch_mnist(mirrors, raw_dir)
    logger = get_run_logger()
    for name, origin in origins.items():
        logger.info("%s: %s", name, "already in the cache" if origin == "cache" else f"downloaded from {origin}")
    return origins


@task(name="split-mnist", cache_policy=NO_CACHE)
def split_mnist(raw_dir: str, splits_dir: str, spec: SplitSpec) -> str:
    """Store the split of SPEC (or find it already stored); return its folder."""
    path = write_split(raw_dir, splits_dir, spec)
    get_run_logger().info("split stored in %s", path)
    return str(path)


@task(name="publish-class-counts", cache_policy=NO_CACHE)
def publish_class_counts(split_dir: str) -> None:
    """Publish the per-class counts of train, validation and test as a Prefect table artifact."""
    manifest = read_manifest(split_dir)
    counts = manifest["class_counts"]
    rows = [{"class": str(c), **{part: counts[part][c] for part in ("train", "val", "test")}} for c in range(N_CLASSES)]
    rows.append({"class": "total", **{part: manifest["sizes"][part] for part in ("train", "val", "test")}})
    create_table_artifact(
        table=rows,
        key=CLASS_COUNTS_ARTIFACT,
        description=f"MNIST split `{manifest['key']}` stored in `{split_dir}`",
    )


@task(name="log-split-to-mlflow", cache_policy=NO_CACHE)
def log_split_to_mlflow(split_dir: str, settings: Settings) -> str:
    """Record the split as MLflow dataset inputs on a run ``prepare-data``; return the run id."""
    from tracking.datasets import log_prepare_data_run

    run_id = log_prepare_data_run(split_dir, settings)
    get_run_logger().info("MLflow run %s logs the split's datasets", run_id)
    return run_id


@flow(name="prepare-data")
def prepare_data(
    mirrors: list[str] | None = None,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    seed: int | None = None,
    stratify: bool = False,
    data_dir: str | None = None,
    track: bool = True,
    download_retries: int = 3,
    retry_delay_seconds: float = 2.0,
) -> str:
    """Download, verify and split MNIST; return the split folder.

    ``mirrors`` replaces REDES_MNIST_MIRRORS and the defaults; ``data_dir`` replaces
    REDES_DATA_DIR. ``track`` logs the split on an MLflow run ``prepare-data``. Transient
    download failures are retried ``download_retries`` times, waiting
    ``retry_delay_seconds`` and doubling.
    """
    apply_offline_defaults()  # for the MLflow work below; values the host set are kept
    settings = Settings.from_env()
    spec = SplitSpec(train_size=train_size, val_size=val_size, seed=seed, stratify=stratify)
    root = Path(data_dir).resolve() if data_dir else settings.data_dir
    chosen = resolve_mirrors(mirrors, settings.mnist_mirrors)
    raw_dir, splits_dir = str(root / "raw"), str(root / "splits")

    download = download_mnist.with_options(
        retries=download_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=retry_delay_seconds)(download_retries),
    )
    download(chosen, raw_dir)
    split_dir = split_mnist(raw_dir, splits_dir, spec)
    publish_class_counts(split_dir)
    if track:
        log_split_to_mlflow(split_dir, settings)
    return split_dir
