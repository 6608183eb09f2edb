"""The pictures of a run: valid PNGs of a sensible size, one receptive-field tile per hidden unit up to the cap."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tracking import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path):
    """The image, after checking the file is a PNG that PIL decodes; returns (width, height, text chunks)."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        return image.width, image.height, dict(image.text)


def weights(units, seed=0):
    return np.random.default_rng(seed).normal(size=(784, units)).astype(np.float32)


@pytest.mark.parametrize("count, shape", [(1, (1, 1)), (10, (3, 4)), (30, (5, 6)), (100, (10, 10)), (101, (10, 11))])
def test_grid_shape_is_the_squarest_grid_with_room_for_every_tile(count, shape):
    rows, cols = plots.grid_shape(count)
    assert (rows, cols) == shape
    assert rows * cols >= count > (rows - 1) * cols


def test_thirty_hidden_units_make_thirty_tiles_in_a_five_by_six_grid(tmp_path):
    w = weights(30)
    tiles = plots.receptive_field_tiles(w)
    assert len(tiles) == 30
    for unit, tile in enumerate(tiles):  # each tile is that unit's incoming weights, scaled into [-1, 1]
        np.testing.assert_allclose(tile.ravel() * np.abs(w[:, unit]).max(), w[:, unit], rtol=1e-6)
        assert np.abs(tile).max() == pytest.approx(1.0)

    mosaic = plots.tile_mosaic(tiles, 5, 6)
    step = plots.IMAGE_SIDE + plots.TILE_GAP
    assert mosaic.shape == (5 * step - plots.TILE_GAP, 6 * step - plots.TILE_GAP)
    cells = [mosaic[r * step : r * step + 28, c * step : c * step + 28] for r in range(5) for c in range(6)]
    drawn = [cell for cell in cells if not np.isnan(cell).all()]
    assert len(drawn) == 30 and all(not np.isnan(cell).any() for cell in drawn)

    width, height, text = read_png(plots.receptive_fields(w, tmp_path / "rf.png"))
    assert text[plots.TILES_KEY] == "30" and text[plots.GRID_KEY] == "5x6"
    assert 300 <= width <= 2000 and 300 <= height <= 2000


def test_the_grid_stops_at_the_cap_of_one_hundred_tiles(tmp_path):
    width, height, text = read_png(plots.receptive_fields(weights(300), tmp_path / "rf.png"))
    assert text[plots.TILES_KEY] == "100" and text[plots.GRID_KEY] == "10x10"
    assert 600 <= width <= 2000 and 600 <= height <= 2000
    _, _, text = read_png(plots.receptive_fields(weights(12), tmp_path / "few.png", limit=5))
    assert text[plots.TILES_KEY] == "5"


def test_receptive_fields_need_square_images():
    with pytest.raises(ValueError, match="square"):
        plots.receptive_field_tiles(np.zeros((100 + 1, 3)))


def test_a_dead_unit_draws_as_zeros_not_nan():
    w = weights(3)
    w[:, 1] = 0.0
    assert np.all(plots.receptive_field_tiles(w)[1] == 0.0)


def test_per_class_accuracy_and_learning_speed_are_valid_pngs(tmp_path):
    labels = np.repeat(np.arange(10), 20)
    predictions = labels.copy()
    predictions[::7] = 0
    width, height, _ = read_png(plots.per_class_accuracy(labels, predictions, tmp_path / "bars.png"))
    assert 500 <= width <= 2000 and 300 <= height <= 1500

    per_epoch = [
        (epoch, {"diag/layer1/grad_norm": 0.0, "diag/layer2/grad_norm": 1.0 / epoch, "diag/layer2/saturated": 0.1})
        for epoch in (1, 2, 3)
    ]  # a step hidden layer: its gradient is exactly 0
    width, height, _ = read_png(plots.learning_speed(per_epoch, tmp_path / "speed.png"))
    assert 500 <= width <= 2000 and 300 <= height <= 1500
    with pytest.raises(ValueError, match="diagnostics"):
        plots.learning_speed([], tmp_path / "none.png")


def test_a_class_absent_from_the_labels_gets_an_empty_bar(tmp_path):
    labels = np.array([0, 0, 1, 1])
    read_png(plots.per_class_accuracy(labels, np.array([0, 1, 1, 1]), tmp_path / "bars.png"))


def test_diagnostics_by_epoch_skips_epochs_without_them():
    class Epoch:
        def __init__(self, epoch, diagnostics):
            self.epoch, self.diagnostics = epoch, diagnostics

    history = [Epoch(1, {}), Epoch(2, {"diag/layer1/grad_norm": 0.5})]
    assert plots.diagnostics_by_epoch(history) == [(2, {"diag/layer1/grad_norm": 0.5})]
