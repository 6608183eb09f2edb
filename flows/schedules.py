"""The schedules of redes, declared once: `redes serve` serves them and `prefect.yaml` repeats them.

- ``mnist-study/nightly`` (02:00 UTC): continues the default study ``mnist`` of
  `redes run` with 20 more trials, with the same search space and training options, so
  Optuna accepts it as the same study.
- ``refresh/weekly-refresh`` (Sundays 03:00 UTC): re-verifies MNIST and its split, then
  re-evaluates the registered champion on the test set (:mod:`flows.refresh`).

`prefect.yaml` registers the same deployments on a process work pool for a Prefect
server with workers; a unit test checks that it names the same flows, cron strings,
time zone and parameters as this module. The nightly study's one parameter is a
:class:`~tracking.study_request.StudyRequest` derived from the main job's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flows.defaults import MAIN_JOB
from tracking.study_request import StudyRequest

TIMEZONE = "UTC"
NIGHTLY_TRIALS = 20
TAGS = ("redes",)


@dataclass(frozen=True)
class ScheduledDeployment:
    """One scheduled deployment: which flow, under which name, when."""

    flow_name: str
    name: str
    entrypoint: str  # file path form, as prefect.yaml writes it
    module_entrypoint: str  # module path form, what `redes serve` registers (independent of the folder)
    cron: str
    description: str
    timezone: str = TIMEZONE

    @property
    def full_name(self) -> str:
        """``flow/deployment``, as `prefect deployment run` and `run_deployment` want it."""
        return f"{self.flow_name}/{self.name}"


NIGHTLY = ScheduledDeployment(
    flow_name="mnist-study",
    name="nightly",
    entrypoint="flows/study.py:mnist_study",
    module_entrypoint="flows.study.mnist_study",
    cron="0 2 * * *",
    description=f"Continues the default study with {NIGHTLY_TRIALS} more trials every night.",
)
WEEKLY_REFRESH = ScheduledDeployment(
    flow_name="refresh",
    name="weekly-refresh",
    entrypoint="flows/refresh.py:refresh",
    module_entrypoint="flows.refresh.refresh",
    cron="0 3 * * 0",
    description="Re-verifies MNIST and its split and re-evaluates the registered champion, every Sunday.",
)
SCHEDULED = (NIGHTLY, WEEKLY_REFRESH)


def nightly_request(**changes: Any) -> StudyRequest:
    """The study of `redes run` with its search space and split, NIGHTLY_TRIALS more trials on one worker,
    no time budget and no warm start; CHANGES (e.g. ``name``, ``epochs``) replace fields."""
    nightly = replace(
        MAIN_JOB, trials=NIGHTLY_TRIALS, workers=1, timeout_seconds=None, hard_timeout_seconds=None, enqueue=()
    )
    return replace(nightly, **changes)


def nightly_parameters(**changes: Any) -> dict[str, Any]:
    """The study flow's parameters: the :func:`nightly_request` as JSON."""
    return {"request": nightly_request(**changes).parameters()}


def refresh_parameters(
    *,
    train_size: int = MAIN_JOB.train_size,
    val_size: int = MAIN_JOB.val_size,
    mirrors: list[str] | None = None,
) -> dict[str, Any]:
    """The refresh flow's parameters: the split the default study uses."""
    parameters: dict[str, Any] = {"train_size": train_size, "val_size": val_size}
    if mirrors:
        parameters["mirrors"] = list(mirrors)
    return parameters


def schedule_for(spec: ScheduledDeployment, cron: str | None = None, interval: float | None = None):
    """SPEC's own cron schedule, or the CRON / INTERVAL (seconds) given instead."""
    from prefect.schedules import Cron, Interval

    if cron is not None and interval is not None:
        raise ValueError("give a cron string or an interval, not both")
    if interval is not None:
        return Interval(timedelta(seconds=interval), timezone=spec.timezone)
    return Cron(cron or spec.cron, timezone=spec.timezone)


def build_deployments(
    *,
    cron: str | None = None,
    interval: float | None = None,
    nightly: dict[str, Any] | None = None,
    refresh: dict[str, Any] | None = None,
) -> list:
    """The deployments `redes serve` serves: the nightly study and the weekly refresh, with their parameters."""
    from prefect.types.entrypoint import EntrypointType

    from flows.refresh import refresh as refresh_flow
    from flows.study import mnist_study

    flows = {NIGHTLY: (mnist_study, nightly_parameters() if nightly is None else nightly),
             WEEKLY_REFRESH: (refresh_flow, refresh_parameters() if refresh is None else refresh)}  # fmt: skip
    deployments = []
    for spec, (flow, parameters) in flows.items():
        deployment = flow.to_deployment(
            spec.name,
            schedules=[schedule_for(spec, cron, interval)],
            parameters=parameters,
            description=spec.description,
            tags=list(TAGS),
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        deployments.append(deployment)
    return deployments


def describe(spec: ScheduledDeployment, cron: str | None = None, interval: float | None = None) -> str:
    """The schedule in words, for the terminal."""
    if interval is not None:
        return f"every {interval:g} s"
    return f"cron {cron or spec.cron} ({spec.timezone})"
