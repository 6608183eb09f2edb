"""A bad setting in the environment stops every command that reads settings before any work:
one line naming the variable and what to set, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

COMMANDS = ("train", "study", "run", "data", "baselines", "serve", "ui")
BAD = {
    "REDES_BLAS_THREADS": "abc",
    "REDES_OPTUNA_HEARTBEAT": "30,10",
    "REDES_DATA_DIR": "a-file",
    "MLFLOW_TRACKING_URI": "ftp://alice:s3cret@h/x",
    "REDES_OPTUNA_STORAGE": "mongodb://h/x",
    "PREFECT_API_URL": "localhost:4200",
    "REDES_MNIST_MIRRORS": "gopher://h/mnist",
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", BAD)
def test_a_bad_setting_stops_every_command_with_one_line(workdir, monkeypatch, command, name):
    (workdir / "a-file").write_text("")
    monkeypatch.setenv(name, BAD[name])
    result = CliRunner().invoke(app, [command])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {name}=")
    assert "; set " in lines[0] or "; unset" in lines[0]
    assert "s3cret" not in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["a-file"]


def test_the_perceptron_reads_no_setting_and_runs_anyway(workdir, monkeypatch):
    monkeypatch.setenv("REDES_BLAS_THREADS", "abc")
    result = CliRunner().invoke(app, ["perceptron", "--gate", "and"])
    assert result.exit_code == 0, result.output
    assert "AND learned" in result.output


def test_the_real_command_prints_no_traceback(tmp_path):
    redes = Path(sys.executable).with_name("redes")
    env = {**os.environ, "REDES_BLAS_THREADS": "abc"}
    done = subprocess.run([str(redes), "train", "--epochs", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: REDES_BLAS_THREADS='abc': is not a positive whole number; "
        "set a whole number of BLAS threads per worker, e.g. 1, or unset it"
    ]
    assert list(tmp_path.iterdir()) == []



def test_a_command_sets_the_quiet_log_levels_for_the_processes_it_starts(workdir, monkeypatch):
    from runtime.terminal import QUIET

    for key in QUIET:
        monkeypatch.delenv(key, raising=False)
    CliRunner().invoke(app, ["train", "--eta", "-1"])
    assert {key: os.environ.get(key) for key in QUIET} == QUIET


def test_verbose_sets_the_libraries_default_levels_for_the_processes_it_starts(workdir, monkeypatch):
    from runtime.terminal import QUIET, VERBOSE

    for key, value in QUIET.items():
        monkeypatch.setenv(key, value)  # inherited from a quiet parent: --verbose still wins
    CliRunner().invoke(app, ["--verbose", "train", "--eta", "-1"])
    assert {key: os.environ.get(key) for key in VERBOSE} == VERBOSE
