"""Help texts print what they say: a `[word]` in an option's help (a space file's `[fixed]` section) is
Rich markup unless escaped, and vanished from `redes study --help` ("default:  of --space")."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from cli.main import app

COMMANDS = typer.main.get_command(app).commands


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_bracketed_word_of_an_option_help_is_printed(name):
    brackets = {
        text.replace("\\", "")
        for param in COMMANDS[name].params
        for text in re.findall(r"\\*\[[^\]\s]+\]", getattr(param, "help", None) or "")
    }
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert result.exit_code == 0, result.output
    assert [text for text in sorted(brackets) if text not in result.output] == []


def test_the_study_help_names_the_fixed_section():
    result = CliRunner().invoke(app, ["study", "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert "(default: [fixed] of --space, else 30)" in result.output
