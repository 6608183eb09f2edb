"""`redes study`: create or continue an Optuna study over η, λ, dropout and hidden sizes."""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from typing import Annotated, Any, Iterator, Optional

import typer

from cli.common import (
    BadInput,
    MirrorOption,
    TrainSizeOption,
    ValSizeOption,
    check_split_sizes,
    console,
    err_console,
    is_terminal,
    parse_duration,
    print_error,
    print_warning,
    user_errors,
)
from tracking.study_request import FIXED_DEFAULTS, StudyRequest


DEFAULT_WORKERS = min(2, os.cpu_count() or 1)
DEFAULT = StudyRequest()


def study(
    name: Annotated[str, typer.Option(help="Study name; the same name again continues the study.")] = DEFAULT.name,
    trials: Annotated[int, typer.Option(min=1, help="Trials to add in this invocation.")] = DEFAULT.trials,
    timeout: Annotated[Optional[str], typer.Option(help="Stop starting trials after this long: 90s, 10m, 1h.")] = None,
    sampler: Annotated[str, typer.Option(help="tpe (Bayesian) | random | grid | qmc.")] = DEFAULT.sampler,
    pruner: Annotated[str, typer.Option(help="median | hyperband | none.")] = DEFAULT.pruner,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine (BLAS threads per worker: cores / W, or REDES_BLAS_THREADS).")] = DEFAULT_WORKERS,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage: journal file path or postgresql+psycopg:// URL.")] = None,
    space: Annotated[Optional[str], typer.Option(help="TOML file overriding the search space.")] = None,
    enqueue: Annotated[bool, typer.Option("--enqueue/--no-enqueue", help="Start with known-good parameter sets.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help=f"Most epochs per trial (default: \\[fixed] of --space, else {FIXED_DEFAULTS['epochs']}).")] = None,
    patience: Annotated[Optional[int], typer.Option(help=f"Early-stopping patience per trial (default: \\[fixed], else {FIXED_DEFAULTS['patience']}).")] = None,
    eta_schedule: Annotated[Optional[bool], typer.Option("--eta-schedule/--no-eta-schedule", help=f"Halve η in each trial when validation stalls (default: \\[fixed], else {'on' if FIXED_DEFAULTS['eta_schedule'] else 'off'}).")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Seed of the sampler and of every trial (default: \\[fixed], else {FIXED_DEFAULTS['seed']}).")] = None,
    diagnostics: Annotated[bool, typer.Option("--diagnostics/--no-diagnostics", help="Log per-layer gradient norms, weight norms and saturation in every trial (costs up to ~20 % per epoch).")] = DEFAULT.diagnostics,
    train_size: TrainSizeOption = DEFAULT.train_size,
    val_size: ValSizeOption = DEFAULT.val_size,
    mirror: MirrorOption = None,
    force: Annotated[bool, typer.Option("--force", help="Continue a study on another --train-size/--val-size than its first trials (with a warning).")] = False,
) -> None:
    """Search hyperparameters with Optuna; every trial is a child run in MLflow; the best is tested once."""
    from tracking.study_request import KNOWN_GOOD

    with user_errors():
        timeout_seconds = parse_duration(timeout)
    request = StudyRequest(
        name=name, trials=trials, timeout_seconds=timeout_seconds, sampler=sampler, pruner=pruner, workers=workers,
        space_file=space, epochs=epochs, patience=patience, eta_schedule=eta_schedule, seed=seed,
        enqueue=KNOWN_GOOD if enqueue else (), diagnostics=diagnostics, train_size=train_size, val_size=val_size,
        mirrors=tuple(mirror) if mirror else None,
    )  # fmt: skip
    print_summary(run_study_command(request, storage, force=force))


def run_study_command(request: StudyRequest, storage: str | None, main: bool = False, force: bool = False) -> dict[str, Any]:
    """Validate everything first (exit 2, nothing written), then run the study flow with a progress display."""
    from runtime.settings import Settings

    settings = Settings.from_env()
    storage = storage or settings.study_storage
    with user_errors():
        from mnist.split import SplitSpec
        from tracking import mlflow_store, studies, stores
        from tracking.search_space import check_space, config_from_params

        mlflow_store.check_experiment_name(request.name, settings, "--name")
        check_split_sizes(request.train_size, request.val_size, settings.data_dir)
        if request.sampler not in studies.SAMPLERS:
            raise BadInput(f"--sampler {request.sampler!r} is unknown; choose one of {', '.join(studies.SAMPLERS)}")
        if request.pruner not in studies.PRUNERS:
            raise BadInput(f"--pruner {request.pruner!r} is unknown; choose one of {', '.join(studies.PRUNERS)}")
        search_space = request.space()
        check_space(search_space, n_train=request.train_size, workers=request.workers, where=request.space_file or "options")
        studies.check_storage_url(storage)
        split = asdict(SplitSpec(train_size=request.train_size, val_size=request.val_size))
        warning = studies.check_existing_space(request.name, storage, search_space, split, force)
        if warning:
            print_warning(warning)
        studies.make_sampler(request.sampler, search_space, search_space.fixed["seed"])
        for params in request.warm_start(search_space):
            config_from_params(params, search_space).validate(n_train=request.train_size)
    from flows.signals import stop_on_signals
    from flows.study import run_study
    from tracking import mlflow_store

    with user_errors():
        from flows.prefect_api import check_reachable

        check_reachable()
        embedded = mlflow_store.is_embedded(settings.tracking_uri)
        if embedded:
            stores.check_free_space(settings.workdir)
        mlflow_store.configure(settings)
    progress = progress_display(request.name, storage, request.trials)
    reserve = stores.disk_reserve(settings.workdir) if embedded else nullcontext()  # room to record the end on a full disk
    # the storage travels in the environment, for the flow and the worker processes it starts (storage_in_environment)
    with reserve, stop_on_signals(), interrupted_exit(settings.workdir), user_errors(), progress, storage_in_environment(storage):
        outcome = run_study(request, main=main)
    return {**outcome, "name": request.name, "storage": storage, "settings": settings}


@contextmanager
def interrupted_exit(workdir) -> Iterator[None]:
    """A study stopped by Ctrl-C or SIGTERM: one line, the shell's exit code (130, 143), no traceback.

    Stopped by a full disk (tracking.stores): one error line, exit 1.
    """
    import shutil

    from flows.signals import exit_code, exit_now, received
    from tracking import interruption, stores

    try:
        yield
    except BaseException as exc:
        if not interruption.stop_requested() or isinstance(exc, typer.Exit):
            raise
        stores.release_reserve()  # exit_now skips the clean-up of the context that made it
        if interruption.why() == stores.DISK_FULL:
            free = shutil.disk_usage(workdir).free / 2**20
            print_error(
                f"the disk of {workdir} filled up mid-study ({free:.1f} MiB free now): the study stopped, the trial that "
                f"met it ended FAIL `{stores.DISK_FULL}`, the others FAIL `interrupted` (queued again), the parent run "
                "FAILED; free some space, then run the same command again to continue the study"
            )
            exit_now(1)
        err_console.print(
            f"[bold yellow]{interruption.REASON}[/] ({interruption.why()}): no new trial started; the running ones ended "
            "FAIL `interrupted`, their MLflow runs KILLED, their parameters queued for the next `redes study`"
        )
        exit_now(exit_code() if received() else 1)


@contextmanager
def storage_in_environment(storage: str) -> Iterator[None]:
    """REDES_OPTUNA_STORAGE=STORAGE while the flow runs, for it and the worker processes it starts.

    The storage URL may hold a database password: as a flow parameter it would be stored by
    Prefect's API and shown in its UI, so it travels in the environment instead.
    """
    from runtime.settings import ENV_OPTUNA_STORAGE

    previous = os.environ.get(ENV_OPTUNA_STORAGE)
    os.environ[ENV_OPTUNA_STORAGE] = storage
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_OPTUNA_STORAGE, None)
        else:
            os.environ[ENV_OPTUNA_STORAGE] = previous


def progress_display(name: str, storage: str, trials: int):
    from cli.study_progress import StudyProgress

    return StudyProgress(name, storage, trials, enabled=is_terminal())


def print_summary(outcome: dict[str, Any]) -> None:
    """The best parameters, validation and test accuracy, and where to look next."""
    from rich.markup import escape
    from rich.table import Table

    from runtime.servers import mask_url
    from tracking import mlflow_store

    settings = outcome["settings"]
    table = Table(title=f"study {escape(outcome['name'])}", show_header=False)
    table.add_row("trials", f"{outcome['trials']} ({', '.join(f'{k} {v}' for k, v in outcome['states'].items())})")
    if outcome.get("best_trial") is None:
        table.add_row("best", "no trial completed")
    else:
        table.add_row("best trial", str(outcome["best_trial"]))
        for key, value in outcome["best_params"].items():
            table.add_row(f"  {key}", f"{value:.4g}" if isinstance(value, float) else escape(str(value)))
        table.add_row("validation accuracy", f"{outcome['best_value']:.4f}")
        table.add_row("test accuracy", f"[bold]{outcome['test_accuracy']:.4f}[/]")
        table.add_row("model", f"{outcome['model_name']} version {outcome['model_version']}" + (" (champion)" if outcome["champion"] else ""))
    for reason in outcome.get("fail_reasons") or []:
        table.add_row("[red]failed because[/]", escape(reason))
    table.add_row("seconds", f"{outcome['seconds']:.0f}")
    table.add_row("MLflow", mlflow_store.run_url(settings, outcome["experiment_id"], outcome["parent_run_id"]))
    table.add_row("Optuna", mask_url(outcome["storage"]))
    table.add_row("dashboards", "redes ui")
    console.print(table)
