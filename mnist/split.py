"""The train / validation / test split of MNIST, stored once as memory-mappable ``.npy`` files.

Default (the convention of Nielsen's book): the first 50,000 training images train, the
last 10,000 validate, the official 10,000 test images test. Options: smaller sizes for
quick runs, a seeded shuffle before the cut, a stratified cut (each class in proportion).
The seed and stratification decide *which* images go where; each part is stored in the
original order of the training file (training shuffles every epoch anyway).

A split lives in ``<data_dir>/splits/<key>/`` where the key is derived from the options
and the source files' digests: a changed option writes a new folder and never touches an
old one. The folder is written under a temporary name and renamed when complete, its
files are made read-only, and ``manifest.json`` records sizes, per-class counts, the
options, the source digests and the SHA-256 of every ``.npy`` (see :func:`verify_split`).
A stored split is verified each time it is reused (under a second for the full split):
a damaged one is discarded, with a warning, and rebuilt from the verified IDX files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mnist.checksums import MNIST_FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, sha256_file
from mnist.errors import ReadOnlyData
from mnist.folders import writable
from mnist.idx import read_idx
from mnist.sizes import N_CLASSES, N_PIXELS, N_TRAIN_FILE, TRAIN_SIZE, VAL_SIZE

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
log = logging.getLogger(__name__)
ARRAYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
INDEX_ARRAYS = ("train_indices", "val_indices")


@dataclass(frozen=True)
class SplitSpec:
    """How to cut the 60,000 training images; ``seed=None`` keeps the file order."""

    train_size: int = TRAIN_SIZE
    val_size: int = VAL_SIZE
    seed: int | None = None
    stratify: bool = False

    def __post_init__(self) -> None:
        if self.train_size < 1 or self.val_size < 1:
            raise ValueError(f"train_size and val_size must be positive (got {self.train_size}, {self.val_size})")
        if self.train_size + self.val_size > N_TRAIN_FILE:
            raise ValueError(
                f"train_size + val_size = {self.train_size + self.val_size} exceeds the {N_TRAIN_FILE} "
                "training images of MNIST"
            )


@dataclass(frozen=True)
class Split:
    """A stored split; the arrays are read-only memory maps of its ``.npy`` files.

    X arrays are ``float32`` of shape ``(n, 784)`` in [0, 1]; y arrays ``int64`` of shape ``(n,)``.
    """

    path: Path
    manifest: dict
    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)

    @property
    def spec(self) -> SplitSpec:
        return SplitSpec(**self.manifest["spec"])


def split_key(spec: SplitSpec, source_digests: dict[str, str]) -> str:
    """A folder name that changes whenever an option or a source file changes."""
    payload = json.dumps(
        {"format": FORMAT_VERSION, "spec": asdict(spec), "sources": dict(sorted(source_digests.items()))},
        sort_keys=True,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    order = "ordered" if spec.seed is None else f"seed{spec.seed}"
    return f"train{spec.train_size}-val{spec.val_size}-{order}{'-stratified' if spec.stratify else ''}-{digest}"


def _quotas(total: int, counts: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Split TOTAL over classes in proportion to COUNTS (largest remainder), never above CAPACITY."""
    exact = total * counts / counts.sum()
    quota = np.minimum(np.floor(exact).astype(np.int64), capacity)
    remainder = exact - quota
    while quota.sum() < total:
        room = quota < capacity
        if not room.any():
            raise ValueError(f"cannot place {total} examples in classes of sizes {capacity.tolist()}")
        best = int(np.argmax(np.where(room, remainder, -np.inf)))
        quota[best] += 1
        remainder[best] -= 1
    return quota


def choose_indices(labels: np.ndarray, spec: SplitSpec) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the training file for train and validation, each sorted, disjoint."""
    n = labels.shape[0]
    if spec.train_size + spec.val_size > n:
        raise ValueError(f"train_size + val_size exceeds the {n} available examples")
    rng = np.random.default_rng(spec.seed) if spec.seed is not None else None
    if not spec.stratify:
        order = rng.permutation(n) if rng is not None else np.arange(n)
        train, val = order[: spec.train_size], order[n - spec.val_size :]
    else:
        counts = np.bincount(labels, minlength=N_CLASSES)
        val_quota = _quotas(spec.val_size, counts, counts)
        train_quota = _quotas(spec.train_size, counts, counts - val_quota)
        train_parts, val_parts = [], []
        for c in range(N_CLASSES):
            members = np.flatnonzero(labels == c)
            if rng is not None:
                members = rng.permutation(members)
            train_parts.append(members[: train_quota[c]])
            val_parts.append(members[len(members) - val_quota[c] :])
        train, val = np.concatenate(train_parts), np.concatenate(val_parts)
    return np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)


def to_features(images: np.ndarray) -> np.ndarray:
    """``uint8`` images ``(n, 28, 28)`` as ``float32`` rows ``(n, 784)`` in [0, 1]."""
    return images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)


def class_counts(y: np.ndarray) -> list[int]:
    return np.bincount(np.asarray(y), minlength=N_CLASSES).astype(int).tolist()


def write_split(raw_dir: str | Path, splits_dir: str | Path, spec: SplitSpec = SplitSpec()) -> Path:
    """Build the split of SPEC from the cached IDX files, or reuse it if already stored; return its folder."""
    raw_dir, splits_dir = Path(raw_dir), Path(splits_dir)
    digests = {file.name: sha256_file(raw_dir / file.name) for file in MNIST_FILES}
    final = splits_dir / split_key(spec, digests)
    if (final / MANIFEST).is_file():
        try:
            bad = verify_split(final)
        except (ValueError, KeyError, TypeError, OSError):  # the manifest itself is damaged
            bad = [MANIFEST]
        if not bad:
            return final
        if not writable(splits_dir):
            raise ReadOnlyData(
                f"the stored split {final} is corrupted ({', '.join(bad)}) and {splits_dir} cannot be written: "
                "set REDES_DATA_DIR to a folder this user can write, or rebuild the split where it can be written"
            )
        log.warning(
            "the stored split %s is corrupted (SHA-256 of %s does not match its manifest); rebuilding it from the "
            "verified MNIST files",
            final,
            ", ".join(bad),
        )
        _discard(final)
    elif not writable(splits_dir):
        raise not_stored(spec, splits_dir)

    train_images = read_idx(raw_dir / TRAIN_IMAGES.name, expect_ndim=3)
    train_labels = read_idx(raw_dir / TRAIN_LABELS.name, expect_ndim=1)
    test_images = read_idx(raw_dir / TEST_IMAGES.name, expect_ndim=3)
    test_labels = read_idx(raw_dir / TEST_LABELS.name, expect_ndim=1)
    train_idx, val_idx = choose_indices(train_labels, spec)
    arrays = {
        "X_train": to_features(train_images[train_idx]),
        "y_train": train_labels[train_idx].astype(np.int64),
        "X_val": to_features(train_images[val_idx]),
        "y_val": train_labels[val_idx].astype(np.int64),
        "X_test": to_features(test_images),
        "y_test": test_labels.astype(np.int64),
        "train_indices": train_idx,
        "val_indices": val_idx,
    }

    splits_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(dir=splits_dir, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        files = {}
        for name, array in arrays.items():
            path = temp / f"{name}.npy"
            np.save(path, array)
            files[name] = {
                "file": path.name,
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "sha256": sha256_file(path),
            }
        manifest = {
            "format": FORMAT_VERSION,
            "key": final.name,
            "spec": asdict(spec),
            "sizes": {part: int(arrays[f"y_{part}"].shape[0]) for part in ("train", "val", "test")},
            "class_counts": {part: class_counts(arrays[f"y_{part}"]) for part in ("train", "val", "test")},
            "sources": digests,
            "arrays": files,
            "digest": hashlib.sha256("".join(files[a]["sha256"] for a in ARRAYS).encode()).hexdigest(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for path in temp.iterdir():
            _fsync(path)
            path.chmod(0o444)
        temp.chmod(0o755)
        try:
            os.rename(temp, final)
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
            # another process stored the same split first: keep theirs
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final


def check_stored_if_read_only(data_dir: str | Path, spec: SplitSpec) -> None:
    """Before any work: a data folder that cannot be written must already hold SPEC's split (none can be built there).

    The key is that of the canonical MNIST files, the only ones a cache keeps.
    """
    splits_dir = Path(data_dir) / "splits"
    if writable(splits_dir):
        return
    key = split_key(spec, {file.name: file.sha256 for file in MNIST_FILES})
    if not (splits_dir / key / MANIFEST).is_file():
        raise not_stored(spec, splits_dir)


def not_stored(spec: SplitSpec, splits_dir: Path) -> ReadOnlyData:
    options = f"--train-size {spec.train_size} --val-size {spec.val_size}"
    options += (f" --seed {spec.seed}" if spec.seed is not None else "") + (" --stratify" if spec.stratify else "")
    return ReadOnlyData(
        f"the split of {options} is not stored in {splits_dir}, which cannot be written: build it once where it can "
        f"(`redes data {options}`), use a split it holds, or set REDES_DATA_DIR to a folder this user can write"
    )


def _discard(folder: Path) -> None:
    """Move a corrupted split out of the way (atomically), then delete it; its files are read-only."""
    aside = folder.with_name(f".{folder.name}.corrupt-{os.getpid()}")
    try:
        os.rename(folder, aside)
    except FileNotFoundError:  # another process discarded it first
        return
    aside.chmod(0o755)
    for path in aside.iterdir():
        path.chmod(0o644)
    shutil.rmtree(aside, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def read_manifest(path: str | Path) -> dict:
    """The manifest of a split folder (or the manifest file itself)."""
    path = Path(path)
    manifest_path = path if path.name == MANIFEST else path / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} does not exist: {path} is not a stored split (run `redes data`)")
    return json.loads(manifest_path.read_text())


def load_split(path: str | Path) -> Split:
    """Open a stored split; its arrays are read-only memory maps (nothing is copied into memory)."""
    path = Path(path)
    if path.name == MANIFEST:
        path = path.parent
    manifest = read_manifest(path)
    arrays = {}
    for name in ARRAYS:
        entry = manifest["arrays"][name]
        array = np.load(path / entry["file"], mmap_mode="r", allow_pickle=False)
        if list(array.shape) != entry["shape"] or str(array.dtype) != entry["dtype"]:
            raise ValueError(
                f"{path / entry['file']}: shape {array.shape} {array.dtype}, the manifest says "
                f"{tuple(entry['shape'])} {entry['dtype']}"
            )
        arrays[name] = array
    return Split(path=path, manifest=manifest, **arrays)


def verify_split(path: str | Path) -> list[str]:
    """The files of a stored split whose SHA-256 no longer matches the manifest, or the manifest itself when its
    sizes, class counts or option sizes do not match the arrays (empty: intact)."""
    path = Path(path)
    manifest = read_manifest(path)
    bad = []
    for entry in manifest["arrays"].values():
        file = path / entry["file"]
        if not file.is_file() or sha256_file(file) != entry["sha256"]:
            bad.append(entry["file"])
    if not bad and manifest_disagrees(path, manifest):
        bad.append(MANIFEST)
    return bad


def manifest_disagrees(path: Path, manifest: dict) -> str | None:
    """What the manifest says that its arrays do not (sizes, per-class counts, shapes, the options' sizes), or None."""
    spec = manifest["spec"]
    for part in ("train", "val", "test"):
        entry = manifest["arrays"][f"y_{part}"]
        y = np.load(path / entry["file"], mmap_mode="r", allow_pickle=False)
        if manifest["sizes"][part] != y.shape[0] or list(entry["shape"]) != list(y.shape):
            return f"{part} size {manifest['sizes'][part]} but {y.shape[0]} labels"
        if manifest["class_counts"][part] != class_counts(y):
            return f"{part} class counts {manifest['class_counts'][part]} but {class_counts(y)}"
        x_entry = manifest["arrays"][f"X_{part}"]
        if list(x_entry["shape"]) != [y.shape[0], N_PIXELS]:
            return f"X_{part} shape {x_entry['shape']} but {y.shape[0]} labels of {N_PIXELS} pixels"
    if (spec["train_size"], spec["val_size"]) != (manifest["sizes"]["train"], manifest["sizes"]["val"]):
        return f"options train_size={spec['train_size']} val_size={spec['val_size']} but sizes {manifest['sizes']}"
    return None
