"""Expanded training data on the fly: freshly distorted copies of the training images every epoch.

Two kinds, each off at strength 0 (Simard, Steinkraus & Platt 2003):

- affine: a random shift (± ``shift`` pixels in x and y), rotation (± ``rotate`` degrees),
  zoom (a factor in [1 − ``scale``, 1 + ``scale``]) and shear (± ``shear`` degrees), about
  the image's centre;
- elastic: a displacement field of uniform(−1, 1) noise per pixel and direction, smoothed
  by a Gaussian of width ``elastic_sigma`` and scaled by ``elastic_alpha`` (pixels).

Both only say, for every output pixel, which point of the original image to read; one
bilinear interpolation then reads them all (zero outside the image), so the pixel range
stays in [0, 1]. Everything is vectorised over a block of images: no Python loop over
images or pixels. Parameters come from one ``np.random.Generator``: the same seed gives
the same distortions. Labels are not touched here (a distorted 6 is still a 6).

Coordinates: x counts columns to the right, y rows downwards; angles are counter-clockwise
as seen on screen.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.config import TrainConfig

TRUNCATE = 4.0  # the Gaussian kernel reaches 4σ each side (as scipy.ndimage.gaussian_filter)


def affine_maps(
    shift_x: np.ndarray, shift_y: np.ndarray, angle: np.ndarray, zoom: np.ndarray, shear: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the map from an output pixel back to where it is read: (matrices ``(B, 2, 2)``, offsets ``(B, 2)``).

    The forward transformation moves the point p (relative to the centre) to
    L·p + t with L = rotation(angle°) · shear(shear°) · zoom and t = (shift_x, shift_y);
    output pixel q therefore reads the input at L⁻¹·q − L⁻¹·t. Arguments are ``(B,)`` arrays.
    """
    theta, phi = np.radians(angle), np.radians(shear)
    cos, sin, tan = np.cos(theta), np.sin(theta), np.tan(phi)
    # L = [[cos, sin], [-sin, cos]] · [[1, tan], [0, 1]] · zoom  (y points down, so this turns counter-clockwise)
    a, b = cos * zoom, (cos * tan + sin) * zoom
    c, d = -sin * zoom, (cos - sin * tan) * zoom
    det = a * d - b * c
    inverse = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[:, None, None]
    offsets = -np.einsum("bij,bj->bi", inverse, np.stack([shift_x, shift_y], -1))
    return inverse, offsets


def gaussian_matrix(n: int, sigma: float, dtype=np.float32) -> np.ndarray:
    """``(n, n)`` matrix G such that ``v @ G`` smooths ``v`` by a normalised Gaussian of width σ, zero beyond the edges."""
    radius = int(TRUNCATE * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    offset = np.arange(n)[:, None] - np.arange(n)[None, :]
    return np.where(np.abs(offset) <= radius, taps[np.clip(offset + radius, 0, 2 * radius)], 0.0).astype(dtype)


def warp(
    images: np.ndarray, matrices: np.ndarray, offsets: np.ndarray, displacement: np.ndarray | None = None
) -> np.ndarray:
    """Read square ``images`` ``(B, n, n)`` at moved points, bilinearly, zero outside: a new ``(B, n, n)`` array.

    Output pixel q (relative to the centre) reads the input at ``matrices[b] @ q +
    offsets[b]``, plus ``displacement[:, b]`` (``(2, B, n, n)``: x then y, in pixels) when given.
    """
    B, n, _ = images.shape
    dtype = images.dtype
    p = n + 2  # side of an image padded with one zero pixel all round
    # Every source point, x rows then y rows, in one GEMM: (2B, 3) coefficients times the grid
    # (u, v, 1) of output pixels relative to the centre; the + 1 moves into padded coordinates.
    rows, cols = np.indices((n, n), dtype=dtype).reshape(2, n * n)
    grid = np.stack([cols - dtype.type((n - 1) / 2), rows - dtype.type((n - 1) / 2), np.ones(n * n, dtype)])
    coefficients = np.empty((2, B, 3), dtype=dtype)
    coefficients[:, :, :2] = matrices.transpose(1, 0, 2)
    coefficients[:, :, 2] = offsets.T + ((n - 1) / 2 + 1)
    xy = coefficients.reshape(2 * B, 3) @ grid
    if displacement is not None:
        xy += displacement.reshape(2 * B, n * n)
    # Points beyond the padding read the zero border (the upper bound keeps the right and lower
    # neighbours inside it); since xy >= 0, trunc is floor.
    np.clip(xy, 0, dtype.type(n + 1 - 1e-3), out=xy)
    corner = np.trunc(xy)
    xy -= corner  # now the weights of the right-hand and the lower neighbours
    wx, wy = xy[:B], xy[B:]
    corner[B:] *= p
    index = corner[:B]
    index += corner[B:]
    index += (np.arange(B, dtype=dtype) * (p * p))[:, None]  # exact in float while B·p² < 2**24
    index = index.astype(np.intp)
    padded = np.zeros((B, p, p), dtype=dtype)
    padded[:, 1:-1, 1:-1] = images
    flat = padded.reshape(-1)
    top, right = np.empty_like(wx), np.empty_like(wx)
    # mode="clip" lets take write straight into out; every index is inside the padded block.
    flat.take(index, out=top, mode="clip")
    flat[1:].take(index, out=right, mode="clip")
    right -= top
    right *= wx
    top += right  # the row above the point, read between its two columns
    bottom = flat[p:].take(index, mode="clip")
    flat[p + 1 :].take(index, out=right, mode="clip")
    right -= bottom
    right *= wx
    bottom += right
    bottom -= top
    bottom *= wy
    top += bottom
    np.clip(top, 0, 1, out=top)  # bilinear weights sum to 1; this only removes rounding
    return top.reshape(B, n, n)


class Distorter:
    """Draws and applies a fresh random distortion to each image it is given.

    ``distorter(X)`` with X ``(B, side²)`` floats in [0, 1] returns a new ``(B, side²)``
    array of the same dtype. The strengths are :class:`core.config.TrainConfig`'s fields
    (see the module's docstring); all at 0, every image comes back unchanged.
    """

    def __init__(
        self,
        side: int,
        rng: np.random.Generator,
        *,
        shift: float = 0.0,
        rotate: float = 0.0,
        scale: float = 0.0,
        shear: float = 0.0,
        elastic_alpha: float = 0.0,
        elastic_sigma: float = 4.0,
    ) -> None:
        self.side = side
        self.rng = rng
        self.shift, self.rotate, self.scale, self.shear = shift, rotate, scale, shear
        self.elastic_alpha, self.elastic_sigma = elastic_alpha, elastic_sigma
        self._basis: dict[np.dtype, np.ndarray] = {}

    @classmethod
    def from_config(cls, config: "TrainConfig", rng: np.random.Generator) -> "Distorter":
        return cls(
            math.isqrt(config.sizes[0]),
            rng,
            shift=config.shift,
            rotate=config.rotate,
            scale=config.scale,
            shear=config.shear,
            elastic_alpha=config.elastic_alpha,
            elastic_sigma=config.elastic_sigma,
        )

    def affine(self, B: int) -> tuple[np.ndarray, np.ndarray]:
        """Random maps for B images (see :func:`affine_maps`)."""
        shift_x, shift_y, angle, zoom, shear = self.rng.uniform(-1.0, 1.0, size=(5, B))
        return affine_maps(
            self.shift * shift_x, self.shift * shift_y, self.rotate * angle, 1.0 + self.scale * zoom, self.shear * shear
        )

    def elastic(self, B: int, dtype: np.dtype) -> np.ndarray:
        """Random smooth displacement fields ``(2, B, side, side)`` (x then y), in pixels.

        Simard's field is α·G·N·G with N a side×side field of uniform(−1, 1) noise and G the
        Gaussian smoothing (:func:`gaussian_matrix`, symmetric). Writing G = U·Λ·Uᵀ, that is
        α·(UΛ)·(UᵀNU)·(UΛ)ᵀ, and for Gaussian noise of the same variance (1/3) UᵀNU is again
        such noise: so this draws an r×r noise Z and returns α·K·Z·Kᵀ with K = U_r·Λ_r, the r
        eigenvectors whose eigenvalue is at least 10⁻⁴ of the largest (r = 12 for σ = 4 on
        28×28). Same distribution, up to the sum being Gaussian, at a fifth of the random numbers.
        """
        n = self.side
        K = self._basis.get(dtype)
        if K is None:
            values, vectors = np.linalg.eigh(gaussian_matrix(n, self.elastic_sigma, np.float64))
            keep = np.abs(values) >= 1e-4 * np.abs(values).max()
            K = vectors[:, keep] * values[keep]
            K = self._basis[dtype] = np.ascontiguousarray(K.T, dtype=dtype)  # (r, n): Kᵀ
        r = len(K)
        Z = self.rng.standard_normal((2 * B * r, r), dtype=dtype)
        Z *= dtype.type(self.elastic_alpha / math.sqrt(3.0))  # α, and the variance of uniform(−1, 1) noise
        half = (Z @ K).reshape(2 * B, r, n)  # Z·Kᵀ per image
        # K·(Z·Kᵀ) per image, computed transposed as (Z·Kᵀ)ᵀ·Kᵀ in one GEMM: the noise is the
        # same in every direction, so a transposed field is just as random.
        field = half.transpose(0, 2, 1).reshape(2 * B * n, r) @ K
        return field.reshape(2, B, n, n)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        B, n = len(X), self.side
        dtype = X.dtype
        matrices, offsets = self.affine(B)
        displacement = self.elastic(B, dtype) if self.elastic_alpha else None
        return warp(X.reshape(B, n, n), matrices, offsets, displacement).reshape(B, n * n)
