"""Issue #18: a study started on a nearly full disk (a 5 MiB tmpfs as the working folder) gave 41–45 tracebacks
after 98 s and left its parent run RUNNING. Now: one line saying how much is free and what to do, exit 1, before
any work (no data, no store, no journal written). A disk that fills up mid-study: one line, the parent run ended,
the trials recorded.

Needs root to mount the tmpfs (skipped otherwise); the mount is removed at the end.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time

import pytest
from support.mounts import tmpfs
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration]


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """The working folder on a 5 MiB tmpfs (needs root), unmounted at the end."""
    with tmpfs(tmp_path / "work", "size=5m") as folder:
        monkeypatch.chdir(folder)
        for name in ("MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("REDES_DATA_DIR", str(folder / "data"))
        try:
            yield folder
        finally:
            monkeypatch.chdir(tmp_path)


def test_a_study_on_a_full_disk_is_one_line_before_any_work(small_disk):
    from cli.main import app

    started = time.monotonic()
    result = CliRunner().invoke(app, ["study", "--name", "s", "--trials", "20", "--workers", "2", "--epochs", "3",
                                      "--train-size", "5000", "--val-size", "500"])  # fmt: skip
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "MiB free on the disk of" in output and str(small_disk) in output and "free some space" in output
    assert "Traceback" not in output
    assert time.monotonic() - started < 30
    assert list(small_disk.iterdir()) == []


@pytest.fixture
def roomy_disk(tmp_path):
    """The working folder on a tmpfs with just the room a study needs to start (needs root), unmounted at the end."""
    from tracking.stores import MIN_FREE_BYTES

    with tmpfs(tmp_path / "work", f"size={MIN_FREE_BYTES // 2**20 + 40}m", lazy=True) as folder:
        yield folder


def fill(folder) -> int:
    """Write FOLDER's disk full; the bytes written."""
    written = 0
    with open(folder / "filler", "wb", buffering=0) as out:
        chunk = bytes(2**20)
        while True:
            try:
                written += out.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return written


def test_a_disk_filling_up_mid_study_is_one_line_and_every_end_is_recorded(roomy_disk, redes_env, study_cli):
    """Issue #18: a study whose disk filled up gave dozens of tracebacks and left its parent run RUNNING. Now the
    trial that meets the full disk ends FAIL `disk full`, the others stop at their next epoch end, the parent run
    ends FAILED, and the command prints one line and exits 1: a reserve file freed at the first full write makes
    the room for it."""
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState
    from support.study_cli import SPACE_TOML

    folder = roomy_disk
    (folder / "space.toml").write_text(SPACE_TOML)
    journal = folder / "optuna-journal.log"
    env = redes_env(journal, MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}")
    argv = study_cli.study_command("full", 20, workers=2, epochs=30, patience=30, train_size=5000)
    log = folder.parent / "study.log"
    process = subprocess.Popen(argv, cwd=folder, env=env, start_new_session=True, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        study_cli.wait_for_trials(
            process, "full", journal, lambda ts: any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs for t in ts),
            "a trial with its MLflow run",
        )
        assert (folder / ".redes" / "disk-reserve").is_file()
        fill(folder)
        filled = time.monotonic()
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    seconds = time.monotonic() - filled
    (folder / "filler").unlink()
    output = log.read_text()
    print(f"disk full mid-study: the command ended {seconds:.1f} s after the disk filled up")
    assert code == 1, output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "filled up mid-study" in errors[0] and "free some space" in errors[0], output[-3000:]
    assert seconds < 30
    assert not (folder / ".redes" / "disk-reserve").exists()

    trials = study_cli.trials_of("full", journal)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    reasons = [t.user_attrs.get("fail_reason", "") for t in trials if t.state == TrialState.FAIL]
    assert any(reason.startswith("disk full: ") for reason in reasons), reasons
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("full").experiment_id])
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    assert [r.info.status for r in runs if r.data.tags.get("kind") == "study"] == ["FAILED"]
