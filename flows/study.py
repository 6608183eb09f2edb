"""The study flow: data, then W workers optimizing one Optuna study, then one test evaluation.

The flow only sequences tasks; the work is in `tracking` (MLflow, Optuna) and `core`.
Arrays never travel through Prefect: tasks pass the path of the split folder.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact

from flows.defaults import MAIN_JOB
from flows.prepare_data import prepare_data
from flows.signals import stop_on_signals
from flows.study_workers import run_workers
from runtime.environment import apply_offline_defaults
from runtime.settings import Settings
from tracking.interruption import Interrupted
from tracking.study_request import StudyRequest


@task(name="open-study")
def open_study(request: StudyRequest, settings: Settings, storage: str, split_path: str, deadline: float | None = None):
    """Create or continue the study, open its MLflow parent run, enqueue warm-start trials."""
    from tracking import study_opening

    context, orphans = study_opening.open_study(settings, request, storage, split_path, deadline=deadline)
    if orphans:
        get_run_logger().warning(
            "trials %s were RUNNING in a process that died: marked FAIL, their MLflow runs ended KILLED, "
            "their parameters enqueued again", orphans,
        )
    return context


@task(name="run-trials")
def run_trials(context, n_trials: int, timeout: float | None, worker_index: int, blas_threads: int) -> int:
    """One worker: trials of the shared study in this process until its share or the timeout."""
    from tracking.objective import run_worker

    return run_worker(context, n_trials, timeout, worker_index=worker_index, blas_threads=blas_threads)


@task(name="evaluate-champion")
def evaluate_champion(context, settings: Settings) -> dict[str, Any]:
    """The best trial's network, evaluated once on the test set and registered."""
    from mnist.split import load_split
    from tracking import champion, mlflow_store, studies
    from tracking.search_space import config_from_params

    client = mlflow_store.configure(settings)
    study = studies.load(context.study_name, studies.open_storage(context.storage))
    split = load_split(context.split_path)
    summary = studies.summary(study, split=split.manifest["spec"])
    if summary["best_trial"] is None:
        return summary
    best = study.trials[summary["best_trial"]]
    provenance = champion.Provenance(
        study=context.study_name,
        trial=best.number,
        parent_run_id=context.parent_run_id,
        trial_run_id=best.user_attrs["mlflow_run_id"],
        epochs=config_from_params(dict(best.params), context.space).epochs,
        split=split.manifest,
    )
    outcome = champion.evaluate_best_trial(client, provenance, best.value, split)
    with tempfile.TemporaryDirectory(prefix="redes-champion-") as tmp:  # what "expanded data" meant for the champion
        champion.log_expanded_batch(client, context.parent_run_id, config_from_params(dict(best.params), context.space), split.X_train, Path(tmp))
    client.set_tag(context.parent_run_id, "best_trial", str(best.number))
    client.log_metric(context.parent_run_id, "val/best_accuracy", best.value)
    return {**summary, **outcome}


@task(name="publish-summary")
def publish_summary(context, summary: dict[str, Any], settings: Settings) -> None:
    """The trials table and Optuna's pictures on the parent run, and a summary and top trials as Prefect artifacts."""
    from tracking import mlflow_store, studies, study_plots

    client = mlflow_store.configure(settings)
    study = studies.load(context.study_name, studies.open_storage(context.storage))
    frame = studies.trials_table(study)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "trials.csv"
        frame.to_csv(csv, index=False)
        client.log_artifact(context.parent_run_id, str(csv))
        study_plots.log_study_plots(client, context.parent_run_id, study, Path(tmp))
    top = frame[frame["state"] == "COMPLETE"].sort_values(studies.METRIC_NAME, ascending=False).head(10)
    create_table_artifact(
        key=_artifact_key(context.study_name, "top-trials"),
        table=json.loads(studies.rounded(top).to_json(orient="records")),
        description=f"Top trials of study {context.study_name} by validation accuracy",
    )
    mlflow_url = mlflow_store.run_page_url(settings.tracking_uri, context.experiment_id, context.parent_run_id)
    markdown = studies.summary_markdown(summary, context.study_name, mlflow_url, studies.dashboard_url(study))
    create_markdown_artifact(key=_artifact_key(context.study_name, "summary"), markdown=markdown)


def _artifact_key(name: str, what: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    clean = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"study-{clean}-{what}"[:100]


@flow(name="mnist-study", flow_run_name="study-{request.name}")
def mnist_study(request: StudyRequest = StudyRequest(), storage: str | None = None) -> dict[str, Any]:
    """Search the study REQUEST.name for the best network on the validation set; evaluate it once on the test set.

    ``storage`` is best left None: the flow then reads REDES_OPTUNA_STORAGE, and a database
    URL's password is not stored by Prefect as a parameter of the flow run.
    ``request.space_text`` is the text of a search-space file: a deployment's runs execute on worker
    machines, where ``space_file``, a path on the machine that triggered them, does not exist.
    """
    apply_offline_defaults()  # for the MLflow work below; values the host set are kept
    from runtime.servers import mask_url

    logger = get_run_logger()
    if storage and mask_url(storage) != storage:
        logger.warning(
            "the Optuna storage URL, password included, is a parameter of this flow run and is stored by Prefect; "
            "set REDES_OPTUNA_STORAGE in the environment instead"
        )
    from prefect.runtime import deployment

    if deployment.id:  # run by `redes serve` or a worker: no orphan trains on after a `kill -9` of it
        from flows.signals import stop_with_parent

        stop_with_parent()
    settings = Settings.from_env()
    storage = storage or settings.study_storage
    mirrors = list(request.mirrors) if request.mirrors else None
    split_path = prepare_data(mirrors=mirrors, train_size=request.train_size, val_size=request.val_size, track=False)
    deadline = time.time() + request.hard_timeout_seconds if request.hard_timeout_seconds else None
    context = open_study(request, settings, storage, split_path, deadline)
    name, trials, workers = request.name, request.trials, request.workers
    status, stopped = "FAILED", ""
    try:
        blas_threads = settings.threads_per_worker(workers)
        progress = create_progress_artifact(progress=0.0, key=_artifact_key(name, "progress"), description=f"Trials of study {name}")
        with stop_on_signals():  # ours while the workers run, not the SIGTERM handler Prefect keeps around a flow run
            run_workers(
                run_trials, context, trials, request.timeout_seconds, workers, blas_threads,
                on_progress=lambda finished: update_progress_artifact(progress, min(100.0, 100.0 * finished / max(1, trials))),
            )  # fmt: skip
        summary = evaluate_champion(context, settings)
        publish_summary(context, summary, settings)
        status = "FINISHED"
        logger.info("study %s: best validation accuracy %s", name, summary.get("best_value"))
        return {**summary, "parent_run_id": context.parent_run_id, "experiment_id": context.experiment_id, "split_path": split_path}
    except Interrupted as exc:  # a stop asked from outside: the flow run ends Cancelled, without a traceback
        from prefect.states import Cancelled

        from tracking import interruption, stores

        status = "FAILED" if interruption.why() == stores.DISK_FULL else "KILLED"
        stopped = str(exc)
        return Cancelled(message=stopped)
    finally:
        from tracking import mlflow_store

        mlflow_store.configure(settings).set_terminated(context.parent_run_id, status=status)
        if stopped and deployment.id:
            from flows.signals import exit_flow_run_cancelled

            exit_flow_run_cancelled(stopped)


def study_task_runner(workers: int):
    """A process pool of W workers sharing one Prefect API, or one thread when W = 1."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.prefect_api import shared_api_url
    from flows.study_workers import pool_runner, start_fork_server

    if workers > 1:
        shared_api_url()
        start_fork_server()  # loads the workers' modules while the flow prepares the data and opens the study
        return pool_runner(workers)
    return ThreadPoolTaskRunner(max_workers=1)


@flow(name="run", flow_run_name="study-{request.name}")
def main_job(request: StudyRequest = MAIN_JOB, storage: str | None = None) -> dict[str, Any]:
    """The main job of `make run`: the study flow with W workers, sized by its time budget."""
    return mnist_study.with_options(task_runner=study_task_runner(request.workers))(request, storage)


def run_study(request: StudyRequest, main: bool = False) -> dict[str, Any]:
    """Run the study flow (or, with ``main``, the main job around it) with the request's worker processes.

    Prefect's API is started first, by redes, even for one worker: a server it controls, out of
    the terminal's reach and stopped with it (see flows.prefect_api), not one Prefect's client
    would start in the terminal's process group.
    """
    from flows.prefect_api import shared_api_url, without_heartbeats

    started = time.perf_counter()
    shared_api_url()
    with without_heartbeats():
        if main:
            result = main_job(request)
        else:
            result = mnist_study.with_options(task_runner=study_task_runner(request.workers))(request)
    return {**result, "seconds": time.perf_counter() - started}
