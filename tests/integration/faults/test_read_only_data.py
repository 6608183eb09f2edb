"""A read-only REDES_DATA_DIR (a shared MNIST cache on a read-only mount) serves what it holds.

The folder is a real tmpfs: filled by `prepare-data` (the verified files and one split), then
remounted read-only, so even root cannot write there. `redes train` on the stored split trains;
a split it does not hold is one line naming the `redes data` command that builds it (exit 2),
before any training, and nothing is written anywhere in that folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.prepare_data import prepare_data

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]

SIZES = ["--train-size", "1000", "--val-size", "1000"]
REDES = str(Path(sys.executable).with_name("redes"))


@pytest.fixture
def read_only_data(tmp_path, mnist_dir):
    """A data folder holding the verified MNIST files and the 1,000 / 1,000 split, mounted read-only."""
    from support.mounts import tmpfs

    with tmpfs(tmp_path / "shared-mnist", "size=160m") as folder:
        prepare_data(mirrors=[str(mnist_dir)], data_dir=str(folder), train_size=1000, val_size=1000, track=False)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_a_read_only_data_folder_serves_the_split_it_holds_and_names_the_command_for_another(
    tmp_path, redes_env, read_only_data
):
    env = redes_env(tmp_path / "optuna-journal.log", REDES_DATA_DIR=str(read_only_data))
    before = listing(read_only_data)

    trained = subprocess.run([REDES, "train", "--epochs", "1", *SIZES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "accuracy" in trained.stdout.lower(), trained.stdout

    other = subprocess.run(
        [REDES, "train", "--epochs", "1", "--train-size", "2000", "--val-size", "1000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert other.returncode == 2, other.stdout + other.stderr
    assert "Traceback" not in other.stderr and "Task run" not in other.stderr  # refused before any flow ran
    assert "the split of --train-size 2000 --val-size 1000 is not stored in" in other.stderr, other.stderr
    assert "`redes data --train-size 2000 --val-size 1000`" in other.stderr

    stored = subprocess.run([REDES, "data", "--no-track", *SIZES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    shuffled = subprocess.run([REDES, "data", "--no-track", "--seed", "3", *SIZES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert shuffled.returncode == 2 and "Traceback" not in shuffled.stderr, shuffled.stdout + shuffled.stderr
    assert "`redes data --train-size 1000 --val-size 1000 --seed 3`" in shuffled.stderr
    assert listing(read_only_data) == before


def test_a_read_only_data_folder_without_mnist_is_refused_before_any_work(tmp_path, redes_env):
    from support.mounts import tmpfs

    with tmpfs(tmp_path / "empty", "ro,size=64k") as folder:
        env = redes_env(tmp_path / "optuna-journal.log", REDES_DATA_DIR=str(folder))
        done = subprocess.run([REDES, "train", "--epochs", "1", *SIZES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is read-only or not writable by this user) and holds no MNIST yet" in done.stderr, done.stderr
