"""`redes study`: create or continue an Optuna study over η, λ, dropout and hidden sizes."""

from __future__ import annotations

import os
from contextlib import contextmanager
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
    print_warning,
    user_errors,
)


DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


def study(
    name: Annotated[str, typer.Option(help="Study name; the same name again continues the study.")] = "mnist",
    trials: Annotated[int, typer.Option(min=1, help="Trials to add in this invocation.")] = 20,
    timeout: Annotated[Optional[str], typer.Option(help="Stop starting trials after this long: 90s, 10m, 1h.")] = None,
    sampler: Annotated[str, typer.Option(help="tpe (Bayesian) | random | grid | qmc.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="median | hyperband | none.")] = "median",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine (BLAS threads per worker: cores / W, or REDES_BLAS_THREADS).")] = DEFAULT_WORKERS,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage: journal file path or postgresql+psycopg:// URL.")] = None,
    space: Annotated[Optional[str], typer.Option(help="TOML file overriding the search space.")] = None,
    enqueue: Annotated[bool, typer.Option("--enqueue/--no-enqueue", help="Start with known-good parameter sets.")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="Most epochs per trial (default: [fixed] of --space, else 30).")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early-stopping patience per trial (default: [fixed], else 5).")] = None,
    eta_schedule: Annotated[Optional[bool], typer.Option("--eta-schedule/--no-eta-schedule", help="Halve η in each trial when validation stalls (default: [fixed], else off).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the sampler and of every trial (default: [fixed], else 0).")] = None,
    diagnostics: Annotated[bool, typer.Option("--diagnostics/--no-diagnostics", help="Log per-layer gradient norms, weight norms and saturation in every trial (costs up to ~20 % per epoch).")] = False,
    train_size: TrainSizeOption = 50_000,
    val_size: ValSizeOption = 10_000,
    mirror: MirrorOption = None,
    force: Annotated[bool, typer.Option("--force", help="Continue a study on another --train-size/--val-size than its first trials (with a warning).")] = False,
) -> None:
    """Search hyperparameters with Optuna; every trial is a child run in MLflow; the best is tested once."""
    outcome = run_study_command(
        name=name, trials=trials, timeout=timeout, sampler=sampler, pruner=pruner, workers=workers, storage=storage,
        space=space, enqueue=enqueue, epochs=epochs, patience=patience, eta_schedule=eta_schedule, seed=seed, train_size=train_size,
        val_size=val_size, mirror=mirror, diagnostics=diagnostics, force=force,
    )
    print_summary(outcome)


def run_study_command(
    *, name, trials, timeout, sampler, pruner, workers, storage, space, enqueue, epochs, patience, seed,
    train_size, val_size, mirror, eta_schedule=None, main=False, hard_timeout=None, diagnostics=False, force=False,
) -> dict[str, Any]:
    """Validate everything first (exit 2, nothing written), then run the study flow with a progress display."""
    from runtime.settings import Settings

    settings = Settings.from_env()
    storage = storage or settings.study_storage
    with user_errors():
        from mnist.split import SplitSpec
        from tracking import mlflow_store, studies, stores
        from tracking.search_space import FIXED_DEFAULTS, KNOWN_GOOD, check_space, given_options, load_space

        mlflow_store.check_experiment_name(name, settings, "--name")
        check_split_sizes(train_size, val_size)
        timeout_seconds = parse_duration(timeout)
        if sampler not in studies.SAMPLERS:
            raise BadInput(f"--sampler {sampler!r} is unknown; choose one of {', '.join(studies.SAMPLERS)}")
        if pruner not in studies.PRUNERS:
            raise BadInput(f"--pruner {pruner!r} is unknown; choose one of {', '.join(studies.PRUNERS)}")
        hard_timeout_seconds = parse_duration(hard_timeout)
        given = given_options(epochs=epochs, patience=patience, seed=seed, eta_schedule=eta_schedule)
        search_space = load_space(space, given, FIXED_DEFAULTS)
        fixed = search_space.fixed
        check_space(search_space, n_train=train_size, workers=workers, where=space or "options")
        studies.check_storage_url(storage)
        split = asdict(SplitSpec(train_size=train_size, val_size=val_size))
        warning = studies.check_existing_space(name, storage, search_space, split, force)
        if warning:
            print_warning(warning)
        studies.make_sampler(sampler, search_space, fixed["seed"])
        for params in KNOWN_GOOD if enqueue else []:
            from tracking.search_space import config_from_params

            config_from_params(params, search_space).validate(n_train=train_size)
    from flows.signals import stop_on_signals
    from flows.study import run_study
    from tracking import mlflow_store

    with user_errors():
        if mlflow_store.is_embedded(settings.tracking_uri):
            stores.check_free_space(settings.workdir)
        mlflow_store.configure(settings)
    with stop_on_signals(), interrupted_exit(), user_errors(), progress_display(name, storage, trials), storage_in_environment(storage):
        outcome = run_study(
            workers=workers,
            main=main,
            name=name,
            trials=trials,
            timeout_seconds=timeout_seconds,
            hard_timeout_seconds=hard_timeout_seconds,
            sampler=sampler,
            pruner=pruner,
            storage=None,  # read from the environment by the flow and its workers (storage_in_environment)
            space_file=space,
            fixed=fixed,
            enqueue=list(KNOWN_GOOD) if enqueue else [],
            mirrors=mirror,
            train_size=train_size,
            val_size=val_size,
            seed=fixed["seed"],
            diagnostics=diagnostics,
        )
    return {**outcome, "name": name, "storage": storage, "settings": settings}


@contextmanager
def interrupted_exit() -> Iterator[None]:
    """A study stopped by Ctrl-C or SIGTERM: one line, the shell's exit code (130, 143), no traceback."""
    from flows.signals import exit_code, exit_now, received
    from tracking import interruption

    try:
        yield
    except BaseException as exc:
        if not interruption.stop_requested() or isinstance(exc, typer.Exit):
            raise
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
