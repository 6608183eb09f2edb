"""Issue #18: a damaged Optuna journal or MLflow database is one line naming the file and what to do (exit 1,
the file untouched); continuing a study on another split is refused unless --force."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app

FIXED = {"epochs": 30, "patience": 5, "seed": 0, "eta_schedule": False}
SPLIT = {"train_size": 1000, "val_size": 100, "seed": None, "stratify": False}


def one_line(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def journal(workdir, monkeypatch):
    """A journal holding study 's' (default space, split SPLIT) with three finished trials."""
    import optuna

    from tracking import studies
    from tracking.search_space import load_space

    path = workdir / "optuna-journal.log"
    monkeypatch.setenv("REDES_OPTUNA_STORAGE", str(path))
    study = studies.create_or_load("s", studies.open_storage(str(path)), load_space(None, FIXED), split=SPLIT)
    for _ in range(3):
        study.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))
    return path


@pytest.mark.parametrize("damage", ["truncated", "garbage appended"])
def test_a_damaged_journal_is_one_line_naming_it_exit_1(workdir, journal, damage):
    data = journal.read_bytes()
    journal.write_bytes(data[:-25] if damage == "truncated" else data + b'{"op_code": 5, "worker_id"\n')
    before = journal.read_bytes()
    result = CliRunner().invoke(app, ["study", "--name", "s", "--train-size", "1000", "--val-size", "100"])
    assert result.exit_code == 1, result.output
    output = one_line(result.output)
    assert str(journal) in output and "damaged" in output and "move it aside" in output
    assert "Traceback" not in output and "JSONDecodeError" not in output
    assert journal.read_bytes() == before
    assert sorted(p.name for p in workdir.iterdir()) == ["optuna-journal.log"]


@pytest.mark.parametrize("damage", ["truncated", "not a database"])
def test_a_damaged_mlflow_database_is_one_line_naming_it_exit_1(workdir, mlflow_db, damage):
    from mlflow.tracking import MlflowClient

    database = workdir / "mlflow.db"
    MlflowClient(mlflow_db).create_experiment("e")
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage" * 1000)
    before = database.read_bytes()
    result = CliRunner().invoke(app, ["train", "--epochs", "1", "--train-size", "100", "--val-size", "100"])
    assert result.exit_code == 1, result.output
    output = one_line(result.output)
    assert str(database) in output and "damaged" in output and "move it aside" in output
    assert "Traceback" not in output and "malformed" not in output.split("damaged")[0]
    assert database.read_bytes() == before
    assert not (workdir / "data").exists()


def test_continuing_a_study_on_another_split_needs_force(workdir, journal):
    before = journal.read_bytes()
    result = CliRunner().invoke(app, ["study", "--name", "s", "--train-size", "2000", "--val-size", "100"])
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert "--train-size 1000 --val-size 100" in output and "--train-size 2000 --val-size 100" in output
    assert "--force" in output
    assert journal.read_bytes() == before


def test_force_turns_the_refusal_into_a_warning_and_the_same_split_passes(journal):
    from tracking import studies
    from tracking.search_space import load_space

    space = load_space(None, FIXED)
    other = {**SPLIT, "train_size": 2000}
    warning = studies.check_existing_space("s", str(journal), space, other, force=True)
    assert "--train-size 1000" in warning and "would not be comparable" in warning
    assert studies.check_existing_space("s", str(journal), space, SPLIT) is None
    with pytest.raises(studies.StudyError, match="--force"):
        studies.check_existing_space("s", str(journal), space, other)


def test_a_new_study_records_its_split_once(tmp_path):
    from tracking import studies
    from tracking.search_space import load_space

    storage = studies.open_storage(str(tmp_path / "j.log"))
    study = studies.create_or_load("n", storage, load_space(None, FIXED), split=SPLIT)
    studies.create_or_load("n", storage, load_space(None, FIXED), split={**SPLIT, "val_size": 5})
    assert json.loads(study.user_attrs[studies.SPLIT_ATTR]) == SPLIT


def test_a_full_disk_is_recognised_through_the_errors_that_wrap_it():
    import errno
    import sqlite3

    from tracking.stores import is_disk_full

    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise RuntimeError("could not log the artifact") from exc
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_full(ValueError("database is locked"))


def test_a_full_disk_frees_the_reserve_and_stops_the_study_in_every_process(tmp_path, monkeypatch):
    """The process that meets the stores' disk full names it in the trial's reason, deletes the reserve (room to
    record the ends) and stops; another process, seeing the reserve gone at its next epoch end, stops too. Another
    disk full (an artifact folder mounted apart) only fails the run."""
    import os
    import shutil
    import sqlite3

    from tracking import interruption, stores

    monkeypatch.delenv(stores.ENV_RESERVE, raising=False)
    interruption.reset()
    try:
        with stores.disk_reserve(tmp_path) as reserve:
            assert reserve.stat().st_size == stores.RESERVE_BYTES
            stores.check_reserve()
            assert not interruption.stop_requested()
            full = sqlite3.OperationalError("database or disk is full")
            # another disk full (the stores' has room): the run fails with the reason, the study goes on
            assert stores.failure_reason(full) == "OperationalError: database or disk is full"
            assert reserve.exists() and not interruption.stop_requested()
            room = shutil.disk_usage(tmp_path)
            monkeypatch.setattr(stores.shutil, "disk_usage", lambda path: room._replace(free=4096))
            assert stores.failure_reason(full) == "disk full: database or disk is full"
            assert not reserve.exists() and interruption.why() == stores.DISK_FULL
            interruption.reset()  # another process: only the reserve is gone
            stores.check_reserve()
            assert interruption.why() == stores.DISK_FULL
        assert stores.ENV_RESERVE not in os.environ
        interruption.reset()
        assert stores.failure_reason(ValueError("bad")) == "ValueError: bad"
        assert not interruption.stop_requested()
    finally:
        interruption.reset()
