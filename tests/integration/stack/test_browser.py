"""The dashboards seen in a real browser: headless Chromium opens the MLflow runs table and optuna-dashboard.

A tiny study (2 trials) runs against the session's MLflow server; optuna-dashboard is
started on the study's journal file. Chromium (Debian's, installed by `make test` through
tests/services.sh; never by this test) renders the experiment's runs table
(`/#/experiments/<id>/runs`, sorted by run name so that the trials are listed beside their
parent rather than folded under it) and the study's dashboard pages, saves a screenshot of each
under the test's folder, and dumps the rendered DOM, in which the study's name and its
trial runs must appear. Without Chromium the test skips, except in CI (CI=true) where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from support.spaces import space_toml

from flows.servers import free_port, http_json, start_server, stop_server

pytestmark = pytest.mark.integration

#: The flags seen to render MLflow's and optuna-dashboard's pages headless (STACK-NOTES.md, Browsers).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=10000", "--window-size=1280,900", "--hide-scrollbars",
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


def render(chromium: str, url: str, screenshot: Path) -> str:
    """Save a screenshot of URL and return its rendered DOM, from one fresh headless Chromium."""
    with tempfile.TemporaryDirectory(prefix="redes-chromium-") as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, cwd=profile,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, f"no screenshot of {url}: {done.stderr[-2000:]}"
    return done.stdout


def test_the_runs_table_and_the_study_page_render_the_study_and_its_trials(
    chromium, prefect_harness, tracked_env, mlflow_server, tmp_path
):
    from flows.study import run_study

    study = f"browser-{uuid.uuid4().hex[:6]}"
    (tmp_path / "space.toml").write_text(SPACE)
    outcome = run_study(
        workers=1, name=study, trials=2, sampler="random", pruner="none", space_file=str(tmp_path / "space.toml"),
        fixed={"epochs": 1, "patience": 1, "seed": 0}, train_size=2_000, val_size=500,
    )  # fmt: skip
    assert outcome["trials"] == 2

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

        # sorted by name, MLflow lists nested runs flat (sorted by date it folds them under their parent)
        runs_url = f"{mlflow_server}/#/experiments/{outcome['experiment_id']}/runs?orderByKey=attributes.run_name&orderByAsc=true"
        mlflow_dom = render(chromium, runs_url, tmp_path / "mlflow-runs.png")
        assert study in mlflow_dom, f"the study's experiment name is not on {runs_url}"
        for name in ("trial-0", "trial-1"):
            assert name in mlflow_dom, f"{name} is not in the runs table at {runs_url}"

        study_url = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        dashboard_dom = render(chromium, study_url, tmp_path / "optuna-dashboard.png")
        assert study in dashboard_dom, f"the study's name is not on {study_url}"
        trials_dom = render(chromium, f"{study_url}/trials", tmp_path / "optuna-dashboard-trials.png")
        for number in (0, 1):
            assert f"Trial {number}" in trials_dom, f"trial {number} is not on {study_url}/trials"
        print(f"\nscreenshots: {', '.join(str(p) for p in sorted(tmp_path.glob('*.png')))}")
    finally:
        stop_server(dashboard)
