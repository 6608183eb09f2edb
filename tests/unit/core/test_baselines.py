"""The seed's simple classifiers: average darkness on hand-made images, random guessing, perceptrons one-vs-rest."""

from __future__ import annotations

import numpy as np
import pytest

from core.baselines import AverageDarkness, OneVsRestPerceptron, RandomGuess, accuracy, darkness
from core.errors import DataError
from core.perceptron import Perceptron


def images(*totals: float, pixels: int = 4) -> np.ndarray:
    """One row per total darkness, spread evenly over ``pixels`` pixels."""
    return np.repeat(np.array(totals, dtype=np.float32)[:, None] / pixels, pixels, axis=1)


def test_darkness_is_the_sum_of_pixels_per_image():
    X = np.array([[0.0, 0.5, 1.0], [0.25, 0.25, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(darkness(X), [1.5, 0.5])
    assert darkness(np.empty((0, 3))).shape == (0,)


def test_average_darkness_keeps_the_mean_of_each_digit_and_picks_the_nearest():
    # digit 0: totals 1 and 3 (mean 2); digit 1: 6 (mean 6); digit 2: 9 and 11 (mean 10)
    X = images(1, 3, 6, 9, 11)
    y = np.array([0, 0, 1, 2, 2])
    model = AverageDarkness(n_classes=3).fit(X, y)
    np.testing.assert_allclose(model.averages, [2.0, 6.0, 10.0])
    # 0 → 2 (digit 0), 3.9 → digit 0, 4.1 → digit 1, 7.9 → digit 1, 8.1 → digit 2, 30 → digit 2
    assert model.predict(images(0, 3.9, 4.1, 7.9, 8.1, 30)).tolist() == [0, 0, 1, 1, 2, 2]


def test_average_darkness_breaks_a_tie_toward_the_smaller_digit():
    model = AverageDarkness(n_classes=2).fit(images(2, 6), np.array([0, 1]))
    assert model.predict(images(4)).tolist() == [0]  # 4 is 2 away from both averages


def test_a_digit_without_training_images_is_never_predicted():
    model = AverageDarkness(n_classes=3).fit(images(2, 10), np.array([0, 2]))
    assert np.isnan(model.averages[1])
    assert model.predict(images(6.1, 5.9)).tolist() == [2, 0]


def test_average_darkness_refuses_bad_labels_and_needs_fit():
    with pytest.raises(DataError, match="labels"):
        AverageDarkness(n_classes=2).fit(images(1, 2), np.array([0, 2]))
    with pytest.raises(DataError):
        AverageDarkness().fit(images(1, 2), np.array([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="fit"):
        AverageDarkness().predict(images(1))


def test_random_guess_is_seeded_and_uniform():
    X = np.zeros((10_000, 3))
    first = RandomGuess(seed=7).fit(X, None).predict(X)
    assert first.tolist() == RandomGuess(seed=7).predict(X).tolist()
    assert first.tolist() != RandomGuess(seed=8).predict(X).tolist()
    assert set(first.tolist()) == set(range(10))
    assert abs(accuracy(first, np.zeros(10_000, dtype=np.int64)) - 0.1) < 0.01


def separable(rng, n=60):
    """Three classes of 2-D points around (0, 4), (4, 0) and (−4, −4), plus a constant input."""
    centers = np.array([[0.0, 4.0], [4.0, 0.0], [-4.0, -4.0]])
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.uniform(-1, 1, (n, 2))
    return X, y


def test_one_vs_rest_is_ten_core_perceptrons_run_side_by_side(rng):
    X, y = separable(rng)
    model = OneVsRestPerceptron(n_classes=3, epochs=4).fit(X, y)
    for k in range(3):
        # a perceptron that stopped earlier has made no change since: the same weights either way
        single = Perceptron(2, eta=1.0).fit(X, (y == k).astype(int), epochs=4)
        np.testing.assert_allclose(model.W[:, k], single.w)
        assert model.b[k] == pytest.approx(single.b)
        assert single.w.any()


def test_one_vs_rest_learns_a_separable_problem_and_stops_without_errors(rng):
    X, y = separable(rng)
    model = OneVsRestPerceptron(n_classes=3, epochs=100).fit(X, y)
    assert model.errors[-1] == 0 and len(model.errors) < 100
    assert model.predict(X).tolist() == y.tolist()
    assert model.decision_function(X).shape == (len(X), 3)


def test_one_vs_rest_keeps_the_weights_of_the_best_validation_epoch(rng):
    X, y = separable(rng, n=200)
    y_noisy = y.copy()
    y_noisy[::5] = (y_noisy[::5] + 1) % 3  # a fifth mislabelled: never separable, the weights keep moving
    seen = []
    model = OneVsRestPerceptron(n_classes=3, epochs=6).fit(
        X, y_noisy, X_val=X, y_val=y, on_epoch_end=lambda epoch, errors, val: seen.append((epoch, errors, val))
    )
    assert [s[0] for s in seen] == list(range(1, 7)) and [s[1] for s in seen] == model.errors
    assert model.val_accuracy == [s[2] for s in seen]
    best = int(np.argmax(model.val_accuracy))
    assert model.best_epoch == best + 1
    assert accuracy(model.predict(X), y) == model.val_accuracy[best]


def test_accuracy():
    assert accuracy(np.array([1, 2, 3]), np.array([1, 0, 3])) == pytest.approx(2 / 3)
    assert np.isnan(accuracy(np.array([], dtype=np.int64), np.array([], dtype=np.int64)))
    with pytest.raises(DataError):
        accuracy(np.array([1, 2]), np.array([1, 2, 3]))
