"""The worker loop of a study outlives broken process pools: trials owed run in a fresh pool,
trials that were running are failed and queued again, and repeated deaths end in a clear error.

Workers are simulated on a real journal-file study: a "death" leaves a RUNNING trial owned by
a process that is gone and raises BrokenProcessPool, as Python's pool does.
"""

from __future__ import annotations

import logging
import subprocess
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace

import optuna
import pytest

from flows import study_workers
from tracking import studies
from tracking.orphans import process_identity


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


class FakeFuture:
    def __init__(self, error: BaseException | None = None):
        self.error = error

    def result(self):
        if self.error:
            raise self.error


class Pools:
    """Every pool's workers: each round runs its share; the rounds listed in ``deaths`` break."""

    def __init__(self, study: optuna.Study, deaths: set[int]):
        self.study, self.deaths, self.round, self.submitted = study, deaths, 0, []

    def submit(self, context, share, timeout, index, blas_threads):
        self.submitted.append((self.round, share))
        dies = self.round in self.deaths and index == 0
        for n in range(share):
            trial = self.study.ask()
            trial.suggest_float("eta", 0.1, 1.0)
            if dies and n == share - 1:  # killed while this trial ran
                trial.set_user_attr("worker_pid", dead_pid())
                trial.set_user_attr("worker_host", process_identity()["worker_host"])
                return FakeFuture(BrokenProcessPool("A process in the process pool was terminated abruptly"))
            self.study.tell(trial, 0.5)
        return FakeFuture()

    def fresh_pool(self, max_workers, initializer=None, initargs=()):
        """Stands in for prefect's ProcessPoolTaskRunner (a real pool's processes run INITIALIZER first)."""
        assert initializer is not None, "pool processes must watch for signals and their parent"
        pools = self

        class Runner:
            def __enter__(self):
                pools.round += 1
                return self

            def __exit__(self, *exc):
                return None

            def submit(self, task, parameters):
                return pools.submit(**{k: parameters[k] for k in ("context", "timeout", "blas_threads")},
                                    share=parameters["n_trials"], index=parameters["worker_index"])  # fmt: skip

        return Runner()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    storage = str(tmp_path / "journal.log")
    study = optuna.create_study(study_name="s", storage=studies.open_storage(storage), direction="maximize")
    monkeypatch.setattr(study_workers, "get_run_logger", lambda: logging.getLogger("test"))
    monkeypatch.setattr(study_workers, "wait", lambda futures, timeout: (set(futures), set()))  # all done at once
    monkeypatch.setattr("tracking.mlflow_store.configure", lambda *a, **k: SimpleNamespace())

    def make(deaths: set[int]) -> Pools:
        pools = Pools(study, deaths)
        monkeypatch.setattr(study_workers, "_fork_server_pool", lambda: pools.fresh_pool)
        return pools

    context = SimpleNamespace(study_name="s", storage=storage, settings=None)
    return study, context, make


def run(context, pools, trials=8, workers=2):
    task = SimpleNamespace(submit=pools.submit)
    study_workers.run_workers(task, context, trials, None, workers, 1, on_progress=lambda finished: None)


def test_without_deaths_the_trials_are_shared_once(setup):
    study, context, make = setup
    pools = make(deaths=set())
    run(context, pools)
    assert pools.submitted == [(0, 4), (0, 4)]
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 8


def test_a_death_fails_the_running_trial_queues_it_again_and_a_fresh_pool_runs_what_is_owed(setup):
    study, context, make = setup
    pools = make(deaths={0})
    run(context, pools)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 8 and states.count("FAIL") == 1 and "RUNNING" not in states
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert "died" in failed.user_attrs["fail_reason"]
    assert pools.submitted[2:] == [(1, 1)]  # only the failed trial's slot is owed
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == failed.number)
    assert retry.params == failed.params and retry.state.name == "COMPLETE"


def test_workers_that_keep_dying_stop_the_study_with_what_to_do(setup):
    study, context, make = setup
    pools = make(deaths=set(range(study_workers.MAX_RESTARTS + 1)))
    with pytest.raises(study_workers.WorkersKeepDying, match="dmesg.*fewer --workers"):
        run(context, pools)
    assert pools.round == study_workers.MAX_RESTARTS  # no pool started after the last death
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) >= 4  # what finished is kept


ADOPTION = """
import multiprocessing, os, signal, sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from flows import study_workers

def parent_pid():
    return os.getppid()

def forked_from(server):
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
    try:
        return pool.submit(parent_pid).result(timeout=60)
    finally:
        pool.shutdown()

if __name__ == "__main__":
    forkserver.ensure_running()  # as `redes up`'s launcher does
    server = forkserver._forkserver
    first = server._forkserver_pid
    if sys.argv[1] == "dead":
        os.kill(first, signal.SIGKILL)
        os.waitpid(first, 0)
    child = os.fork()
    if child == 0:  # a command forked from the launcher
        try:
            study_workers._adopt_inherited_fork_server(server)
            server.ensure_running()
            print(first, forked_from(server), server._forkserver_pid, flush=True)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
"""


@pytest.mark.parametrize("case", ["alive", "dead"])
def test_a_command_forked_from_the_launcher_uses_its_fork_server_or_starts_one(tmp_path, case):
    """Python's own check of its fork server (waitpid) raises in a process that did not start it."""
    import sys

    script = tmp_path / "adopt.py"
    script.write_text(ADOPTION)
    done = subprocess.run([sys.executable, str(script), case], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    first, parent, used = map(int, done.stdout.split())
    if case == "alive":
        assert parent == used == first  # the worker was forked by the inherited server
    else:
        assert parent == used != first  # a fresh one, started by the command
