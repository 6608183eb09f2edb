"""`redes baselines`: the seed's comparison methods as MLflow runs beside the networks."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.common import (
    MirrorOption,
    TrainSizeOption,
    ValSizeOption,
    check_split_sizes,
    console,
    is_terminal,
    user_errors,
)
from mnist.sizes import TRAIN_SIZE, VAL_SIZE


def baselines(
    svm: Annotated[bool, typer.Option("--svm/--no-svm", help="Fit the SVM too (minutes on 50,000 images).")] = True,
    experiment: Annotated[str, typer.Option(help="MLflow experiment of the runs, e.g. a study's name.")] = "baselines",
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs of the 784-10 softmax network.")] = 30,
    perceptron_epochs: Annotated[int, typer.Option("--perceptron-epochs", min=1, help="Epochs of the perceptrons.")] = 10,
    seed: Annotated[int, typer.Option(min=0, help="Seed of random guessing and of the softmax network.")] = 0,
    threads: Annotated[int, typer.Option(min=1, help="BLAS threads.")] = 1,
    train_size: TrainSizeOption = TRAIN_SIZE,
    val_size: ValSizeOption = VAL_SIZE,
    mirror: MirrorOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Random guessing, average darkness, perceptrons, a 784-10 softmax network and an SVM, each an MLflow run."""
    from flows import prefect_api
    from flows.baselines import baselines as baselines_flow
    from runtime.settings import Settings
    from tracking import mlflow_store

    with user_errors():
        settings = Settings.from_env()
        check_split_sizes(train_size, val_size, settings.data_dir)
        mlflow_store.check_experiment_name(experiment, settings, "--experiment")
        prefect_api.check_reachable()
        mlflow_store.configure(settings)
    results = baselines_flow(
        svm=svm, experiment=experiment, mirrors=mirror, train_size=train_size, val_size=val_size, seed=seed,
        epochs=epochs, perceptron_epochs=perceptron_epochs, blas_threads=threads, progress=is_terminal() and not as_json,
    )
    if as_json:
        print(json.dumps(results))
    else:
        print_table(results, experiment)


def print_table(results: dict[str, dict], experiment: str) -> None:
    from rich.table import Table

    from flows.baselines import SEED_ACCURACY

    table = Table(title=f"baselines (MLflow experiment {experiment!r}, runs tagged kind=baseline)")
    for column in ("method", "seed's test", "validation", "test", "seconds", "CPU seconds"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, result in results.items():
        seed = SEED_ACCURACY.get(name)
        table.add_row(
            name,
            f"{seed:.2%}" if seed is not None else "–",
            f"{result['val_accuracy']:.2%}",
            f"[bold]{result['test_accuracy']:.2%}[/]",
            f"{result['seconds']:.1f}",
            f"{result['cpu_seconds']:.1f}",
        )
    console.print(table)
