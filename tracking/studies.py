"""Optuna studies: the storage behind them, the sampler and pruner by name, create-or-continue.

On one machine the default storage is a journal file: Optuna's own answer for several
processes on one machine (SQLite is not), readable by optuna-dashboard while the study
runs. A PostgreSQL URL switches to the shared database that many machines can use, with
heartbeats so a killed worker's trial is failed and retried with the same parameters.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalStorage

from runtime.servers import LOOPBACK, OPTUNA_DASHBOARD_PORT
from runtime.settings import RDB_SCHEMES, Settings
from tracking import stores
from tracking.journal_file import WholeLineJournalFile
from tracking.search_space import SearchSpace

SAMPLERS = ("tpe", "random", "grid", "qmc")
PRUNERS = ("median", "hyperband", "none")
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
#: Seconds PostgreSQL keeps a live session idle inside a transaction (holding its locks) at the least: the backstop for a
#: hung worker, far above the pauses of a worker slowed down by a loaded machine.
IDLE_IN_TRANSACTION_MIN = 60
SPACE_ATTR = "redes_space"
SPLIT_ATTR = "redes_split"  # the split of the study's first trials: {"train_size": …, "val_size": …, "seed": …, "stratify": …}
#: What a trial's value is (the best epoch's validation accuracy); optuna-dashboard shows it instead of "Objective 0".
METRIC_NAME = "val/accuracy"
#: The trial's user attribute that links it to its MLflow run (optuna-dashboard shows it beside the trial).
RUN_URL_ATTR = "mlflow_run_url"
#: Why a trial failed by Optuna's heartbeat failed; Optuna fails it before anyone can set its ``fail_reason``.
STALE_REASON = "its worker stopped sending heartbeats (killed, hung or cut off from the storage)"
log = logging.getLogger(__name__)


class StudyError(ValueError):
    """A study cannot be opened as asked; the message says why and what to do."""


def quiet_optuna() -> None:
    """Keep Optuna's per-trial log lines and failed trials' tracebacks out of the terminal.

    redes shows its own progress, and a failed trial's reason is kept as its ``fail_reason``
    (on the trial and its MLflow run) and printed in the study's summary.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def check_storage_url(url: str) -> None:
    """Refuse an unsupported storage URL before any work."""
    if "://" in url and url.split("://", 1)[0] not in RDB_SCHEMES:
        raise StudyError(
            f"unsupported storage URL scheme {url.split('://', 1)[0]!r}; use postgresql+psycopg://USER@HOST/DB for a "
            "shared database, or a file path (e.g. optuna-journal.log) for a journal on this machine"
        )
    if "://" not in url and Path(url).is_dir():
        raise StudyError(f"the Optuna storage {url} is a folder; give a journal file, e.g. {Path(url) / 'optuna-journal.log'}")


def is_journal(url: str) -> bool:
    """A journal file path (no heartbeats: see :func:`tracking.orphans.fail_orphaned_trials`), not a database URL."""
    return "://" not in url


def heartbeat_settings(settings: Settings) -> tuple[int, int]:
    """(heartbeat_interval, grace_period) in seconds: REDES_OPTUNA_HEARTBEAT="10,30" or the defaults."""
    text = settings.optuna_heartbeat  # checked by Settings: a bad value is a SettingsError
    if not text:
        return HEARTBEAT_INTERVAL, GRACE_PERIOD
    interval, grace = (int(part) for part in text.split(","))
    return interval, grace


class StaleTrialCallback:
    """Optuna's retry of a trial whose heartbeat stopped, plus ending that trial's MLflow run KILLED."""

    def __init__(self, max_retry: int = 2) -> None:
        self.retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.retry(study, trial)
        try:
            from mlflow.tracking import MlflowClient

            from tracking.orphans import end_orphaned_run

            # the store of this worker process, which mlflow_store.configure set before optimize() could call this
            end_orphaned_run(MlflowClient(), trial, STALE_REASON)
        except Exception as exc:  # the trial is failed and retried either way; say why the run was not ended
            log.warning("trial %s: could not end its MLflow run: %s", trial.number, exc)


def open_storage(url: str, heartbeat_interval: int | None = None, grace_period: int | None = None):
    """Open a storage from a database URL or a journal file path.

    A database gets heartbeats (the workers pass :func:`heartbeat_settings`, default 10,30
    seconds): a trial whose worker stops beating is failed by the next ``optimize()`` of any
    worker, retried with the same parameters, and its MLflow run ended KILLED.
    """
    check_storage_url(url)
    heartbeat_interval = heartbeat_interval or HEARTBEAT_INTERVAL
    grace_period = grace_period or GRACE_PERIOD
    scheme = url.split("://", 1)[0] if "://" in url else None
    if scheme is None:
        path = Path(url)
        with stores.creation_lock(path.parent):
            return JournalStorage(WholeLineJournalFile(str(path)))
    if scheme == "postgresql":
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    sqlite_file = Path(url.split("sqlite:///", 1)[1]) if url.startswith("sqlite:///") else None
    with stores.creation_lock(sqlite_file.parent) if sqlite_file else stores.schema_lock(url):
        return RDBStorage(
            url,
            engine_kwargs=postgres_engine_kwargs(grace_period) if url.startswith("postgresql") else None,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=StaleTrialCallback(max_retry=2),
        )


def postgres_engine_kwargs(grace_period: int) -> dict[str, Any]:
    """Let PostgreSQL drop a vanished worker's session, and the row locks it holds, within about the grace period.

    Optuna locks the study row to create a trial and a trial row to fail it. A worker cut off
    inside such a transaction kept its lock until TCP gave up (~15 min), and every other worker
    waited on it instead of failing the cut worker's trial by its heartbeat (issue #17). The
    server's TCP keepalives (a vanished machine answers no probe) end such a session in about
    two thirds of the grace period, however busy a live worker is; ``tcp_user_timeout`` does it when a
    reply was never acknowledged; ``idle_in_transaction_session_timeout`` is the backstop for
    a live but hung worker. They go with each session (``options``), so any server gets them.
    The worker's own keepalives let it notice a vanished server, and ``pool_pre_ping``
    replaces a pooled connection the server dropped. Optuna's transactions last milliseconds
    to seconds: none is held idle across a training epoch.
    """
    probe = max(1, grace_period // 6)  # idle + 3 unanswered probes = 4 probe periods: about 2/3 of the grace period
    server = {
        "tcp_keepalives_idle": probe,
        "tcp_keepalives_interval": probe,
        "tcp_keepalives_count": 3,
        "tcp_user_timeout": grace_period * 1000,  # milliseconds
        "idle_in_transaction_session_timeout": f"{max(2 * grace_period, IDLE_IN_TRANSACTION_MIN)}s",
    }
    options = " ".join(f"-c {name}={value}" for name, value in server.items())
    keepalives = {"keepalives": 1, "keepalives_idle": probe, "keepalives_interval": probe, "keepalives_count": 3}
    return {"pool_pre_ping": True, "connect_args": {"options": options, **keepalives}}


def make_sampler(name: str, space: SearchSpace, seed: int | None = None) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    if name == "grid":
        if not space.grid:
            raise StudyError("the grid sampler needs a [grid] table in the --space file, e.g. eta = [0.1, 0.5]")
        return optuna.samplers.GridSampler(space.grid, seed=seed)
    raise StudyError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise StudyError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


def create_or_load(
    name: str, storage: Any, space: SearchSpace, sampler: str = "tpe", pruner: str = "median", seed: int | None = None,
    split: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create the study NAME, or continue it; refuse to continue it with a different search space.

    SPLIT (the data split's spec) is recorded on a new study; the command checked a continued one's before any work.
    """
    quiet_optuna()
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(sampler, space, seed),
        pruner=make_pruner(pruner),
        direction="maximize",
        load_if_exists=True,
    )
    described = json.dumps(space.describe(), sort_keys=True)
    stored = study.user_attrs.get(SPACE_ATTR)
    if stored is None:
        study.set_user_attr(SPACE_ATTR, described)
    elif stored != described:
        raise StudyError(
            f"study {name!r} already exists with a different search space; continue it with the same --space "
            f"and options, or start a new study with another --name"
        )
    if split is not None and SPLIT_ATTR not in study.user_attrs:
        study.set_user_attr(SPLIT_ATTR, json.dumps(split, sort_keys=True))
    if study.metric_names != [METRIC_NAME]:  # a new study, or one created before redes named its metric
        with warnings.catch_warnings():  # "experimental since 3.2": a notice for Optuna's users, not ours
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAME])
    return study


def describe_split(spec: dict[str, Any]) -> str:
    return f"--train-size {spec.get('train_size')} --val-size {spec.get('val_size')}" + (
        f" (seed {spec['seed']}{', stratified' if spec.get('stratify') else ''})" if spec.get("seed") is not None else ""
    )


def check_split(name: str, stored: str | None, split: dict[str, Any] | None, force: bool) -> str | None:
    """A study continued on another split than its first trials' is refused, or with FORCE a warning (returned)."""
    if stored is None or split is None or json.loads(stored) == split:
        return None
    message = (
        f"study {name!r} was run on {describe_split(json.loads(stored))}, not {describe_split(split)}: its trials' "
        "validation accuracies would not be comparable"
    )
    if not force:
        raise StudyError(f"{message}; use the same sizes, another --name, or --force to continue it anyway")
    return message


def check_existing_space(
    name: str, url: str, space: SearchSpace, split: dict[str, Any] | None = None, force: bool = False
) -> str | None:
    """Before any work: refuse a study NAME that already exists in URL with another search space,
    or on another split unless FORCE (then the warning is returned).

    Writes nothing: a journal file that does not exist yet is not created, and a database's
    tables are not created either (a database without them holds no study).
    """
    check_storage_url(url)
    if "://" not in url:
        if not Path(url).is_file():
            return
        stores.check_journal(Path(url))
        storage = JournalStorage(WholeLineJournalFile(str(url)))
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            storage = RDBStorage(url, skip_table_creation=True, skip_compatibility_check=True)
        except Exception:  # no tables or no server yet: the flow reports a server it cannot reach
            return
    try:
        study_id = storage.get_study_id_from_name(name)
        attrs = storage.get_study_user_attrs(study_id)
        stored, stored_split = attrs.get(SPACE_ATTR), attrs.get(SPLIT_ATTR)
    except Exception:  # KeyError: no such study; anything else is reported later by the flow itself
        return None
    finally:
        if isinstance(storage, RDBStorage):
            storage.remove_session()
            storage.engine.dispose()
    if stored is not None and stored != json.dumps(space.describe(), sort_keys=True):
        raise StudyError(
            f"study {name!r} already exists in {url.split('@')[-1]} with a different search space; continue it with "
            f"the same --space and options, or start a new study with another --name"
        )
    return check_split(name, stored_split, split, force)


def load(name: str, storage: Any, sampler: str = "tpe", pruner: str = "median") -> optuna.Study:
    """Load an existing study in a worker process (the space was checked by whoever created it)."""
    quiet_optuna()
    return optuna.load_study(study_name=name, storage=storage, pruner=make_pruner(pruner))



FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def trial_split(trial: optuna.trial.FrozenTrial, study: optuna.Study, first: str | None = None) -> dict[str, Any] | None:
    """The split TRIAL trained on: its own record, else the study's first split (FIRST, if already read)."""
    stored = trial.user_attrs.get(SPLIT_ATTR) or first or study.user_attrs.get(SPLIT_ATTR)
    return json.loads(stored) if stored else None


def summary(study: optuna.Study, split: dict[str, Any] | None = None) -> dict[str, Any]:
    """Counts by state and the best COMPLETE trial (number, value, params, training seconds, MLflow run).

    With SPLIT, the best among the trials trained on it: a study continued with `--force` on another split
    holds validation accuracies of other sizes, and its champion is registered under this split's name.
    """
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: 0 for state in optuna.trial.TrialState}
    for trial in trials:
        counts[trial.state.name] += 1
    first = study.user_attrs.get(SPLIT_ATTR) if split is not None else None  # one storage read, not one per trial
    complete = [
        t for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and "mlflow_run_id" in t.user_attrs
        and (split is None or trial_split(t, study, first) in (None, split))
    ]  # fmt: skip
    best = max(complete, key=lambda t: t.value) if complete else None
    return {
        "trials": len(trials),
        "states": {k: v for k, v in counts.items() if v},
        "best_trial": best.number if best else None,
        "best_value": best.value if best else None,
        "best_params": dict(best.params) if best else {},
        "best_run_id": best.user_attrs.get("mlflow_run_id") if best else None,
        "best_run_url": best.user_attrs.get(RUN_URL_ATTR) if best else None,
        "best_seconds": best.user_attrs.get("seconds") if best else None,
        "fail_reasons": sorted({reason[:300] for t in trials if (reason := fail_reason(t, trials))})[:3],
    }


def fail_reason(trial: optuna.trial.FrozenTrial, trials: list[optuna.trial.FrozenTrial]) -> str | None:
    """Why TRIAL failed: its ``fail_reason``, or, for a trial the heartbeat failed (no attribute can be set on it
    then), the stale heartbeat and the trial that retried it (Optuna's ``failed_trial`` on the retry)."""
    if "fail_reason" in trial.user_attrs:
        return str(trial.user_attrs["fail_reason"])
    retries = [t.number for t in trials if t.system_attrs.get("failed_trial") == trial.number]
    if trial.state == optuna.trial.TrialState.FAIL and retries:
        return f"{STALE_REASON}; retried as trial {retries[0]}"
    return None


def dashboard_url(study: optuna.Study) -> str:
    """The study's page in optuna-dashboard as `redes ui` serves it (on this machine, its default port)."""
    study_id = study._storage.get_study_id_from_name(study.study_name)
    return f"http://{LOOPBACK}:{OPTUNA_DASHBOARD_PORT}/dashboard/studies/{study_id}"


def trials_table(study: optuna.Study):
    """Optuna's trials table (pandas), with durations in seconds and the MLflow run of each trial.

    The objective's column is named by its metric (``val/accuracy``), whatever Optuna calls it.
    """
    frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs", "duration"))
    frame = frame.rename(columns={"value": METRIC_NAME, f"value_{METRIC_NAME}": METRIC_NAME})
    if "duration" in frame:
        frame["duration"] = frame["duration"].dt.total_seconds()
    return frame


def rounded(frame):
    """The trials table as people read it: accuracies to 4 decimals, seconds to 0.1, other numbers to 4 significant digits."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype.kind != "f":
            continue
        if "accuracy" in column:
            frame[column] = frame[column].round(4)
        elif "seconds" in column or column == "duration":
            frame[column] = frame[column].round(1)
        else:
            frame[column] = frame[column].map(significant)
    return frame


def significant(value: Any, digits: int = 4) -> Any:
    """VALUE to DIGITS significant digits (η = 0.123456 → 0.1235); anything but a finite float unchanged."""
    if not isinstance(value, float) or value != value or value in (float("inf"), float("-inf")):
        return value
    return float(f"{value:.{digits}g}")


def percent(value: float) -> str:
    """An accuracy as people quote it: 0.98654 → ``98.65 %``."""
    return f"{100 * value:.2f} %"


def summary_markdown(
    summary: dict[str, Any], name: str, mlflow_url: str | None = None, dashboard: str | None = None
) -> str:
    """The study's outcome for Prefect's UI: links to its MLflow run and dashboard page, numbers rounded."""
    states = ", ".join(f"{k} {v}" for k, v in summary["states"].items())
    lines = [f"# Study `{name}`", ""]
    links = [f"[MLflow: this study's run]({mlflow_url})" if mlflow_url else "", f"[optuna-dashboard]({dashboard})" if dashboard else ""]
    if any(links):
        lines += [" · ".join(link for link in links if link) + " (for local stores, `redes ui` serves both)", ""]
    lines += [f"Trials: {summary['trials']} ({states})", ""]
    if summary.get("best_trial") is None:
        lines.append("No trial completed.")
        return "\n".join(lines)
    best = f"Best trial: **{summary['best_trial']}**"
    if summary.get("best_run_url"):
        best += f" ([MLflow run]({summary['best_run_url']}))"
    best += f", validation accuracy **{percent(summary['best_value'])}**"
    if summary.get("best_seconds") is not None:
        best += f", trained in {summary['best_seconds']:.1f} s"
    lines += [best, ""]
    if summary.get("test_accuracy") is not None:
        lines += [f"Test accuracy of its network (evaluated once): **{percent(summary['test_accuracy'])}**", ""]
    if summary.get("registry_note"):
        lines += [summary["registry_note"], ""]
    lines += ["| parameter | value |", "|---|---|"]
    lines += [f"| {k} | {significant(v) if isinstance(v, float) else v} |" for k, v in summary["best_params"].items()]
    return "\n".join(lines)
