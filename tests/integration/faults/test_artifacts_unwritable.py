"""The artifact folder is full (a 256 KiB tmpfs mounted on it): every trial's network cannot be stored,
so every trial is recorded FAIL with the reason, never COMPLETE, and its MLflow run ends FAILED.

Needs root to mount the tmpfs (skipped otherwise); the mount is removed at the end.
"""

from __future__ import annotations

import subprocess

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from support.mounts import tmpfs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tmpfs_artifact_folder(tmp_path, options: str):
    """The embedded artifact folder on a small tmpfs mounted with OPTIONS (needs root), unmounted at the end."""
    with tmpfs(tmp_path / "mlartifacts", options) as folder:
        yield folder


@pytest.fixture
def full_artifact_folder(tmp_path):
    yield from _tmpfs_artifact_folder(tmp_path, "size=256k")


def test_a_full_artifact_folder_fails_the_trials_with_the_reason(tmp_path, redes_env, full_artifact_folder, study_cli):
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal)
    done = subprocess.run(
        study_cli.study_command("full", 2, epochs=2), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    output = done.stdout + done.stderr
    assert "no trial completed" in output, output[-3000:]
    flat = " ".join(output.replace("│", " ").split())  # the summary table wraps its cells at the terminal width
    assert "failed because" in flat and "No space left on device" in flat

    trials = study_cli.trials_of("full", journal)
    assert len(trials) == 2
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    for trial in trials:
        assert trial.state == TrialState.FAIL
        assert "No space left on device" in trial.user_attrs["fail_reason"]
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED"
        assert run.data.tags["optuna.trial_state"] == "FAIL"
        assert "No space left on device" in run.data.tags["fail_reason"]
    parents = client.search_runs([run.info.experiment_id], "tags.kind = 'study'")
    assert [parent.info.status for parent in parents] == ["FINISHED"]


@pytest.fixture
def read_only_artifact_folder(tmp_path):
    yield from _tmpfs_artifact_folder(tmp_path, "ro,size=64k")


def test_a_read_only_artifact_folder_is_a_clear_error_before_any_work(tmp_path, redes_env, read_only_artifact_folder, study_cli):
    import time

    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal)
    started = time.monotonic()
    done = subprocess.run(
        study_cli.study_command("ro", 2, epochs=1),
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, output[-3000:]
    assert "Traceback" not in output
    assert str(read_only_artifact_folder) in output and "read-only" in output
    assert time.monotonic() - started < 30
    assert not journal.exists(), "no study was started"
