"""`redes perceptron`: the lecture's worked example, printed step by step; bad options exit 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


def run(*args: str):
    return CliRunner().invoke(app, ["perceptron", *args])


def test_the_worked_example_learns_and_with_one_update():
    result = run("--gate", "and")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "perceptron learning AND: w = (0.9, 0.9), b = -0.5, η = 0.5"
    assert [line.split()[-1] for line in lines if line.startswith("  x = ")] == ["right", "-1", "right", "right"] + ["right"] * 4
    assert "wrong: w = (0.9, 0.4), b = -1" in lines[4]
    assert lines[-1] == "AND learned: no mistake in epoch 2, after 1 update; w = (0.9, 0.4), b = -1"


@pytest.mark.parametrize(
    "gate, last",
    [
        ("or", "OR learned: no mistake in epoch 1, after 0 updates; w = (0.9, 0.9), b = -0.5"),
        ("nand", "NAND learned: no mistake in epoch 9, after 18 updates; w = (-1.1, -0.6), b = 1.5"),
        ("xor", "XOR not learned: mistakes in every one of 20 epochs, 68 updates; "
                "XOR is not linearly separable: no line splits its 1s from its 0s"),
    ],
)
def test_the_same_start_learns_or_and_nand_and_never_xor(gate, last):
    result = run("--gate", gate)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == last


def test_the_learned_weights_compute_the_gate():
    from core.perceptron import Perceptron
    from cli.perceptron import GATES, INPUTS

    unit = Perceptron([-1.1, -0.6], b=1.5)  # what NAND ends with
    assert tuple(unit.predict(INPUTS)) == GATES["nand"]


@pytest.mark.parametrize(
    "args, message",
    [(["--gate", "nor"], "--gate"), (["--weights", "1"], "--weights"), (["--weights", "a,b"], "--weights"),
     (["--eta", "0"], "--eta")],
)
def test_bad_options_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
