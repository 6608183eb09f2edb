"""The embedded MLflow database keeps SQLite's write-ahead log: a trial's ten or so commits each append to
one file with one fsync instead of three, and `redes ui` reading it no longer blocks a study writing it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing

from runtime.settings import Settings
from tracking import mlflow_store, stores


def journal_mode(path) -> str:
    with closing(sqlite3.connect(path)) as database:
        return database.execute("PRAGMA journal_mode").fetchone()[0]


def test_a_new_store_is_opened_in_write_ahead_log_mode_and_another_process_reads_what_was_written(tmp_path):
    path = tmp_path / "mlflow.db"
    settings = Settings.from_env({"MLFLOW_TRACKING_URI": f"sqlite:///{path}"}, workdir=tmp_path)
    client = mlflow_store.configure(settings)
    assert journal_mode(path) == "wal"
    run = client.create_run(mlflow_store.experiment_id(client, "wal", settings)).info.run_id
    client.log_metric(run, "val/accuracy", 0.5)
    read = subprocess.run(
        [sys.executable, "-c", f"import sqlite3; print(sqlite3.connect({str(path)!r}).execute("
         f"\"select value from latest_metrics where run_uuid = '{run}'\").fetchone()[0])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert read.stdout.strip() == "0.5"


def test_a_database_busy_when_the_mode_is_set_stays_as_it_was(tmp_path):
    path = tmp_path / "mlflow.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("create table t (a)")
        holder.execute("begin exclusive")
        stores.use_write_ahead_log(path, timeout=0.1)  # waits its timeout, then leaves the file alone
        holder.execute("commit")
    assert journal_mode(path) == "delete"


def test_moving_a_damaged_database_aside_takes_its_write_ahead_log_along(tmp_path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"x")
    assert f"mv {path} {path}.damaged)" in stores.move_aside_hint(path)
    (tmp_path / "mlflow.db-wal").write_bytes(b"x")
    hint = stores.move_aside_hint(path)
    assert f"mkdir {path}.damaged && mv {path} {path}-wal {path}.damaged/" in hint
