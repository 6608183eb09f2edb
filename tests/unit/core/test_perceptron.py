"""The perceptron: the worked AND example exactly, then AND, OR and NAND learned; XOR never."""

from __future__ import annotations

import numpy as np
import pytest

from core.perceptron import Perceptron

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
AND = np.array([0, 0, 0, 1])
OR = np.array([0, 1, 1, 1])
NAND = np.array([1, 1, 1, 0])
XOR = np.array([0, 1, 1, 0])


def test_worked_and_example_exactly():
    """w1 = w2 = 0.9, bias −0.5, rate 0.5: (1, 0) is misclassified and w1 drops to 0.4."""
    p = Perceptron([0.9, 0.9], b=-0.5, eta=0.5)
    np.testing.assert_array_equal(p.predict(INPUTS), [0, 1, 1, 1])  # not yet AND
    assert p.predict([1, 0]) == 1  # 0.9 − 0.5 = 0.4 > 0, but AND(1, 0) = 0
    error = p.step([1, 0], 0)
    assert error == -1
    assert p.w.tolist() == [0.4, 0.9]  # w1 ← 0.9 + 0.5·(0 − 1)·1 = 0.4; w2 has x2 = 0 and stays
    assert p.b == -1.0  # the bias is a weight on a constant input 1: −0.5 + 0.5·(0 − 1)
    np.testing.assert_array_equal(p.predict(INPUTS), AND)  # after that one update it computes AND


def test_weights_04_and_bias_minus_05_give_the_and_truth_table():
    p = Perceptron([0.4, 0.4], b=-0.5)
    np.testing.assert_array_equal(p.predict(INPUTS), AND)
    z = INPUTS @ p.w + p.b
    np.testing.assert_allclose(z, [-0.5, -0.1, -0.1, 0.3])


def test_a_right_answer_changes_nothing():
    p = Perceptron([0.9, 0.9], b=-0.5, eta=0.5)
    assert p.step([1, 1], 1) == 0
    assert p.w.tolist() == [0.9, 0.9] and p.b == -0.5


@pytest.mark.parametrize("target", [AND, OR, NAND], ids=["AND", "OR", "NAND"])
@pytest.mark.parametrize("start", [([0.0, 0.0], 0.0), ([0.9, 0.9], -0.5), ([-1.0, 2.0], 1.0)])
def test_learns_linearly_separable_gates(target, start):
    p = Perceptron(start[0], b=start[1], eta=0.5).fit(INPUTS, target, epochs=100)
    assert p.converged
    np.testing.assert_array_equal(p.predict(INPUTS), target)


def test_never_learns_xor():
    p = Perceptron(2, eta=0.5).fit(INPUTS, XOR, epochs=200)
    assert not p.converged and min(p.errors) > 0


def test_zero_start_from_a_number_of_inputs():
    p = Perceptron(3)
    assert p.w.tolist() == [0.0, 0.0, 0.0] and p.b == 0.0
    assert p.predict(np.zeros((2, 3))).tolist() == [0, 0]  # step: z = 0 gives 0
