"""The network file: one ``.npz`` of plain arrays, written atomically and read with every header checked.

Keys: ``weights_i``, ``biases_i``, ``sizes``, ``activations`` (one per layer), ``cost``,
``dtype``, ``format``, and ``output_encoding`` when it is not one-hot (so one-hot files
are what they always were). Strings are stored as unicode arrays, never pickled.
:meth:`core.network.Network.save` and :meth:`~core.network.Network.load` call these.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.config import DTYPE_NAMES
from core.errors import ConfigError, ModelFileError

if TYPE_CHECKING:
    from core.network import Network

FILE_FORMAT = "redes-network-1"


def save(network: "Network", path: str | os.PathLike) -> None:
    """Write ``network`` to one ``.npz`` at exactly ``path`` (atomically: a temp file, then a rename)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FILE_FORMAT),
        "sizes": np.array(network.sizes, dtype=np.int64),
        "activations": np.array(network.activations),
        "cost": np.array(network.cost.name),
        "dtype": np.array(network.dtype.name),
    }
    if network.output_encoding != "onehot":
        arrays["output_encoding"] = np.array(network.output_encoding)
    for i, (w, b) in enumerate(zip(network.weights, network.biases)):
        arrays[f"weights_{i}"] = w
        arrays[f"biases_{i}"] = b
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(cls: type["Network"], path: str | os.PathLike) -> "Network":
    """Read a network written by :func:`save` as a ``cls``; anything else raises :class:`ModelFileError`.

    Refused: not an ``.npz``, pickled or object arrays, missing or extra keys, an
    unknown format, activation, cost or dtype, weights of the wrong shape or dtype,
    NaN or inf. Array headers are checked before any array data is read.
    """
    path = Path(path)
    with open(path, "rb") as f:  # ours to close, even when np.load fails half-way
        try:
            npz = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelFileError(f"{path}: not a redes network file ({exc})") from exc
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path}: a single .npy array, not a redes network (.npz)")
        with npz:
            try:
                return _from_npz(cls, npz, path)
            except ModelFileError:
                raise
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise ModelFileError(f"{path}: damaged network file ({type(exc).__name__}: {exc})") from exc


def _from_npz(cls: type["Network"], npz, path: Path) -> "Network":
    def fail(why: str) -> ModelFileError:
        return ModelFileError(f"{path}: {why}")

    def read(key: str, kind: str, shape: tuple | None = None, dtype: np.dtype | None = None) -> np.ndarray:
        with npz.zip.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                header_shape, _, header_dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                header_shape, _, header_dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise fail(f"{key} has an unsupported .npy version {version}")
        if header_dtype.kind != kind or header_dtype.hasobject:
            raise fail(f"{key} has dtype {header_dtype}, expected kind {kind!r}")
        if shape is not None and tuple(header_shape) != shape:
            raise fail(f"{key} has shape {tuple(header_shape)}, expected {shape}")
        if dtype is not None and header_dtype != dtype:
            raise fail(f"{key} has dtype {header_dtype}, expected {dtype}")
        return npz[key]

    meta = {"format", "sizes", "activations", "cost", "dtype"}
    keys = set(npz.files)
    if not meta <= keys:
        raise fail(f"missing keys {sorted(meta - keys)}; not a redes network file")
    if str(read("format", "U", ())) != FILE_FORMAT:
        raise fail(f"format {str(npz['format'])!r} is not {FILE_FORMAT!r}")
    sizes_array = read("sizes", "i")
    if sizes_array.ndim != 1 or len(sizes_array) < 2 or (sizes_array < 1).any():
        raise fail(f"sizes {sizes_array.tolist()} are not a list of positive layer sizes")
    sizes = tuple(int(s) for s in sizes_array)
    n_layers = len(sizes) - 1
    expected = meta | {f"weights_{i}" for i in range(n_layers)} | {f"biases_{i}" for i in range(n_layers)}
    expected |= keys & {"output_encoding"}  # optional: absent means one-hot
    if keys != expected:
        extra, missing = sorted(keys - expected), sorted(expected - keys)
        raise fail(f"keys do not match sizes {sizes}: extra {extra}, missing {missing}")
    activations = [str(a) for a in read("activations", "U", (n_layers,))]
    cost = str(read("cost", "U", ()))
    dtype_name = str(read("dtype", "U", ()))
    if dtype_name not in DTYPE_NAMES:
        raise fail(f"dtype {dtype_name!r} is not one of {DTYPE_NAMES}")
    dtype = np.dtype(dtype_name)
    encoding = str(read("output_encoding", "U", ())) if "output_encoding" in keys else "onehot"
    try:
        network = cls(
            sizes,
            activation=activations[:-1],
            cost=cost,
            dtype=dtype_name,
            rng=np.random.default_rng(0),
            output_activation=activations[-1],
            output_encoding=encoding,
        )
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    for i in range(n_layers):
        w = read(f"weights_{i}", "f", (sizes[i], sizes[i + 1]), dtype)
        b = read(f"biases_{i}", "f", (sizes[i + 1],), dtype)
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise fail(f"layer {i} holds NaN or inf")
        np.copyto(network.dense[i].W, w)
        np.copyto(network.dense[i].b, b)
    return network
