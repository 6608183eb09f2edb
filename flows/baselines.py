"""The ``baselines`` flow: the seed's comparison methods, each one MLflow run beside the networks.

Random guessing, average darkness, the perceptron one-vs-rest, the 784-10 softmax
network and the SVM, all trained on the training part of the split and scored on its
validation and test parts. Each task loads the split from its folder (arrays never
travel through Prefect), fits one method with BLAS pinned to ``blas_threads`` and logs
one run tagged ``kind=baseline`` (see :mod:`tracking.baselines`).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.prepare_data import prepare_data
from mnist.sizes import TRAIN_SIZE, VAL_SIZE
from runtime.environment import apply_offline_defaults
from runtime.settings import Settings

RANDOM = "random"
DARKNESS = "average-darkness"
PERCEPTRON = "perceptron-ovr"
SOFTMAX = "softmax-784-10"
SVM = "svm-rbf"
BASELINE_EXPERIMENT = "baselines"
#: The seed's test accuracy of each method it reports, for the summary table.
SEED_ACCURACY = {RANDOM: 0.10, DARKNESS: 0.2225, SVM: 0.9435}
#: The 784-10 softmax network: log-likelihood cost, η = 0.05 (0.5 oscillates without a
#: hidden layer), the seed's λ = 5.0 and mini-batch 10, early stopping after 10 epochs.
SOFTMAX_CONFIG = {"sizes": (784, 10), "cost": "log-likelihood", "eta": 0.05, "lmbda": 5.0, "batch_size": 10, "patience": 10}


def _open(split_path: str, experiment: str, settings: Settings):
    from mnist.split import load_split
    from tracking import mlflow_store

    client = mlflow_store.configure(settings)
    return client, mlflow_store.experiment_id(client, experiment, settings), load_split(split_path)


@task(name="random-guess", cache_policy=NO_CACHE)
def random_guess(split_path: str, experiment: str, settings: Settings, seed: int) -> dict[str, Any]:
    """Guess every digit uniformly at random with a fixed seed."""
    from core.baselines import RandomGuess
    from tracking.baselines import fit_tracked

    client, experiment_id, split = _open(split_path, experiment, settings)
    return fit_tracked(client, experiment_id, RANDOM, RandomGuess(seed=seed), split, {"seed": seed}).as_dict()


@task(name="average-darkness", cache_policy=NO_CACHE)
def average_darkness(split_path: str, experiment: str, settings: Settings) -> dict[str, Any]:
    """The digit whose mean training darkness (sum of pixels) is nearest the image's."""
    from core.baselines import AverageDarkness
    from tracking.baselines import fit_tracked

    client, experiment_id, split = _open(split_path, experiment, settings)
    averages = lambda model: {f"darkness/{d}": v for d, v in enumerate(model.averages)}  # noqa: E731
    return fit_tracked(client, experiment_id, DARKNESS, AverageDarkness(), split, extra_metrics=averages).as_dict()


@task(name="perceptron-ovr", cache_policy=NO_CACHE)
def perceptron_ovr(split_path: str, experiment: str, settings: Settings, epochs: int, blas_threads: int, progress: bool) -> dict[str, Any]:
    """Ten perceptrons of core, one per digit, the classic rule; the weights of the best validation epoch."""
    from threadpoolctl import threadpool_limits

    from core.baselines import OneVsRestPerceptron
    from flows.progress import spinner
    from tracking.baselines import fit_tracked

    client, experiment_id, split = _open(split_path, experiment, settings)
    model = OneVsRestPerceptron(epochs=epochs)
    with threadpool_limits(limits=blas_threads), spinner(f"perceptron one-vs-rest: {epochs} epochs", progress):
        result = fit_tracked(
            client, experiment_id, PERCEPTRON, model, split,
            params={"epochs": epochs, "eta": model.eta, "init": "zeros", "order": "file"},
            fit_kwargs={"X_val": split.X_val, "y_val": split.y_val},
            extra_metrics=lambda m: {"best_epoch": m.best_epoch, "epochs_run": len(m.errors)},
            epoch_metrics=lambda m: [
                {"epoch/val_accuracy": v, "epoch/train_errors": e} for v, e in zip(m.val_accuracy, m.errors)
            ],
        )
    return result.as_dict()


@task(name="softmax-network", cache_policy=NO_CACHE)
def softmax_network(split_path: str, experiment: str, settings: Settings, epochs: int, seed: int, blas_threads: int, progress: bool) -> dict[str, Any]:
    """The 784-10 softmax network of core (no hidden layer), tracked like any network run, then tested once."""
    import tempfile
    import time
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    from core.config import TrainConfig
    from flows.progress import spinner
    from tracking import champion
    from tracking.baselines import BaselineResult, baseline_logger, split_params
    from tracking.tracked_training import train_tracked

    client, experiment_id, split = _open(split_path, experiment, settings)
    config = TrainConfig(**SOFTMAX_CONFIG, epochs=epochs, seed=seed)
    logger = baseline_logger(client, experiment_id, SOFTMAX, split)
    started, cpu_started = time.perf_counter(), time.process_time()
    with threadpool_limits(limits=blas_threads), spinner(f"784-10 softmax network: up to {epochs} epochs", progress):
        tracked = train_tracked(logger, config, split, params={"baseline": SOFTMAX, **split_params(split)})
        evaluation = champion.evaluate(tracked.result.network, split.X_test, split.y_test)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    with tempfile.TemporaryDirectory(prefix="redes-baseline-") as tmp:
        champion.log_test_evaluation(client, logger.run_id, evaluation, split, Path(tmp))
    logger.log_metrics({"seconds": seconds, "cpu_seconds": cpu_seconds})
    result = BaselineResult(
        SOFTMAX, tracked.result.best_val_accuracy, evaluation.test_accuracy, seconds, cpu_seconds, logger.run_id
    )
    return result.as_dict()


@task(name="svm-rbf", cache_policy=NO_CACHE)
def svm_rbf(split_path: str, experiment: str, settings: Settings, blas_threads: int, progress: bool) -> dict[str, Any]:
    """scikit-learn's SVC (RBF kernel, gamma="auto", C=1.0) on the whole training part; minutes."""
    from threadpoolctl import threadpool_limits

    from flows.svm import SVMBaseline
    from tracking.baselines import fit_tracked

    client, experiment_id, split = _open(split_path, experiment, settings)
    model = SVMBaseline(progress=progress)
    with threadpool_limits(limits=blas_threads):
        result = fit_tracked(
            client, experiment_id, SVM, model, split, params=model.params,
            extra_metrics=lambda m: {"n_support": m.n_support},
        )
    return result.as_dict()


@flow(name="baselines")
def baselines(
    svm: bool = True,
    experiment: str = BASELINE_EXPERIMENT,
    mirrors: list[str] | None = None,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    seed: int = 0,
    epochs: int = 30,
    perceptron_epochs: int = 10,
    blas_threads: int = 1,
    progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """Prepare the split, then fit and score every baseline (the SVM last, unless ``svm`` is off).

    Returns, for each method's name, its ``val_accuracy``, ``test_accuracy``, ``seconds``
    and MLflow ``run_id``.
    """
    apply_offline_defaults()  # for the MLflow work below; values the host set are kept
    settings = Settings.from_env()
    split_path = prepare_data(mirrors=mirrors, train_size=train_size, val_size=val_size, track=False)
    results = {
        RANDOM: random_guess(split_path, experiment, settings, seed),
        DARKNESS: average_darkness(split_path, experiment, settings),
        PERCEPTRON: perceptron_ovr(split_path, experiment, settings, perceptron_epochs, blas_threads, progress),
        SOFTMAX: softmax_network(split_path, experiment, settings, epochs, seed, blas_threads, progress),
    }
    if svm:
        results[SVM] = svm_rbf(split_path, experiment, settings, blas_threads, progress)
    return results
