"""`redes serve` checks its options before it starts or registers anything: exit code 2, one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize(
    "args, message",
    [
        (["serve", "--cron", "every night"], "--cron"),
        (["serve", "--cron", "0 2 * * *", "--interval", "60"], "not both"),
        (["serve", "--interval", "soon"], "--interval"),
        (["serve", "--interval", "0"], "--interval"),
        (["serve", "--train-size", "55000", "--val-size", "10000"], "exceeds"),
    ],
)
def test_bad_serve_options_exit_2_before_anything_starts(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens: nothing may be called
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_serve_has_help():
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--interval" in result.output and "--cron" in result.output
