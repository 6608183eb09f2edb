"""`redes train --output-encoding binary` on the test set: codes 10–15 are errors, kept out of the confusion matrix."""

from __future__ import annotations

import numpy as np

from core.network import Network
from flows.train_once import evaluate_on_test


def always(code_bits, rng):
    net = Network((6, 5, 4), rng=rng, output_encoding="binary")
    for w in net.weights:
        w[...] = 0
    net.biases[-1][...] = np.where(np.array(code_bits) > 0, 10.0, -10.0)
    return net


def test_invalid_codes_are_wrong_and_left_out_of_the_confusion_matrix():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (8, 6)), np.array([0, 1, 2, 3, 4, 5, 6, 9])
    evaluation = evaluate_on_test(always([1, 1, 1, 0], rng), X, y)  # 14: no digit
    assert evaluation.test_accuracy == 0.0
    assert evaluation.predictions.tolist() == [14] * 8
    assert evaluation.confusion.shape == (10, 10) and evaluation.confusion.sum() == 0


def test_valid_codes_fill_the_confusion_matrix():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (4, 6)), np.array([6, 6, 2, 9])
    evaluation = evaluate_on_test(always([0, 1, 1, 0], rng), X, y)  # 6
    assert evaluation.test_accuracy == 0.5
    assert evaluation.confusion[6, 6] == 2 and evaluation.confusion[2, 6] == 1 and evaluation.confusion[9, 6] == 1
    assert evaluation.confusion.sum() == 4
