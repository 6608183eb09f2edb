"""The links and the saved runs view redes gives MLflow's UI: the keys its 3.17 front end reads."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

from tracking import ui_views


def query(url: str) -> dict[str, str]:
    """The parameters after the '#/…?' of an MLflow UI link (its router keeps them in the fragment)."""
    fragment = urlsplit(url).fragment
    path, _, text = fragment.partition("?")
    return {"_path": path, **{k: v[0] for k, v in parse_qs(text).items()}}


def test_the_runs_link_opens_the_ml_workflow_with_the_shared_view():
    url = ui_views.runs_url("http://127.0.0.1:5000/", "7")
    assert url.startswith("http://127.0.0.1:5000/#/experiments/7/runs?")
    assert query(url) == {"_path": "/experiments/7/runs", "workflowType": "machine_learning", "viewStateShareKey": "redes"}


def test_the_charts_link_adds_the_chart_mode():
    assert query(ui_views.runs_url("http://h:1", "7", charts=True))["compareRunsMode"] == "CHART"


def test_without_the_shared_view_the_link_still_sorts_by_validation_accuracy_so_child_runs_are_listed_flat():
    params = query(ui_views.runs_url("http://h:1", "7", shared_view=False))
    assert "viewStateShareKey" not in params
    assert unquote(params["orderByKey"]) == "metrics.`val/best_accuracy`" and params["orderByAsc"] == "false"


def test_the_experiments_link_opens_the_ml_workflow():
    assert ui_views.experiments_url("http://h:1/") == "http://h:1/#/experiments?workflowType=machine_learning"


def test_every_new_experiment_gets_the_kind_and_the_view_under_the_share_key():
    tags = ui_views.experiment_tags()
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    state = json.loads(tags["mlflow.sharedViewState.redes"])
    assert len(tags["mlflow.sharedViewState.redes"]) < 20_000  # MLflow's limit for an experiment tag's value
    assert state["orderByKey"] == "metrics.`val/best_accuracy`" and state["orderByAsc"] is False


def test_the_view_shows_the_key_metrics_and_parameters_as_columns_in_that_order():
    state = ui_views.runs_view_state()
    for column in ("metrics.`val/best_accuracy`", "metrics.`test/accuracy`", "params.`eta`", "params.`lmbda`",
                   "params.`sizes`", "params.`activation`", "attributes.`Description`"):  # fmt: skip
        assert column in state["selectedColumns"]
    order = state["columnOrder"]
    assert order.index("metrics.`val/best_accuracy`") < order.index("params.`sizes`") < order.index("params.`eta`")


def test_the_learning_curves_are_the_first_section_and_its_charts_come_in_order():
    state = ui_views.runs_view_state()
    first = state["compareRunSections"][0]
    assert first["name"] == "Learning curves" and state["isAccordionReordered"] is True
    charts = [c for c in state["compareRunCharts"] if c["metricSectionId"] == first["uuid"]]
    assert [c["metricKey"] for c in charts][:3] == ["val/accuracy", "train/accuracy", "val/loss"]
    assert {c["type"] for c in charts} == {"LINE"} and {c["xAxisKey"] for c in charts} == {"step"}
    assert len({c["uuid"] for c in state["compareRunCharts"]}) == len(state["compareRunCharts"])


class Recorder:
    def __init__(self):
        self.calls = []

    def set_experiment_tag(self, experiment_id, key, value):
        self.calls.append((experiment_id, key, value))


class Experiment:
    def __init__(self, tags):
        self.experiment_id, self.tags = "3", tags


def test_an_older_experiment_gets_the_missing_tags_and_an_up_to_date_one_is_left_alone():
    client = Recorder()
    ui_views.ensure_view(client, Experiment({"mlflow.sharedViewState.redes": "{}"}))
    assert {(key, value) for _, key, value in client.calls} == set(ui_views.experiment_tags().items())
    client = Recorder()
    ui_views.ensure_view(client, Experiment(dict(ui_views.experiment_tags())))
    assert client.calls == []
