"""Bad input the CLI tests in tests/unit/cli do not cover: search-space files and an existing study.

Each stops `redes study` before any work: one line naming the problem and the fix, exit code 2,
nothing written (no data folder, no MLflow store, no change to the Optuna journal).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


def one_line(output: str) -> str:
    """The error as one line (rich wraps it at the terminal width)."""
    return " ".join(output.split())


@pytest.mark.parametrize(
    "text, message",
    [
        ("[space.momentom]\nlow = 0.1\nhigh = 0.9\n", "unknown parameter"),  # a misspelt name: momentum is searchable
        ("[space.eta]\nlow = 0.1\nhigh = 1.0\nstep = 2\n", "expected low and high"),
        ("[space.eta\nlow = 0.1\n", "not valid toml"),
        ("[space.eta]\nlow = 0.1\nhigh = \n", "not valid toml"),
        ("[space.eta]\nlow = 1.0\nhigh = 0.1\n", "empty range"),
        ("[space.eta]\nchoices = []\n", "non-empty"),
        ("[grid]\nmomentom = [0.1]\n", "unknown key"),
    ],
)
def test_a_bad_space_file_exits_2_naming_the_problem(workdir, text, message):
    space = workdir / "space.toml"
    space.write_text(text)
    result = CliRunner().invoke(app, ["study", "--space", str(space), "--trials", "1"])
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert message in output.lower()
    assert "space.toml" in output
    assert sorted(p.name for p in workdir.iterdir()) == ["space.toml"]


def test_a_missing_space_file_exits_2(workdir):
    result = CliRunner().invoke(app, ["study", "--space", str(workdir / "nope.toml")])
    assert result.exit_code == 2 and "does not exist" in one_line(result.output)
    assert list(workdir.iterdir()) == []


def test_an_existing_study_with_another_space_exits_2_and_says_how_to_start_a_new_one(workdir, monkeypatch):
    from tracking import studies
    from tracking.search_space import load_space

    journal = workdir / "journal.log"
    monkeypatch.setenv("REDES_OPTUNA_STORAGE", str(journal))
    fixed = {"epochs": 30, "patience": 5, "seed": 0, "eta_schedule": False}
    studies.create_or_load("s", studies.open_storage(str(journal)), load_space(None, fixed))
    before = journal.read_bytes()
    space = workdir / "space.toml"
    space.write_text("[space.eta]\nlow = 0.2\nhigh = 0.3\n")

    result = CliRunner().invoke(app, ["study", "--name", "s", "--space", str(space)])
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert "already exists" in output and "different search space" in output
    assert "another --name" in output
    assert journal.read_bytes() == before
    assert sorted(p.name for p in workdir.iterdir()) == ["journal.log", "space.toml"]
