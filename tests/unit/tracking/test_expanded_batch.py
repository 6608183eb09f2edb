"""The expanded-batch picture: the same digits as stored and as distorted, drawn side by side."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.config import TrainConfig
from tracking import plots
from tracking.champion import distortion_settings


def test_the_settings_read_as_words():
    config = TrainConfig(shift=2, rotate=15, scale=0.1, shear=5, elastic_alpha=34, elastic_sigma=4)
    assert distortion_settings(config) == "shift ±2 px, rotate ±15°, scale ±10 %, shear ±5°, elastic α 34 σ 4"
    assert distortion_settings(TrainConfig()) == ""


def test_the_picture_shows_both_halves(tmp_path):
    rng = np.random.default_rng(0)
    originals = np.zeros((36, 784), dtype=np.float32)
    originals[:, 14 * 28 : 15 * 28] = 1.0  # a horizontal bar in every tile
    distorted = rng.uniform(0, 1, (36, 784)).astype(np.float32)
    path = plots.expanded_batch(originals, distorted, tmp_path / "batch.png", "shift ±2 px")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    left, right = pixels[:, : pixels.shape[1] // 2], pixels[:, pixels.shape[1] // 2 :]
    assert (left < 64).mean() > 0.01 and (right < 64).mean() > (left < 64).mean()  # bars on the left, noise darker
