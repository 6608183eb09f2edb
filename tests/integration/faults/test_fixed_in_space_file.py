"""Issue #18: the README's own `[fixed] epochs = 2, patience = 1` was silently ignored (trials logged epochs 30,
patience 5): the options' defaults won over the file. Now the file's [fixed] is what the trials train with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from support.study_cli import SPACE_TOML

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_fixed_epochs_and_patience_of_the_space_file_are_what_trials_train_with(tmp_path, redes_env, study_cli):
    (tmp_path / "fixed.toml").write_text(SPACE_TOML + "[fixed]\nepochs = 2\npatience = 1\n")
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal)
    redes = Path(sys.executable).with_name("redes")
    command = [str(redes), "study", "--name", "fixed", "--trials", "2", "--workers", "1", "--sampler", "random",
               "--pruner", "none", "--train-size", "2000", "--val-size", "500", "--space", "fixed.toml"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    trials = study_cli.trials_of("fixed", journal)
    assert len(trials) == 2
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.params["epochs"] == "2" and run.data.params["patience"] == "1"
        assert run.data.metrics["stopped_epoch"] <= 2
