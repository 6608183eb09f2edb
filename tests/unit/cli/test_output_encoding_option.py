"""`redes train --output-encoding` and `redes baselines`: bad combinations stop with exit code 2 before any work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.common import BadInput, parse_sizes


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--output-encoding", "binary"], "last size must be 4"),  # the default sizes end in 10
        (["train", "--output-encoding", "binary", "--sizes", "784,30,10"], "4"),
        (["train", "--sizes", "784,30,4"], "10"),
        (["train", "--output-encoding", "gray", "--sizes", "784,30,4"], "output_encoding"),
        (["train", "--output-encoding", "binary", "--sizes", "784,30,4", "--cost", "log-likelihood"], "sigmoid"),
        (["baselines", "--epochs", "0"], "epochs"),
        (["baselines", "--perceptron-epochs", "0"], "perceptron-epochs"),
    ],
)
def test_bad_encoding_options_exit_2_and_write_nothing(workdir, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message.lower() in " ".join(result.output.lower().split())  # rich wraps long lines
    assert list(workdir.iterdir()) == []


def test_sizes_end_in_the_outputs_of_the_encoding():
    assert parse_sizes("784,30,10") == (784, 30, 10)
    assert parse_sizes("784,30,4", "binary") == (784, 30, 4)
    with pytest.raises(BadInput, match="784,30,4"):
        parse_sizes("784,30,10", "binary")


def test_baselines_has_help():
    result = CliRunner().invoke(app, ["baselines", "--help"])
    assert result.exit_code == 0 and "--no-svm" in result.output
