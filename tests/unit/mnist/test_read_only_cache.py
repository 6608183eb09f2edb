"""A read-only MNIST cache (a real read-only tmpfs: even root cannot write there) is read, never repaired:
what it lacks, or a file it holds with the wrong digest, is one error naming the folder and the way out."""

from __future__ import annotations

import subprocess

import pytest

from mnist.checksums import MNIST_FILES, TRAIN_LABELS
from mnist.download import cached_files, fetch_mnist, holds_mnist
from mnist.errors import ReadOnlyData
from mnist.folders import writable


@pytest.fixture
def read_only_raw(tmp_path):
    """A raw folder holding one file with the wrong bytes under an MNIST name, mounted read-only."""
    from support.mounts import tmpfs

    with tmpfs(tmp_path / "data", "size=1m") as folder:
        raw = folder / "raw"
        raw.mkdir()
        (raw / TRAIN_LABELS.name).write_bytes(b"not MNIST")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield raw


def test_the_read_only_folder_is_seen_as_such_and_as_missing_files(read_only_raw):
    assert not writable(read_only_raw) and not writable(read_only_raw / "not-yet" / "made")
    assert writable(read_only_raw.parents[1])
    assert not holds_mnist(read_only_raw)


def test_a_wrong_file_in_a_read_only_cache_is_an_error_not_a_deletion(read_only_raw):
    with pytest.raises(ReadOnlyData, match=rf"{TRAIN_LABELS.name} has the wrong SHA-256 and .* cannot be written"):
        cached_files(read_only_raw)
    assert (read_only_raw / TRAIN_LABELS.name).read_bytes() == b"not MNIST"


def test_a_read_only_cache_lacking_files_asks_no_mirror(tmp_path, read_only_raw):
    subprocess.run(["mount", "-o", "remount,rw", str(read_only_raw.parent)], check=True)  # the wrong file goes first
    (read_only_raw / TRAIN_LABELS.name).unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_raw.parent)], check=True)
    never_asked = tmp_path / "no-such-mirror"  # asked, it would end in MirrorsExhausted instead
    with pytest.raises(ReadOnlyData) as caught:
        fetch_mnist([str(never_asked)], read_only_raw)
    message = str(caught.value)
    assert all(file.name in message for file in MNIST_FILES)
    assert "run `redes data` once where it can be written, or set REDES_DATA_DIR" in message
