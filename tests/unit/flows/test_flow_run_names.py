"""A study's flow runs carry its name in Prefect's UI (not a random `crimson-fox`)."""

from __future__ import annotations

import inspect

import pytest
from prefect._internal.engine import resolve_custom_flow_run_name

from flows.study import main_job, mnist_study, study_task_runner
from tracking.study_request import StudyRequest


def parameters(flow, **given):
    """The parameters Prefect formats the name with: the flow's defaults, then what the caller gave."""
    defaults = {k: p.default for k, p in inspect.signature(flow.fn).parameters.items()}
    return {**defaults, **given}


@pytest.mark.parametrize("flow", [mnist_study, main_job])
def test_the_flow_run_is_named_after_the_study(flow):
    assert resolve_custom_flow_run_name(flow, parameters(flow, request=StudyRequest(name="tutorial-grid"))) == "study-tutorial-grid"
    assert resolve_custom_flow_run_name(flow, parameters(flow)) == "study-mnist"


def test_the_name_survives_the_choice_of_task_runner():
    flow = mnist_study.with_options(task_runner=study_task_runner(1))
    assert resolve_custom_flow_run_name(flow, parameters(flow, request=StudyRequest(name="quick"))) == "study-quick"
