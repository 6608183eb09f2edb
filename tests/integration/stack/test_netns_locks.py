"""Issue #17: a worker cut off while its PostgreSQL session held a row lock stalled the other workers until TCP gave up
(~15 min; before the fix, a lock taken the same way was still held when a 90 s lock_timeout ran out).

A machine of its own (network namespace, Unix user) opens the study storage as the workers do, takes the study row's
lock (what creating a trial takes) and stays inside its transaction; its link is cut; the server side must get the
lock within the grace period (the server's keepalive probes go unanswered and it ends the session). Root, Linux.
"""

from __future__ import annotations

import signal
import time

import pytest
import sqlalchemy
from support.netns import WORKER_VENV, lab_of, start_postgres

from runtime.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GRACE = 6  # seconds: the namespaced workers' test's heartbeat grace period

HOLD_LOCK = """
import sys, time
from tracking import studies
import optuna
storage = studies.open_storage(sys.argv[1], heartbeat_interval=2, grace_period=int(sys.argv[2]))
study_id = storage.create_new_study(directions=[optuna.study.StudyDirection.MAXIMIZE], study_name="locks")
connection = storage.engine.connect()
connection.exec_driver_sql(f"SELECT * FROM studies WHERE study_id = {study_id} FOR UPDATE")
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def lab(repo_root):
    yield from lab_of(repo_root)


def test_a_cut_off_workers_lock_is_freed_within_the_grace_period(lab, repo_root):
    pg = start_postgres(lab, free_port(lab.server_address), ("optuna",))
    worker = lab.add_worker()
    log = lab.root / "logs" / "holder.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(worker.user.home), "LANG": "C.UTF-8", "DO_NOT_TRACK": "true",
           "TMPDIR": str(lab.user_folder(worker.user, "tmp"))}  # fmt: skip
    argv = [str(repo_root / WORKER_VENV / "bin" / "python"), "-c", HOLD_LOCK, pg.url("optuna", host=lab.server_address), str(GRACE)]
    holder = lab.start(lab.in_worker(worker, argv), env=env, cwd=worker.user.home, log=log, stop_signal=signal.SIGKILL)
    deadline = time.monotonic() + 120
    while "locked" not in (log.read_text() if log.exists() else ""):
        assert holder.poll() is None and time.monotonic() < deadline, log.read_text() if log.exists() else "no output"
        time.sleep(0.3)

    lab.cut(worker)
    engine = sqlalchemy.create_engine(pg.url("optuna"))
    try:
        started = time.monotonic()
        with engine.connect() as connection:
            connection.exec_driver_sql("SET lock_timeout = '90s'")  # the unfixed session held it longer than that
            connection.exec_driver_sql("SELECT * FROM studies WHERE study_name = 'locks' FOR UPDATE")
        waited = time.monotonic() - started
    finally:
        engine.dispose()
        lab.restore(worker)
    assert waited < GRACE + 3, waited
    ended = (lab.root / "logs" / "postgres.log").read_text()
    assert "could not receive data from client: Connection timed out" in ended, ended[-2000:]
