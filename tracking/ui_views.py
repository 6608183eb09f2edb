"""What the MLflow UI (3.17) shows first, set through the means it offers: experiment tags and link parameters.

Read from the UI's own code (``mlflow/server/js/build``), and seen in Chromium:

- ``workflowType=machine_learning`` in a link opens the classic "Model training" runs view; without
  it a fresh browser opens MLflow's GenAI view (an experiment's *Overview* of traces). In 3.17
  the tag ``mlflow.experimentKind`` no longer decides this (the workflow switch does); redes sets
  it anyway, as MLflow's own kind selector would, so the experiment says what it holds.
- ``viewStateShareKey=KEY`` loads the runs view saved in the experiment tag
  ``mlflow.sharedViewState.KEY``, as MLflow's *Share* button does: the sort order, the columns
  and their order, the charts and their sections. The UI shows a "shared view" banner over it.
  Which runs are expanded is never shared; sorting by anything but the start time lists child
  runs flat, so trials stand beside their parent instead of folded under it.
- ``compareRunsMode=CHART`` opens the chart view instead of the table.

Not settable: MLflow's Assistant panel opens once per browser on a local server (127.0.0.1), and
the home page's GenAI "Getting started" cards and telemetry notice have no switch.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

SHARE_KEY = "redes"
VIEW_TAG = f"mlflow.sharedViewState.{SHARE_KEY}"
KIND_TAG = "mlflow.experimentKind"
KIND = "custom_model_development"  # "Machine learning" in MLflow's kind selector
WORKFLOW = "workflowType=machine_learning"

#: Charted first, in this order: the learning curves.
LEARNING_CURVES = ("val/accuracy", "train/accuracy", "val/loss", "train/loss")
SORT_METRIC = "val/best_accuracy"
METRIC_COLUMNS = (SORT_METRIC, "test/accuracy", "best_epoch")
PARAM_COLUMNS = ("sizes", "activation", "cost", "eta", "lmbda", "dropout", "batch_size")
TAG_COLUMNS = ("stop_reason",)
SECTION = "redes-learning-curves"


def _column(kind: str, key: str) -> str:
    """A column's id in MLflow's runs table, e.g. ``metrics.`val/accuracy```."""
    return f"{kind}.`{key}`"


def _line_chart(metric: str) -> dict[str, Any]:
    """One line chart of METRIC against the epoch (MLflow's own defaults for a generated line chart)."""
    return {
        "uuid": f"redes-chart-{metric}", "type": "LINE", "metricSectionId": SECTION, "runsCountToCompare": 10,
        "deleted": False, "isGenerated": True, "displayName": metric, "metricKey": metric,
        "lineSmoothness": 0, "xAxisScaleType": "linear", "scaleType": "linear", "range": {}, "xAxisKey": "step",
        "selectedXAxisMetricKey": "", "yAxisKey": "metric", "yAxisExpressions": [], "ignoreOutliers": False,
        "useGlobalXaxisKey": True, "useGlobalLineSmoothing": True,
    }  # fmt: skip


def runs_view_state() -> dict[str, Any]:
    """The runs view redes shares: best validation accuracy first, its key columns, learning curves charted first."""
    metrics = [_column("metrics", key) for key in METRIC_COLUMNS]
    params = [_column("params", key) for key in PARAM_COLUMNS]
    tags = [_column("tags", key) for key in TAG_COLUMNS]
    description = _column("attributes", "Description")  # the run's note: its configuration in words
    return {
        "orderByKey": _column("metrics", SORT_METRIC),
        "orderByAsc": False,
        "selectedColumns": [*metrics, description, *params, *tags],
        "columnOrder": [_column("attributes", "Run Name"), "runDateAndNestInfo", *metrics, description, *params, *tags],
        "compareRunSections": [
            {"uuid": SECTION, "name": "Learning curves", "display": True, "isReordered": True, "deleted": False,
             "columns": 2}  # two wide charts a row (MLflow's default is three)
        ],
        "compareRunCharts": [_line_chart(metric) for metric in LEARNING_CURVES],
        "isAccordionReordered": True,  # keeps this section first; other metrics get sections after it
    }


def experiment_tags() -> dict[str, str]:
    """The tags redes gives every experiment it creates."""
    return {KIND_TAG: KIND, VIEW_TAG: json.dumps(runs_view_state(), separators=(",", ":"))}


def runs_url(base: str, experiment_id: str, shared_view: bool = True, charts: bool = False) -> str:
    """The experiment's runs view in the classic ML workflow; with the shared view, and the charts if asked."""
    query = [WORKFLOW]
    if shared_view:
        query.append(f"viewStateShareKey={SHARE_KEY}")
    else:  # the same sort without the saved view: any sort key but the start time lists child runs flat
        query.append(f"orderByKey={quote(_column('metrics', SORT_METRIC), safe='')}&orderByAsc=false")
    if charts:
        query.append("compareRunsMode=CHART")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{'&'.join(query)}"


def experiments_url(base: str) -> str:
    """The list of experiments in the classic ML workflow (MLflow's home page opens on GenAI)."""
    return f"{base.rstrip('/')}/#/experiments?{WORKFLOW}"


def ensure_view(client: Any, experiment: Any) -> None:
    """Give an existing EXPERIMENT (made before redes set them, or changed) the tags of :func:`experiment_tags`."""
    for key, value in experiment_tags().items():
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
