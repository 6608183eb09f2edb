"""One training run of core's single loop, tracked in MLflow and, inside a study, reported to Optuna.

`redes train` and every trial of `redes study` go through :func:`train_tracked`, so a run
looks the same in MLflow whichever way it was started.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from core.config import TrainConfig
from core.errors import Diverged
from core.network import Network
from core.training import EpochMetrics, TrainResult, train
from tracking import plots
from tracking.interruption import REASON as INTERRUPTED
from tracking.interruption import Interrupted
from tracking.run_logger import RunLogger

if TYPE_CHECKING:
    import optuna

WEIGHTS_ARTIFACT = "model"
WEIGHTS_FILE = "network.npz"


def _trial_pruned() -> tuple[type[BaseException], ...]:
    """Optuna's TrialPruned once Optuna is loaded (nothing else can raise it), so `redes train` never imports Optuna."""
    optuna = sys.modules.get("optuna")
    return (optuna.TrialPruned,) if optuna is not None else ()


@dataclass
class TrackedResult:
    result: TrainResult
    run_id: str
    tracking_seconds: float


def config_params(config: TrainConfig) -> dict[str, Any]:
    """The training config as MLflow parameters, under the config's own field names."""
    return {k: v for k, v in asdict(config).items()}


def train_tracked(
    logger: RunLogger,
    config: TrainConfig,
    split: Any,
    params: Mapping[str, Any] | None = None,
    trial: optuna.Trial | None = None,
    on_epoch: Callable[[EpochMetrics], str | None] | None = None,
    diagnostics: bool = False,
) -> TrackedResult:
    """Train on ``split`` with ``config``, logging to ``logger``'s run; end the run with a matching status.

    With a ``trial``: each epoch reports validation accuracy and may raise ``TrialPruned``;
    a pruned run ends KILLED, a diverged or failed one FAILED, and the exception goes on
    to Optuna, which records the trial as PRUNED or FAIL.
    """
    tracking_seconds = 0.0
    history: list[EpochMetrics] = []

    def timed(fn, *args, **kwargs):
        nonlocal tracking_seconds
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            tracking_seconds += time.perf_counter() - t0

    def on_epoch_end(metrics: EpochMetrics) -> str | None:
        history.append(metrics)
        timed(logger.log_epoch, metrics)
        asked = on_epoch(metrics) if on_epoch is not None else None
        if trial is not None:
            timed(trial.report, metrics.val_accuracy, metrics.epoch)
            if timed(trial.should_prune):
                import optuna

                raise optuna.TrialPruned(f"pruned at epoch {metrics.epoch} (val/accuracy {metrics.val_accuracy:.4f})")
        return asked

    try:
        timed(logger.log_params, {**config_params(config), **(params or {})})
        network = Network.from_config(config)
        result = train(
            network, split.X_train, split.y_train, split.X_val, split.y_val, config,
            on_epoch_end=on_epoch_end, diagnostics=diagnostics,
        )
    except _trial_pruned():
        _log_interrupted(logger, history, "pruned", "KILLED")
        raise
    except Interrupted:  # Ctrl-C, SIGTERM or a lost parent: stopped from outside, not the trial's fault
        if trial is not None:
            trial.set_user_attr("fail_reason", INTERRUPTED)
        _log_interrupted(logger, history, INTERRUPTED, "KILLED")
        raise
    except Diverged as exc:
        if trial is not None:  # first: ending the run may fail too (tracking server gone)
            trial.set_user_attr("fail_reason", f"diverged: {exc}")
        _log_interrupted(logger, history, "diverged", "FAILED", stopped=getattr(exc, "epoch", len(history)))
        raise
    except BaseException as exc:
        if trial is not None and isinstance(exc, Exception):
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}"[:2000])
        _log_interrupted(logger, history, "failed", "FAILED")
        raise

    t0 = time.perf_counter()
    try:
        logger.log_outcome(
            result.best_epoch,
            result.stopped_epoch,
            result.stop_reason,
            {"val/best_accuracy": result.best_val_accuracy, "train/seconds": result.seconds},
        )
        with tempfile.TemporaryDirectory(prefix="redes-run-") as tmp:
            weights = Path(tmp) / WEIGHTS_FILE
            result.network.save(weights)
            logger.log_artifact(weights, WEIGHTS_ARTIFACT)
            curve = plots.learning_curve(result.history, result.best_epoch, Path(tmp) / "learning_curve.png")
            logger.log_artifact(curve, "plots")
    except BaseException as exc:
        reason = f"artifacts could not be logged: {type(exc).__name__}: {exc}"
        if trial is not None and isinstance(exc, Exception):
            trial.set_user_attr("fail_reason", reason[:2000])  # the trial ends FAIL, never COMPLETE without them
        try:
            logger.set_tags({"stop_reason": "failed", "fail_reason": reason[:5000]})
        finally:
            logger.end("FAILED")
        raise
    tracking_seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    logger.end("FINISHED")
    tracking_seconds += time.perf_counter() - t0
    return TrackedResult(result=result, run_id=logger.run_id, tracking_seconds=tracking_seconds)


def _log_interrupted(logger: RunLogger, history: list[EpochMetrics], reason: str, status: str, stopped: int | None = None) -> None:
    """Record how far an interrupted run got, then end it with ``status``; never mask the original error."""
    try:
        if history:
            best = max(history, key=lambda m: m.val_accuracy)
            logger.log_outcome(best.epoch, stopped or history[-1].epoch, reason, {"val/best_accuracy": best.val_accuracy})
        else:
            logger.set_tags({"stop_reason": reason})
    finally:
        logger.end(status)
