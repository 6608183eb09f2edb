"""The dashboards seen in a real browser: headless Chromium opens the MLflow runs table and optuna-dashboard.

A tiny study (2 trials) runs against the session's MLflow server; optuna-dashboard is
started on the study's journal file. Chromium (Debian's, installed by `make test` through
tests/services.sh; never by this test) opens the links `redes ui` prints, in a fresh profile as a
newcomer would: the experiment's runs table and its charts (MLflow's classic ML workflow, not its
GenAI overview, with the view redes saved in the experiment's tags: trials listed beside their
parent rather than folded under it, the key columns, the learning curves charted first), and the
study's dashboard pages. It saves a screenshot of each under the test's folder and reads the
rendered DOM. Without Chromium the test skips, except in CI (CI=true) where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from support.spaces import space_toml

from runtime.servers import free_port, http_json, start_server, stop_server

pytestmark = pytest.mark.integration

#: The flags seen to render MLflow's and optuna-dashboard's pages headless (STACK-NOTES.md, Browsers).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip
SPACE = space_toml(n_hidden=(1, 1), hidden_1=(16, 32), batch_size=[64], activation=["relu"])


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; looked up before any server starts (session scope, first argument)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (make test installs Debian's chromium through tests/services.sh when apt is available)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return found


def render(chromium: str, url: str, screenshot: Path, budget_ms: int = 10_000, window: str = "1280,900") -> str:
    """Save a screenshot of URL and return its rendered DOM, from one fresh headless Chromium.

    BUDGET_MS is Chromium's virtual time for the page: 10 s renders MLflow's tables; its charts
    fetch each run's metric history afterwards and need more. MLflow draws only the charts
    within the WINDOW (width,height).
    """
    with tempfile.TemporaryDirectory(prefix="redes-chromium-") as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--virtual-time-budget={budget_ms}", f"--window-size={window}", f"--user-data-dir={profile}", f"--screenshot={screenshot}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, cwd=profile,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, f"no screenshot of {url}: {done.stderr[-2000:]}"
    return done.stdout


#: Shown only in MLflow's GenAI workflow (its sidebar), which a fresh browser opens by default.
GENAI_ONLY = ("Judges", "Sessions", "Overview", "Training runs")
LEARNING_CURVES = ("val/accuracy", "train/accuracy", "val/loss")


def texts(dom: str) -> list[str]:
    """The rendered DOM's text nodes, in order."""
    return [text.strip() for text in re.split(r"<[^>]*>", dom) if text.strip()]


def assert_ml_runs_view(page: list[str], url: str) -> None:
    assert "Runs" in page and "Model registry" in page, f"{url} does not show MLflow's runs view"
    shown = [name for name in GENAI_ONLY if name in page]
    assert not shown, f"{url} shows MLflow's GenAI view ({', '.join(shown)})"


def render_charts(chromium: str, url: str, screenshot: Path, tries: int = 3) -> tuple[list[str], int]:
    """The chart view's text and how many plot lines it drew; charts load after the page, so try again if none."""
    for _ in range(tries):
        dom = render(chromium, url, screenshot, budget_ms=30_000, window="1280,1500")
        lines = dom.count('class="js-line"')  # one per run and chart that plotly drew
        if lines:
            break
    return texts(dom), lines


def test_the_runs_table_and_the_study_page_render_the_study_and_its_trials(
    chromium, prefect_harness, tracked_env, mlflow_server, tmp_path
):
    from flows.study import run_study
    from tracking.study_request import StudyRequest

    study = f"browser-{uuid.uuid4().hex[:6]}"
    (tmp_path / "space.toml").write_text(SPACE)
    outcome = run_study(StudyRequest(
        workers=1, name=study, trials=2, sampler="random", pruner="none", space_file=str(tmp_path / "space.toml"),
        epochs=1, patience=1, seed=0, train_size=2_000, val_size=500,
    ))  # fmt: skip
    assert outcome["trials"] == 2
    from mlflow.tracking import MlflowClient

    from tracking import ui_views
    from tracking.run_names import DESCRIPTION_TAG

    port = free_port()
    dashboard = start_server(
        [str(Path(sys.executable).with_name("optuna-dashboard")), str(tmp_path / "optuna-journal.log"),
         "--storage-class", "JournalFileStorage", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/api/studies", log_path=tmp_path / "optuna-dashboard.log", timeout=120,
        cwd=tmp_path, name="optuna-dashboard",
    )  # fmt: skip
    try:
        studies = http_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == study)

        # the links `redes ui` prints: the runs view of the ML workflow with redes' saved view, then its charts
        experiment_id = outcome["experiment_id"]
        runs_url = ui_views.runs_url(mlflow_server, experiment_id)
        runs = texts(render(chromium, runs_url, tmp_path / "mlflow-runs.png"))
        assert study in runs, f"the study's experiment name is not on {runs_url}"
        assert_ml_runs_view(runs, runs_url)
        for name in ("trial-0", "trial-1"):  # listed flat: not folded under the parent run
            assert name in runs, f"{name} is not in the runs table at {runs_url}"
        trial = MlflowClient(mlflow_server).search_runs([experiment_id], "tags.kind = 'trial'")[0]
        for column in ("Description", "val/best_accuracy", "test/accuracy"):
            assert column in runs, f"column {column} is not shown at {runs_url}"
        assert trial.data.tags[DESCRIPTION_TAG] in runs, f"the trials' descriptions are not in the table at {runs_url}"

        charts_url = ui_views.runs_url(mlflow_server, experiment_id, charts=True)
        charts, lines = render_charts(chromium, charts_url, tmp_path / "mlflow-charts.png")
        assert_ml_runs_view(charts, charts_url)
        curves = [charts.index(title) for title in ("Learning curves", *LEARNING_CURVES)]
        assert curves == sorted(curves), f"the learning curves are not charted first, in order, at {charts_url}"
        others = [i for i, text in enumerate(charts) if text in ("epoch", "Model metrics")]
        assert others and min(others) > curves[-1], f"another section comes before the learning curves at {charts_url}"
        assert lines >= 2 * len(LEARNING_CURVES), f"{lines} lines drawn at {charts_url}: the trials are not charted"

        study_url = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        dashboard_dom = render(chromium, study_url, tmp_path / "optuna-dashboard.png")
        assert study in dashboard_dom, f"the study's name is not on {study_url}"
        trials_dom = render(chromium, f"{study_url}/trials", tmp_path / "optuna-dashboard-trials.png")
        for number in (0, 1):
            assert f"Trial {number}" in trials_dom, f"trial {number} is not on {study_url}/trials"
        print(f"\nscreenshots: {', '.join(str(p) for p in sorted(tmp_path.glob('*.png')))}")
    finally:
        stop_server(dashboard)
