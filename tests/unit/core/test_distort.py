"""Expanded training data: affine and elastic distortions, and how training uses them."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import TrainConfig
from core.distort import Distorter, affine_maps, gaussian_matrix, warp
from core.network import Network
from core.training import train

ON = dict(shift=2.0, rotate=15.0, scale=0.1, shear=10.0, elastic_alpha=34.0, elastic_sigma=4.0)


def digits(n: int, seed: int = 0) -> np.ndarray:
    """Blobby 28×28 images in [0, 1] with an empty 4-pixel border, like MNIST's."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.float32)
    images[:, 4:24, 4:24] = rng.uniform(0, 1, (n, 20, 20)) ** 3
    return images.reshape(n, 784)


def maps(n=1, shift_x=0.0, shift_y=0.0, angle=0.0, zoom=1.0, shear=0.0):
    full = lambda v: np.full(n, v, dtype=np.float64)  # noqa: E731
    return affine_maps(full(shift_x), full(shift_y), full(angle), full(zoom), full(shear))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strength_zero_gives_the_identical_image(dtype):
    X = digits(5).astype(dtype)
    out = Distorter(28, np.random.default_rng(0))(X)
    assert out.dtype == dtype and np.array_equal(out, X)


@pytest.mark.parametrize("dx, dy", [(1, 0), (0, 1), (-1, 0), (2, -3)])
def test_a_whole_pixel_shift_equals_np_roll_on_an_image_with_an_empty_border(dx, dy):
    images = digits(3).reshape(3, 28, 28)
    out = warp(images, *maps(3, shift_x=dx, shift_y=dy))
    assert np.array_equal(out, np.roll(images, (dy, dx), axis=(1, 2)))


def test_a_quarter_turn_moves_a_known_point_where_it_should():
    """Counter-clockwise on screen (y down): the pixel 10.5 rows above the centre ends 10.5 columns left of it."""
    image = np.zeros((1, 28, 28), dtype=np.float64)
    image[0, 3, 13] = 1.0  # (x, y) = (−0.5, −10.5) from the centre (13.5, 13.5)
    out = warp(image, *maps(angle=90.0))[0]
    assert np.unravel_index(out.argmax(), out.shape) == (14, 3)  # (x, y) = (−10.5, 0.5)
    assert out[14, 3] == pytest.approx(1.0, abs=1e-9) and out.sum() == pytest.approx(1.0, abs=1e-9)


def test_zoom_and_shear_move_points_by_their_matrix():
    image = np.zeros((1, 28, 28))
    image[0, 13, 17] = 1.0  # (x, y) = (3.5, −0.5)
    zoomed = warp(image, *maps(zoom=2.0))[0]  # to (7, −1): column 20.5, row 12.5, spread over 4×4 pixels
    rows, cols = np.indices(zoomed.shape)
    assert zoomed.sum() == pytest.approx(4.0)  # the area grows by zoom²
    assert (rows * zoomed).sum() / 4.0 == pytest.approx(12.5) and (cols * zoomed).sum() / 4.0 == pytest.approx(20.5)
    np.testing.assert_allclose(zoomed[12:14, 20:22], 0.75**2)
    sheared = warp(image, *maps(shear=45.0))[0]  # x' = x + tan 45°·y = 3.0 → column 16.5, row 13
    np.testing.assert_allclose(sheared[13, 16:18], 0.5)


def test_the_same_seed_gives_the_same_distortions_and_another_seed_others():
    X = digits(20)
    a = Distorter(28, np.random.default_rng(4), **ON)(X)
    b = Distorter(28, np.random.default_rng(4), **ON)(X)
    c = Distorter(28, np.random.default_rng(5), **ON)(X)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, X)


@pytest.mark.parametrize(
    "setting",
    [dict(shift=2.0), dict(rotate=15.0), dict(scale=0.1), dict(shear=10.0), dict(elastic_alpha=34.0), ON],
    ids=["shift", "rotate", "scale", "shear", "elastic", "all"],
)
def test_pixel_range_stays_in_0_1_and_mean_mass_is_preserved(setting):
    X = digits(400, seed=1)
    out = Distorter(28, np.random.default_rng(0), **setting)(X)
    assert out.shape == X.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert not np.array_equal(out, X)
    ratio = out.sum(axis=1) / X.sum(axis=1)
    assert ratio.mean() == pytest.approx(1.0, abs=0.03)


def test_elastic_fields_have_the_statistics_of_simards_smoothed_noise():
    """The low-rank draw (see Distorter.elastic) against α·G·N·G with N uniform(−1, 1), directly."""
    alpha, sigma, n = 34.0, 4.0, 4000
    fields = Distorter(28, np.random.default_rng(0), elastic_alpha=alpha, elastic_sigma=sigma).elastic(n, np.dtype("float64"))
    G = gaussian_matrix(28, sigma, np.float64)
    direct = alpha * (G.T @ np.random.default_rng(1).uniform(-1, 1, (n, 28, 28)) @ G)
    for ours in fields:  # x, then y
        np.testing.assert_allclose(ours.std(axis=0), direct.std(axis=0), rtol=0.1)
        near = lambda f: np.corrcoef(f[:, 14, 14], f[:, 14, 18])[0, 1]  # noqa: E731
        assert near(ours) == pytest.approx(near(direct), abs=0.05)
        assert abs(ours.mean()) < 0.05 * ours.std()


def test_gaussian_matrix_rows_are_normalised_gaussian_taps():
    G = gaussian_matrix(28, 2.0, np.float64)
    assert np.allclose(G, G.T)
    taps = np.exp(-0.5 * (np.arange(-8, 9) / 2.0) ** 2)
    np.testing.assert_allclose(G[14, 6:23], taps / taps.sum())


# --- training on distorted copies --------------------------------------------------------


def small_config(**changes) -> TrainConfig:
    values = dict(sizes=(784, 16, 10), activation="relu", cost="log-likelihood", eta=0.1, lmbda=0.0, batch_size=32,
                  epochs=2, patience=None, seed=3)
    return TrainConfig(**{**values, **changes})


def test_training_distorts_every_training_image_each_epoch_and_never_the_validation_images(monkeypatch):
    X, y = digits(200), np.arange(200) % 10
    X_val, y_val = digits(50, seed=9), np.arange(50) % 10
    seen: list[np.ndarray] = []
    original = Distorter.__call__

    def spy(self, rows):
        seen.append(rows.copy())
        return original(self, rows)

    monkeypatch.setattr(Distorter, "__call__", spy)
    config = small_config(shift=2.0, elastic_alpha=20.0)
    train(Network.from_config(config), X, y, X_val, y_val, config)
    rows = np.concatenate(seen)
    assert len(rows) == config.epochs * len(X)  # every image, fresh each epoch
    for epoch in range(config.epochs):  # the training images, each once, and so no validation image
        block = rows[epoch * len(X) : (epoch + 1) * len(X)]
        assert np.array_equal(np.unique(block, axis=0), np.unique(X, axis=0))


def test_training_with_distortion_is_reproducible_and_differs_from_without():
    X, y = digits(200), np.arange(200) % 10
    config = small_config(rotate=10.0, elastic_alpha=20.0)
    runs = []
    for c in (config, config, small_config()):
        net = Network.from_config(c)
        train(net, X, y, X[:40], y[:40], c)
        runs.append(net.weights[0])
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_uint8_images_are_scaled_before_distortion():
    X = digits(96)
    X8 = np.round(X * 255).astype(np.uint8)
    y = np.arange(96) % 10
    config = small_config(shift=1.0, epochs=1)
    a, b = Network.from_config(config), Network.from_config(config)
    train(a, X8, y, X[:20], y[:20], config)
    train(b, np.round(X * 255).astype(np.float32) / np.float32(255), y, X[:20], y[:20], config)
    np.testing.assert_allclose(a.weights[0], b.weights[0], rtol=1e-5, atol=1e-6)
