"""Ctrl-C, SIGTERM and `kill -9` of `redes study --workers 2`, and the loss of Prefect's server mid-study
(issue #18): the study stops within seconds, no new trial starts, every trial and run is recorded, and
no process redes started is left running.

Each study runs in its own session, as a terminal's foreground job (a job started with `&` in a
script would ignore SIGINT): the terminal's Ctrl-C is `os.killpg(pid, SIGINT)`. The tests that need
the Prefect server redes starts for its workers run without PREFECT_API_URL; the others use the
session's Prefect test API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime, timedelta

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from support.processes import processes_in, wait_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

NAME = "signals"
TRIALS = 40


class Study:
    """`redes study` started as a terminal's foreground job in tmp_path; its trials and runs."""

    def __init__(self, tmp_path, env, study_cli, *, epochs: int = 30):
        self.tmp_path, self.env, self.cli = tmp_path, env, study_cli
        self.journal = env["REDES_OPTUNA_STORAGE"]
        self.log = tmp_path / "study.log"
        self.process = subprocess.Popen(
            study_cli.study_command(NAME, TRIALS, workers=2, epochs=epochs, patience=epochs), cwd=tmp_path, env=env,
            start_new_session=True, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_mid_trial(self) -> datetime:
        """Once a trial with its MLflow run started after a complete one ended (it has most of its epochs
        ahead); the time then (Optuna's clock)."""

        def ready(trials):
            ended = [t.datetime_complete for t in trials if t.state == TrialState.COMPLETE]
            return ended and any(
                t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs and t.datetime_start > max(ended)
                for t in trials
            )

        self.cli.wait_for_trials(self.process, NAME, self.journal, ready, "a trial ran after a complete one", timeout=400)
        return datetime.now()

    def signal(self, sig: int, *, group: bool = False) -> float:
        (os.killpg if group else os.kill)(self.process.pid, sig)
        return time.monotonic()

    def wait(self, timeout: float) -> tuple[int, float]:
        started = time.monotonic()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"redes study still running {timeout} s after the signal:\n{self.output()[-3000:]}")
        return code, time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def trials(self):
        return self.cli.trials_of(NAME, self.journal)

    def client(self) -> MlflowClient:
        return MlflowClient(self.env["MLFLOW_TRACKING_URI"])

    def kill_all(self) -> None:
        for line in processes_in(self.tmp_path):
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def start_study(tmp_path, redes_env, study_cli):
    """Start a study (own Prefect server with ``own_prefect``); whatever is left is killed at the end."""
    started = []

    def start(*, own_prefect: bool = False, epochs: int = 30) -> Study:
        env = redes_env(tmp_path / "optuna-journal.log")
        if own_prefect:
            env.pop("PREFECT_API_URL")  # redes starts Prefect's temporary server for its workers
        study = Study(tmp_path, env, study_cli, epochs=epochs)
        started.append(study)
        return study

    yield start
    for study in started:
        study.kill_all()


def assert_stopped_cleanly(study: Study, signalled_at: datetime) -> None:
    """No trial left RUNNING, none started after the signal; the stopped ones FAIL `interrupted` with
    KILLED runs and their parameters queued again; the parent run KILLED."""
    trials = study.trials()
    client = study.client()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    late = [t.number for t in trials if t.datetime_start and t.datetime_start > signalled_at + timedelta(seconds=1)]
    assert not late, f"trials {late} started after the signal"
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert interrupted, "the trial running at the signal was not stopped"
    for trial in interrupted:
        assert trial.user_attrs["fail_reason"] == "interrupted"
        if "mlflow_run_id" in trial.user_attrs:
            run = client.get_run(trial.user_attrs["mlflow_run_id"])
            assert run.info.status == "KILLED"
            assert run.data.tags["stop_reason"] == "interrupted" and run.data.tags["optuna.trial_state"] == "FAIL"
        (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
        assert retry.state == TrialState.WAITING and retry.system_attrs["fixed_params"] == trial.params
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert client.get_run(trial.user_attrs["mlflow_run_id"]).info.status == "FINISHED"
    (parent,) = client.search_runs([client.get_experiment_by_name(NAME).experiment_id], filter_string="tags.kind = 'study'")
    assert parent.info.status == "KILLED"


def test_ctrl_c_stops_the_study_and_the_prefect_server_it_started(start_study, tmp_path):
    study = start_study(own_prefect=True)
    signalled_at = study.wait_mid_trial()
    study.signal(signal.SIGINT, group=True)  # the terminal's Ctrl-C
    code, seconds = study.wait(timeout=30)
    gone = wait_gone(tmp_path, timeout=30) + seconds
    print(f"Ctrl-C: exit {code} after {seconds:.1f} s, nothing left running after {gone:.1f} s")
    output = study.output()
    assert code == 130, output[-3000:]
    assert seconds <= 10 and gone <= 10, output[-3000:]
    assert "interrupted (SIGINT)" in output and "Traceback" not in output and "ConnectError" not in output
    assert_stopped_cleanly(study, signalled_at)


def test_sigterm_to_the_main_process_stops_everything(start_study, tmp_path):
    study = start_study(own_prefect=True)
    signalled_at = study.wait_mid_trial()
    study.signal(signal.SIGTERM)
    code, seconds = study.wait(timeout=30)
    gone = wait_gone(tmp_path, timeout=30) + seconds  # the pool and Prefect's server too, not orphaned
    print(f"SIGTERM: exit {code} after {seconds:.1f} s, nothing left running after {gone:.1f} s")
    assert code == 143 and seconds <= 10 and gone <= 10, study.output()[-3000:]
    assert "interrupted (SIGTERM)" in study.output()
    assert_stopped_cleanly(study, signalled_at)


def test_sigint_to_the_main_process_only_reaches_the_workers(start_study, tmp_path):
    study = start_study()
    signalled_at = study.wait_mid_trial()
    study.signal(signal.SIGINT)  # to the main PID alone: the pool processes hear it from redes
    code, seconds = study.wait(timeout=30)
    gone = wait_gone(tmp_path, timeout=30) + seconds
    print(f"SIGINT to the main PID: exit {code} after {seconds:.1f} s, nothing left running after {gone:.1f} s")
    assert code == 130 and seconds <= 10 and gone <= 10, study.output()[-3000:]
    assert_stopped_cleanly(study, signalled_at)
    assert len(study.trials()) < 10  # far from the 40 asked


def pool_workers(study: Study, folder) -> list[int]:
    """The PIDs of the pool's workers: the children of the fork server the study started."""

    def parent(pid: int) -> int:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])

    lines = processes_in(folder)
    (server,) = [
        int(line.split()[0]) for line in lines
        if "forkserver import main" in line and parent(int(line.split()[0])) == study.process.pid
    ]  # fmt: skip
    return [int(line.split()[0]) for line in lines if parent(int(line.split()[0])) == server]


def test_a_second_ctrl_c_forces_the_stop(start_study, tmp_path):
    """A worker stuck (here: stopped with SIGSTOP) keeps the clean stop from ending; the second Ctrl-C ends it.

    Without the stuck pool the clean stop can end before a second Ctrl-C arrives (seen in CI: 0.3 s).
    """
    study = start_study()
    study.wait_mid_trial()
    pool = pool_workers(study, tmp_path)
    assert len(pool) == 2, processes_in(tmp_path)
    for pid in pool:
        os.kill(pid, signal.SIGSTOP)
    study.signal(signal.SIGINT, group=True)
    time.sleep(0.3)
    assert study.process.poll() is None, f"the clean stop ended with the pool stopped:\n{study.output()[-3000:]}"
    sent = study.signal(signal.SIGINT, group=True)
    code, _ = study.wait(timeout=30)
    seconds = time.monotonic() - sent
    gone = wait_gone(tmp_path, timeout=30)
    print(f"second Ctrl-C: exit {code} {seconds:.1f} s after it")
    assert code == 130 and seconds <= 2 and gone <= 2, study.output()[-3000:]
    assert "second SIGINT" in study.output()


def test_kill_9_of_the_main_process_leaves_no_orphan(start_study, tmp_path, study_cli):
    study = start_study(own_prefect=True)
    study.wait_mid_trial()
    killed = study.signal(signal.SIGKILL)
    study.wait(timeout=10)
    wait_gone(tmp_path, timeout=30)
    seconds = time.monotonic() - killed
    print(f"kill -9: the workers and Prefect's server gone {seconds:.1f} s after it")
    assert seconds <= 10, processes_in(tmp_path)
    trials = study.trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING and "mlflow_run_id" not in t.user_attrs]
    # a trial the orphaned worker could record ends `interrupted`; the next invocation repairs the rest
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs["fail_reason"] == "interrupted"
            assert "parent process" in trial.user_attrs["interrupted_by"]


def test_losing_prefects_server_ends_the_study_with_one_line(start_study, tmp_path):
    study = start_study(own_prefect=True)
    study.wait_mid_trial()
    (server,) = [line for line in processes_in(tmp_path) if "uvicorn" in line and "prefect" in line]
    os.kill(int(server.split()[0]), signal.SIGKILL)
    lost_at = time.monotonic()
    code, _ = study.wait(timeout=60)
    seconds = time.monotonic() - lost_at
    gone = wait_gone(tmp_path, timeout=30)
    output = study.output()
    print(f"Prefect's server killed: exit {code} after {seconds:.1f} s")
    assert code == 1 and seconds <= 30 and gone <= 5, output[-3000:]
    errors = [line for line in output.splitlines() if "Prefect's server" in line]
    assert len(errors) == 1 and "exited" in errors[0], output[-3000:]
    assert "Traceback" not in output and "ConnectError" not in output, output[-3000:]
    trials = study.trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert [t for t in trials if t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "interrupted"]
    client = study.client()
    (parent,) = client.search_runs([client.get_experiment_by_name(NAME).experiment_id], filter_string="tags.kind = 'study'")
    assert parent.info.status == "KILLED" and "Prefect's server" in parent.data.tags["stop_reason"]
