"""`redes train`: one tracked training run with the hyperparameters you choose."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from cli.common import (
    MirrorOption,
    TrainSizeOption,
    ValSizeOption,
    check_split_sizes,
    console,
    err_console,
    parse_sizes,
    user_errors,
)
from mnist.sizes import TRAIN_SIZE, VAL_SIZE

#: TrainConfig fields that are not options of `redes train` (float64 is for the gradient checks).
NOT_OPTIONS = ("dtype",)


def train(
    sizes: Annotated[str, typer.Option(help="Layer sizes, input first: 784,100,10.")] = "784,100,10",
    activation: Annotated[str, typer.Option(help="Hidden activation, or one per hidden layer: relu,tanh.")] = "sigmoid",
    cost: Annotated[str, typer.Option(help="cross-entropy | quadratic | log-likelihood (softmax output).")] = "cross-entropy",
    eta: Annotated[float, typer.Option(help="Learning rate η.")] = 0.5,
    lmbda: Annotated[float, typer.Option(help="L2 regularisation λ.")] = 5.0,
    dropout: Annotated[float, typer.Option(help="Dropout probability on hidden layers, in [0, 1).")] = 0.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Mini-batch size.")] = 10,
    epochs: Annotated[int, typer.Option(help="Most epochs to train.")] = 30,
    patience: Annotated[Optional[int], typer.Option(help="Stop after this many epochs without a better validation accuracy.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling and dropout.")] = 0,
    eta_schedule: Annotated[bool, typer.Option("--eta-schedule/--no-eta-schedule", help="Halve η each time validation stalls for `patience` epochs.")] = False,
    init: Annotated[str, typer.Option(help="Weight initialisation: scaled N(0,1/n_in) or large N(0,1).")] = "scaled",
    output_encoding: Annotated[str, typer.Option("--output-encoding", help="onehot: 10 outputs, one per digit | binary: 4 sigmoid outputs, the digit's bits (--sizes ending in 4).")] = "onehot",
    diagnostics: Annotated[bool, typer.Option("--diagnostics/--no-diagnostics", help="Log per-layer gradient norms, weight norms and saturation each epoch.")] = True,
    momentum: Annotated[float, typer.Option(help="Momentum μ in [0, 1): v ← μ·v − η·∇C, w ← w + v; 0 is plain SGD.")] = 0.0,
    nesterov: Annotated[bool, typer.Option("--nesterov/--no-nesterov", help="Nesterov's momentum: the gradient at the look-ahead point (needs --momentum > 0).")] = False,
    max_norm: Annotated[float, typer.Option("--max-norm", help="After each step, rescale each unit's incoming weights to norm ≤ this; 0 = off (3 to 4 in Srivastava 2014).")] = 0.0,
    schedule: Annotated[str, typer.Option(help="η over the epochs: constant | step | cosine | onecycle.")] = "constant",
    shift: Annotated[float, typer.Option(help="Expanded data: random shift of each training image, up to ± this many pixels; 0 = off.")] = 0.0,
    rotate: Annotated[float, typer.Option(help="Expanded data: random rotation, up to ± this many degrees; 0 = off.")] = 0.0,
    scale: Annotated[float, typer.Option(help="Expanded data: random zoom by a factor in [1 − scale, 1 + scale]; 0 = off.")] = 0.0,
    shear: Annotated[float, typer.Option(help="Expanded data: random shear, up to ± this many degrees; 0 = off.")] = 0.0,
    elastic_alpha: Annotated[float, typer.Option("--elastic-alpha", help="Expanded data: elastic distortion strength α in pixels (Simard 2003: 34); 0 = off.")] = 0.0,
    elastic_sigma: Annotated[float, typer.Option("--elastic-sigma", help="Width σ in pixels of the Gaussian smoothing the elastic field (Simard 2003: 4).")] = 4.0,
    train_size: TrainSizeOption = TRAIN_SIZE,
    val_size: ValSizeOption = VAL_SIZE,
    mirror: MirrorOption = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment of the run.")] = "redes-train",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Train one network on MNIST, tracked in MLflow, and evaluate it on the test set."""
    options = dict(locals())  # every TrainConfig field but NOT_OPTIONS is an option of the same name
    from dataclasses import fields

    from core.config import ENCODING_NAMES, TrainConfig, check_choice
    from runtime.settings import Settings
    from tracking.search_space import check_network_fits

    with user_errors():
        settings = Settings.from_env()
        check_choice("output_encoding", output_encoding, ENCODING_NAMES)
        given = {f.name: options[f.name] for f in fields(TrainConfig) if f.name not in NOT_OPTIONS}
        config = TrainConfig(**{**given, "sizes": parse_sizes(sizes, output_encoding)})
        config.validate(n_train=train_size)
        check_split_sizes(train_size, val_size, settings.data_dir)
        check_network_fits(config.sizes, config.batch_size, config.dtype, 1, "--sizes", "use smaller hidden layers")
    from flows import prefect_api
    from flows.progress import epoch_progress
    from flows.train_once import config_dict, train_once
    from tracking import mlflow_store

    with user_errors():
        mlflow_store.check_experiment_name(experiment, settings, "--experiment")
        prefect_api.check_reachable()
        mlflow_store.configure(settings)
    with epoch_progress(config.epochs, err_console, live=err_console.is_terminal), prefect_api.without_heartbeats():
        outcome = train_once(
            config=config_dict(config), diagnostics=diagnostics, mirrors=mirror, train_size=train_size, val_size=val_size, experiment=experiment
        )
    summary = {k: outcome[k] for k in ("val_accuracy", "train_accuracy", "test_accuracy", "best_epoch", "stopped_epoch", "stop_reason", "seconds", "mlflow_run_id")}
    if as_json:
        print(json.dumps(summary))
    else:
        console.print(
            f"validation accuracy [bold]{summary['val_accuracy']:.4f}[/], training {summary['train_accuracy']:.4f} "
            f"(best epoch {summary['best_epoch']}, "
            f"stopped at {summary['stopped_epoch']}: {summary['stop_reason']}), test accuracy "
            f"[bold]{summary['test_accuracy']:.4f}[/], {summary['seconds']:.1f} s, MLflow run {summary['mlflow_run_id']}"
        )
