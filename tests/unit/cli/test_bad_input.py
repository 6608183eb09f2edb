"""Bad options stop a command before any work: one line naming the problem, exit code 2, nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--eta", "-1"], "eta"),
        (["train", "--eta", "0"], "eta"),
        (["train", "--lmbda", "-0.5"], "lmbda"),
        (["train", "--dropout", "1.0"], "dropout"),
        (["train", "--sizes", "784,0,10"], "size"),
        (["train", "--sizes", "100,30,10"], "784"),
        (["train", "--sizes", "784,30,4"], "10"),
        (["train", "--activation", "swish"], "activation"),
        (["train", "--cost", "hinge"], "cost"),
        (["train", "--batch-size", "600", "--train-size", "500"], "batch"),
        (["train", "--sizes", "784,a,10"], "sizes"),
        (["study", "--sampler", "annealing"], "sampler"),
        (["study", "--pruner", "sometimes"], "pruner"),
        (["study", "--storage", "mongodb://localhost/x"], "storage URL"),
        (["study", "--timeout", "soon"], "timeout"),
        (["study", "--sampler", "grid"], "grid"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(workdir, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message.lower() in result.output.lower()
    assert list(workdir.iterdir()) == []


def test_bad_space_file_exits_2(workdir):
    space = workdir / "space.toml"
    space.write_text("[space.eta]\nlow = 1.0\nhigh = 0.1\n")
    result = CliRunner().invoke(app, ["study", "--space", str(space)])
    assert result.exit_code == 2
    assert "empty range" in result.output
    assert sorted(p.name for p in workdir.iterdir()) == ["space.toml"]


def test_every_subcommand_has_help():
    runner = CliRunner()
    for command in ("data", "train", "study", "run", "ui", "serve", "baselines", "perceptron"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.output


def test_an_unreachable_tracking_server_fails_in_seconds_before_any_work(workdir, monkeypatch):
    import time

    from runtime.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["train", "--epochs", "1", "--train-size", "100", "--val-size", "100"])
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert url in result.output and "MLFLOW_TRACKING_URI" in result.output
    assert list(workdir.iterdir()) == []
