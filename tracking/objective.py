"""The objective of a study, and the loop a worker process runs: trials until its share is done.

A worker may run on another machine than the one that started the study, so
everything it needs travels in a small picklable :class:`StudyContext`: names, URLs
and the path of the split, never arrays.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from typing import Any

import optuna
from mlflow.entities import RunTag
from threadpoolctl import threadpool_limits

from runtime.settings import Settings
from tracking import interruption, mlflow_store, stores, studies
from tracking.orphans import process_identity
from tracking.run_logger import TRIAL_STATE_TAG, RunLogger, writer
from tracking.run_names import DESCRIPTION_TAG, describe
from tracking.search_space import SearchSpace, config_from_params, suggest
from tracking.tracked_training import CurveDrawer, train_tracked

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyContext:
    """What a worker needs to join a study and log its trials."""

    study_name: str
    storage: str
    sampler: str
    pruner: str
    space: SearchSpace
    split_path: str
    experiment_id: str
    parent_run_id: str
    settings: Settings  # the flow's, read once when it started: the workers use the same stores
    seed: int = 0
    deadline: float | None = None  # unix time after which running trials stop, keeping their best epoch
    diagnostics: bool = False  # per-layer gradient norms, weight norms and saturation in every trial's run
    extra_tags: dict[str, str] = field(default_factory=dict)


class Objective:
    """Validation accuracy of one trial's network (the test set is never seen during the search)."""

    def __init__(self, context: StudyContext, client: Any, split: Any, curves: CurveDrawer | None = None) -> None:
        self.context = context
        self.client = client
        self.split = split
        self.curves = curves
        self.tracking_uri = context.settings.tracking_uri
        self.split_spec = json.dumps(split.manifest["spec"], sort_keys=True)  # as the study records its first split
        self._split_differs: bool | None = None
        self.calls = 0  # trials this process started, finished or not
        self.trial: optuna.Trial | None = None  # the latest of them

    def __call__(self, trial: optuna.Trial) -> float:
        self.calls += 1
        self.trial = trial
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except interruption.Interrupted:
            _record_interrupted(trial)
            raise
        except Exception as exc:  # Optuna records FAIL; the reason goes with it, wherever it was raised
            if "fail_reason" not in trial.user_attrs:
                trial.set_user_attr("fail_reason", stores.failure_reason(exc)[:2000])
            raise

    def _run(self, trial: optuna.Trial) -> float:
        ctx = self.context
        for key, value in process_identity().items():
            trial.set_user_attr(key, value)
        params = suggest(trial, ctx.space)
        interruption.check()  # a stop asked while the trial was sampled: no run, parameters queued again
        config = config_from_params(params, ctx.space)
        config.validate(n_train=len(self.split.y_train))
        logger = RunLogger(
            self.client,
            ctx.experiment_id,
            f"trial-{trial.number}",
            parent_run_id=ctx.parent_run_id,
            tags={
                "kind": "trial",
                "optuna.study": ctx.study_name,
                "optuna.trial_number": str(trial.number),
                TRIAL_STATE_TAG: "RUNNING",
                DESCRIPTION_TAG: describe(config),
                "train_size": str(len(self.split.y_train)),
                "val_size": str(len(self.split.y_val)),
                **ctx.extra_tags,
            },
        )
        trial.set_user_attr("mlflow_run_id", logger.run_id)
        if self._records_split(trial):  # a study continued with --force mixes splits
            trial.set_user_attr(studies.SPLIT_ATTR, self.split_spec)
        run_url = mlflow_store.run_page_url(self.tracking_uri, ctx.experiment_id, logger.run_id)
        trial.set_user_attr(studies.RUN_URL_ATTR, run_url)
        tracked = train_tracked(
            logger, config, self.split, params=params, trial=trial, on_epoch=self._on_epoch,
            diagnostics=ctx.diagnostics, curves=self.curves,
            epochs_that_fit=self._epochs_that_fit if ctx.deadline is not None else None,
        )
        trial.set_user_attr("tracking_seconds", round(tracked.tracking_seconds, 3))  # best_epoch, …: train_tracked
        return tracked.result.best_val_accuracy

    def _records_split(self, trial: optuna.Trial) -> bool:
        """Whether a trial names its split: only where it is not the study's first one, which says it for them all
        (a journal append less per trial)."""
        if self._split_differs is None:
            self._split_differs = trial.study.user_attrs.get(studies.SPLIT_ATTR) != self.split_spec
        return self._split_differs

    def _on_epoch(self, metrics) -> None:
        stores.check_reserve()  # another process met a full disk
        interruption.check()

    def _epochs_that_fit(self, history) -> int:
        """The study's time budget, seen by core: the schedule fits the time left, and once no epoch fits the
        trial stops like early stopping does: COMPLETE with its best epoch's weights and accuracy, ``stop_reason``
        ``budget`` (a slow machine still gets a champion from the trials it could not finish)."""
        return epochs_that_fit(history, self.context.deadline - time.time())


def epochs_that_fit(history, seconds_left: float) -> int:
    """The epochs so far and as many more as ``seconds_left`` holds at the recent pace (the median of the last
    five epochs): a trial started late in the budget, or slowed by a busy machine, brings its η down in time."""
    recent = sorted(metrics.seconds for metrics in history[-5:])
    pace = max(recent[len(recent) // 2], 1e-3)
    return len(history) + max(0, int(seconds_left / pace))


def _record_interrupted(trial: optuna.Trial) -> None:
    """A trial stopped from outside: FAIL with the reason `interrupted`, no new trial after it, its parameters queued again."""
    trial.set_user_attr("fail_reason", interruption.REASON)
    trial.set_user_attr("interrupted_by", interruption.why())
    trial.study.stop()
    if trial.params:
        trial.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})


def stop_when_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A study callback: start no new trial once a stop was requested."""
    if interruption.stop_requested():
        study.stop()


class FinalStateTags:
    """A study callback: the trial's final Optuna state (and why it failed) onto its MLflow run, in one call.

    The call is made by the process's tracking thread while the next trial starts; :meth:`wait`
    waits for every one and raises the first that failed.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._pending: list[Future] = []

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if trial.state == optuna.trial.TrialState.COMPLETE and "stop_reason" in trial.user_attrs:
            return  # its outcome, logged with the trial's end (tracked_training), said COMPLETE already
        if run_id:
            tags = [RunTag(TRIAL_STATE_TAG, trial.state.name)]
            if trial.user_attrs.get("fail_reason"):
                tags.append(RunTag("fail_reason", str(trial.user_attrs["fail_reason"])[:5000]))
            self._pending.append(writer().submit(self.client.log_batch, run_id, tags=tags))

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        wait_all(pending)
        for future in pending:
            future.result()


def worker_seed(context: StudyContext, worker_index: int) -> int:
    """The sampler seed of worker ``worker_index``: its own for random draws, the study's for a grid.

    Optuna's GridSampler shuffles the grid with its seed and maps trial number → grid
    point through that shuffle, so workers with different seeds would run some points
    twice and never run others.
    """
    return context.seed if context.sampler == "grid" else context.seed + worker_index


def run_worker(
    context: StudyContext, n_trials: int | None, timeout: float | None, worker_index: int = 0, blas_threads: int = 1
) -> int:
    """Run trials of the study in this process until ``n_trials`` or ``timeout``; return how many ran."""
    from mnist.split import load_split  # the split reader lives with the data flow

    with threadpool_limits(limits=blas_threads), CurveDrawer() as curves:
        client = mlflow_store.configure(context.settings)
        storage = studies.open_storage(context.storage, *studies.heartbeat_settings(context.settings))
        studies.quiet_optuna()
        study = optuna.load_study(
            study_name=context.study_name,
            storage=storage,
            sampler=studies.make_sampler(context.sampler, context.space, seed=worker_seed(context, worker_index)),
            pruner=studies.make_pruner(context.pruner),
        )
        split = load_split(context.split_path)
        before = len(study.get_trials(deepcopy=False))
        if interruption.stop_requested():
            return 0
        objective = Objective(context, client, split, curves)
        final_states = FinalStateTags(client)
        started = time.monotonic()
        while True:
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if (n_trials is not None and objective.calls >= n_trials) or (left is not None and left <= 0):
                break
            try:
                study.optimize(
                    objective,
                    n_trials=None if n_trials is None else n_trials - objective.calls,
                    timeout=left,
                    catch=(Exception,),
                    callbacks=[final_states, stop_when_asked],
                )
                break
            except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as exc:
                told_late = isinstance(exc, optuna.exceptions.UpdateFinishedTrialError) or str(exc).startswith("Cannot tell a")
                if not (told_late and failed_elsewhere(study, objective.trial)):
                    raise
                _end_run_failed_elsewhere(client, study, objective.trial)
                log.warning(
                    "trial %s was failed by another worker while this one could not reach the study's storage "
                    "(its heartbeats stopped); its parameters run again as a new trial, this worker goes on",
                    objective.trial.number,
                )
        final_states.wait()
        return len(study.get_trials(deepcopy=False)) - before


def _end_run_failed_elsewhere(client: Any, study: optuna.Study, trial: optuna.Trial) -> None:
    """The run of a trial failed elsewhere ends KILLED and tagged FAIL, even if this worker finished it meanwhile."""
    run_id = study._storage.get_trial(trial._trial_id).user_attrs.get("mlflow_run_id")
    if run_id:
        client.set_tag(run_id, TRIAL_STATE_TAG, "FAIL")
        client.set_tag(run_id, "fail_reason", studies.STALE_REASON)
        client.set_terminated(run_id, status="KILLED")


def failed_elsewhere(study: optuna.Study, trial: optuna.Trial | None) -> bool:
    """True when TRIAL, still running here, was failed by another process: a worker cut off from the
    storage longer than the heartbeat's grace period comes back to a trial it can no longer tell."""
    if trial is None:
        return False
    return study._storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.FAIL
