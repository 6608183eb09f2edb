"""One training run of core's single loop, tracked in MLflow and, inside a study, reported to Optuna.

`redes train` and every trial of `redes study` go through :func:`train_tracked`, so a run
looks the same in MLflow whichever way it was started. A study's worker hands the learning
curves to a :class:`CurveDrawer`, which draws them while the next trial runs.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from core.config import TrainConfig
from core.errors import Diverged
from core.network import Network
from core.training import EpochMetrics, TrainResult, train
from tracking import stores
from tracking.interruption import REASON as INTERRUPTED
from tracking.interruption import Interrupted
from tracking.run_logger import TRIAL_STATE_TAG, RunLogger

if TYPE_CHECKING:
    import optuna

WEIGHTS_ARTIFACT = "model"
WEIGHTS_FILE = "network.npz"
CURVE_ARTIFACT = "plots"
CURVE_FILE = "learning_curve.png"
CURVE_ERROR_TAG = "learning_curve_error"

log = logging.getLogger(__name__)


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
    curves: CurveDrawer | None = None,
    epochs_that_fit: Callable[[list[EpochMetrics]], int] | None = None,
) -> TrackedResult:
    """Train on ``split`` with ``config``, logging to ``logger``'s run; end the run with a matching status.

    With a ``trial``: each epoch reports validation accuracy and may raise ``TrialPruned``;
    a pruned run ends KILLED, a diverged or failed one FAILED, and the exception goes on
    to Optuna, which records the trial as PRUNED or FAIL. With ``curves``, the learning curve
    is drawn and logged by that drawer after the run has ended; else here, before it ends.
    ``epochs_that_fit`` fits the η schedule into a time budget (:func:`core.training.train`).
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
            on_epoch_end=on_epoch_end, diagnostics=diagnostics, epochs_that_fit=epochs_that_fit,
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
        reason = stores.failure_reason(exc)  # first: a full disk frees its reserve for what follows
        if trial is not None and isinstance(exc, Exception):
            trial.set_user_attr("fail_reason", reason[:2000])
        _log_interrupted(logger, history, "failed", "FAILED")
        raise

    t0 = time.perf_counter()
    try:
        logger.log_outcome(
            result.best_epoch,
            result.stopped_epoch,
            result.stop_reason,
            {"val/best_accuracy": result.best_val_accuracy, "train/seconds": result.seconds},
            # a trial that gets here ends COMPLETE: said now, in this call, not in one more after Optuna's
            # (objective.FinalStateTags corrects it in the rare case it does not)
            {TRIAL_STATE_TAG: "COMPLETE"} if trial is not None else None,
        )
        with tempfile.TemporaryDirectory(prefix="redes-run-") as tmp:
            weights = Path(tmp) / WEIGHTS_FILE
            result.network.save(weights)
            logger.log_artifact(weights, WEIGHTS_ARTIFACT)  # these calls are made in the background meanwhile
            if curves is None:
                from tracking import plots  # matplotlib: loaded once a picture is drawn, not before the first epoch

                curve = plots.learning_curve(result.history, result.best_epoch, Path(tmp) / CURVE_FILE)
                logger.log_artifact(curve, CURVE_ARTIFACT)
            if trial is not None:  # Optuna's writes while MLflow's are made
                for key in ("best_epoch", "stopped_epoch", "stop_reason"):
                    trial.set_user_attr(key, getattr(result, key))
                trial.set_user_attr("seconds", round(result.seconds, 3))
            logger.flush()  # every call of the run made (a failed one raised), before the folder goes
    except BaseException as exc:
        reason = stores.failure_reason(exc)
        try:
            if trial is not None and isinstance(exc, Exception):
                trial.set_user_attr("fail_reason", reason[:2000])  # the trial ends FAIL, never COMPLETE without them
        finally:
            try:
                logger.set_tags({"stop_reason": "failed", "fail_reason": reason[:5000]})
            finally:
                logger.end("FAILED")
        raise
    tracking_seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    logger.end("FINISHED")
    if curves is not None:
        curves.submit(logger.client, logger.run_id, result.history, result.best_epoch)
    tracking_seconds += time.perf_counter() - t0
    return TrackedResult(result=result, run_id=logger.run_id, tracking_seconds=tracking_seconds)


class CurveDrawer:
    """Learning curves drawn and logged, one after another, on a background thread of a study's worker.

    Drawing a curve costs more than two epochs of a small network (about 0.15 s of CPU, most of it
    laying out text), and a trial is otherwise mostly waiting on its stores; drawn here, the curve
    of one trial overlaps the next trial's calls. In the study's own process (one worker), the
    thread hands the drawing to a painter process (:mod:`tracking.curve_painter`) on the other
    core, so the next trial's training does not wait for the interpreter's lock; a pool's worker,
    one per core already, draws on its thread. Leaving the ``with`` block waits for every curve.
    A curve that could not be drawn or logged is tagged on its run (``learning_curve_error``) and
    warned about: its trial, whose weights and metrics are recorded, stays COMPLETE.
    """

    def __init__(self, painter: bool | None = None) -> None:
        import multiprocessing
        import os

        if painter is None:  # this process runs the study's trials itself, and a core is free for the painter
            painter = multiprocessing.parent_process() is None and (os.cpu_count() or 1) > 1
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redes-curves")
        self._painter = None
        if painter:
            from tracking.curve_painter import Painter

            self._painter = Painter()

    def submit(self, client: Any, run_id: str, history: list[EpochMetrics], best_epoch: int | None) -> None:
        self._thread.submit(self._draw, client, run_id, list(history), best_epoch)

    def _draw(self, client: Any, run_id: str, history: list[EpochMetrics], best_epoch: int | None) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="redes-curve-") as tmp:
                curve = self._paint(history, best_epoch, Path(tmp) / CURVE_FILE)
                client.log_artifact(run_id, str(curve), CURVE_ARTIFACT)
        except Exception as exc:  # noqa: BLE001 - a missing picture must not stop the study
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("the learning curve of MLflow run %s could not be drawn or logged: %s", run_id, reason)
            try:
                client.set_tag(run_id, CURVE_ERROR_TAG, reason[:5000])
            except Exception as tag_exc:  # noqa: BLE001
                log.warning("nor could run %s be tagged %s: %s", run_id, CURVE_ERROR_TAG, tag_exc)

    def _paint(self, history: list[EpochMetrics], best_epoch: int | None, path: Path) -> Path:
        """The curve's PNG at PATH: by the painter when there is one, else here (also when the painter is gone)."""
        if self._painter is not None:
            from tracking.curve_painter import PainterGone

            try:
                return self._painter.draw(history, best_epoch, path)
            except PainterGone as exc:
                log.warning("%s; the curves are drawn in the study's process from now on", exc)
                self._painter.close(timeout=1.0)
                self._painter = None
        from tracking import plots  # on this thread, while the next trial runs

        return plots.learning_curve(history, best_epoch, path)

    def __enter__(self) -> CurveDrawer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._thread.shutdown(wait=True)
        if self._painter is not None:
            self._painter.close()


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
