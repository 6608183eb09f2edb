"""The pages that show this folder's studies and experiments, for `redes ui` and `redes up`.

MLflow's runs table and charts (in the view of `tracking.ui_views`) and each study's
optuna-dashboard page, looked up on the running servers; printed as plain lines, each URL
whole on its own, never wrapped or cut by the terminal's width or in a log file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runtime.servers import http_json
from tracking import ui_views


@dataclass
class Listed:
    """One study (or experiment) and the pages that show it, each printed whole on a line of its own."""

    name: str
    heading: str
    links: list[tuple[str, str]]  # (label, URL)


def links(bases: dict[str, str], study: str | None, remote_mlflow: str | None, storage: str) -> list[Listed]:
    """The pages to open: the study named (or every study and experiment there is), and the servers' front pages.

    BASES: each running server's name and base URL (``mlflow``, ``optuna-dashboard``).
    """
    mlflow_base = remote_mlflow.rstrip("/") if remote_mlflow else bases.get("mlflow")
    dashboard_base = bases.get("optuna-dashboard")
    experiments, note = _experiments(mlflow_base, study) if mlflow_base else ({}, "")
    dashboard_ids = _dashboard_ids(dashboard_base) if dashboard_base else {}
    counts = _trial_counts(storage)
    names = [study] if study is not None else sorted(set(counts) | set(dashboard_ids))
    listed = []
    for name in names:
        links = []
        if name in experiments:
            links += [("runs", experiments[name][0]), ("charts", experiments[name][1])]
        if name in dashboard_ids:
            links.append(("optuna", f"{dashboard_base}/dashboard/studies/{dashboard_ids[name]}"))
        trials = counts.get(name)
        heading = f"study {name!r}: " + (f"{trials} trial{'s' * (trials != 1)}" if trials is not None else "no study yet")
        if name not in experiments and mlflow_base:
            heading += f"; {note or 'no MLflow experiment yet'}"
        listed.append(Listed(name, heading, links))
    if study is None:  # experiments of `redes train` and `redes baselines`: no study behind them
        for name, (runs, charts) in sorted(experiments.items()):
            if name not in counts and name not in dashboard_ids and name != "Default":
                listed.append(Listed(name, f"experiment {name!r}", [("runs", runs), ("charts", charts)]))
    front = [("mlflow", ui_views.experiments_url(mlflow_base))] if mlflow_base else []
    front += [("optuna", f"{dashboard_base}/dashboard")] if dashboard_base else []
    listed.append(Listed("", "every experiment and study", front))
    return listed


def _experiments(base: str, only: str | None = None) -> tuple[dict[str, tuple[str, str]], str]:
    """Each MLflow experiment's (or only ONLY's) runs table and charts, given redes' saved view first if it lacks it."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"  # this process only looks names up
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    if os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") and not os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"))
        os.environ["MLFLOW_TRACKING_PASSWORD"] = os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"]
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=base)
        found = client.search_experiments(max_results=1000)
    except Exception as exc:  # noqa: BLE001 - a missing link is not a reason to stop the servers
        return {}, f"MLflow experiments not looked up: {str(exc).splitlines()[0][:80]}"
    links = {}
    for experiment in found:
        if only is not None and experiment.name != only:
            continue
        try:
            ui_views.ensure_view(client, experiment)
            shared = True
        except Exception:  # noqa: BLE001 - a read-only user: the same sort, without the saved columns and charts
            shared = False
        links[experiment.name] = tuple(
            ui_views.runs_url(base, experiment.experiment_id, shared_view=shared, charts=charts) for charts in (False, True)
        )
    return links, ""


def _dashboard_ids(base: str) -> dict[str, int]:
    try:
        studies = http_json(f"{base}/api/studies").get("study_summaries", [])
    except (OSError, ValueError):
        studies = []
    return {item["study_name"]: item["study_id"] for item in studies if "study_name" in item}


def _trial_counts(storage: str) -> dict[str, int]:
    """Every study in the Optuna storage and how many trials it holds ({} when it cannot be read)."""
    if "://" not in storage and not Path(storage).is_file():
        return {}
    try:
        import optuna

        from tracking.studies import open_storage, quiet_optuna

        quiet_optuna()
        return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False)}
    except Exception:  # noqa: BLE001 - the dashboard still lists them
        return {}


def say_links(listed: list[Listed], say: Callable[[str], None]) -> None:
    """Each heading, then its links one per line."""
    if not any(item.name for item in listed):
        say("no study or experiment yet: run `redes study` or `redes train`, then open the links again")
    for item in listed:
        say(item.heading)
        label_width = max((len(label) for label, _ in item.links), default=0)
        for label, url in item.links:
            say(f"  {label:<{label_width}}  {url}")
