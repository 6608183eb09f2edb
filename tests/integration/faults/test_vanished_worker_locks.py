"""Issue #17: a worker cut off inside one of Optuna's transactions held a row lock (the study's, to create a trial)
until TCP gave up, ~15 min, and every other worker waited on it instead of failing the cut trial by its heartbeat.

A vanished machine answers no TCP keepalive probe, so the server ends its session (the namespaced workers' test cuts
a real link); a live worker hung inside a transaction answers them, and idle_in_transaction_session_timeout ends it:
here a connection of the storage's own engine takes the study row's lock and falls silent."""

from __future__ import annotations

import time

import pytest
import sqlalchemy

from tracking import studies

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_sessions_carry_the_timeouts_that_free_a_vanished_workers_locks(optuna_postgres_url):
    storage = studies.open_storage(optuna_postgres_url, heartbeat_interval=2, grace_period=6)
    try:
        with storage.engine.connect() as connection:
            shown = {name: connection.exec_driver_sql(f"SHOW {name}").scalar() for name in
                     ("idle_in_transaction_session_timeout", "tcp_keepalives_idle", "tcp_keepalives_count", "tcp_user_timeout")}  # fmt: skip
        assert shown == {"idle_in_transaction_session_timeout": "1min", "tcp_keepalives_idle": "1",
                         "tcp_keepalives_count": "3", "tcp_user_timeout": "6000"}  # fmt: skip
        assert storage.engine.pool._pre_ping
    finally:
        storage.engine.dispose()


def test_a_hung_session_inside_a_transaction_loses_its_lock(optuna_postgres_url, monkeypatch):
    monkeypatch.setattr(studies, "IDLE_IN_TRANSACTION_MIN", 5)  # the 60 s floor, shortened; its value is checked above
    storage = studies.open_storage(optuna_postgres_url, heartbeat_interval=1, grace_period=2)
    other = sqlalchemy.create_engine(optuna_postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        study_id = storage.create_new_study(directions=[studies.optuna.study.StudyDirection.MAXIMIZE], study_name="locks")
        silent = storage.engine.connect()
        silent.begin()
        silent.exec_driver_sql(f"SELECT * FROM studies WHERE study_id = {study_id} FOR UPDATE")  # what creating a trial takes
        started = time.monotonic()
        with other.connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '30s'")  # fails the test instead of waiting ~15 min
            connection.exec_driver_sql(f"SELECT * FROM studies WHERE study_id = {study_id} FOR UPDATE")
        waited = time.monotonic() - started
        assert 4.5 < waited < 30, waited  # the (shortened) floor of idle_in_transaction_session_timeout, not the lock_timeout
        with pytest.raises(sqlalchemy.exc.DBAPIError):  # the server ended the silent session
            silent.exec_driver_sql("SELECT 1")
        silent.invalidate()
        assert storage.get_study_id_from_name("locks") == study_id  # pre-ping: the pool's next connection works
    finally:
        other.dispose()
        storage.engine.dispose()
