"""Workers that really are other machines: a network namespace and a Unix user each (issue #17).

The servers run as a user of their own, on the lab's server address (and PostgreSQL on
127.0.0.1 too): a PostgreSQL cluster of the test's own, a Prefect server, an MLflow server
that proxies the artifacts (`--serve-artifacts --artifacts-destination`), and an HTTP mirror
of MNIST. Three workers, each in its own network namespace (a veth pair in a /30 of its own),
with its own host name and its own user, home, working folder, REDES_DATA_DIR and TMPDIR,
run `prefect worker start` from a venv every user can read. The workers reach the servers
only through the server address, and none of the server folders (PostgreSQL data, MLflow
artifact root, Prefect home) is open to them.

One deployment of the study flow (its search space passed as text, not as a path) is
triggered once per worker; each worker runs one flow run at a time (`--limit 1`), so each
takes one and runs its trials. Mid-trial, the link of whichever worker is first seen in the
middle of a trial is cut until Optuna's heartbeat has failed its trial, then restored.
Asserted: what issue #17 lists under "What must hold".

Run with `make test-netns` (root; it builds the venv the other users run). With
`REDES_NETNS_BENCH=1,2,3` it measures trials per hour with 1, 2 and 3 workers instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.netns import Lab, User, Worker, WORKER_VENV, lab_of, start_postgres
from support.spaces import space_toml
from tracking.study_request import StudyRequest

from runtime.servers import Server, free_port, wait_for_servers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPACE = space_toml(n_hidden=(1, 1), hidden_1=(32, 64, "log"), batch_size=[16, 32], activation=["sigmoid", "relu"])
EPOCHS = 3
TRIALS_PER_WORKER = 24
WORKERS = 3
HEARTBEAT = "2,6"  # seconds: a cut-off worker's trial is stale 4-6 s after the cut (its last beat)
#: Optuna fails a stale trial only when some worker starts a trial after that: a trial is cut only while the other
#: flow runs still have this many trials to start between them. A trial took 0.7 s (load 4) to 1.3 s (load 6-8)
#: here; at 0.4 s on idle cores, 18 trials each on the two other workers still last 7 s, beyond the grace period.
OTHERS_LEFT = 36
CUT_TIMEOUT = 360.0  # trigger to a trial seen mid-run: three flow runs start (imports, MNIST, split) on two cores
STALE_TIMEOUT = 180.0  # cut to the trial failed by the heartbeat
TRAIN_SIZE, VAL_SIZE = 2_000, 500
SERVER_TIMEOUT = 240.0
FLOW_RUN_TIMEOUT = 420.0
OFFLINE = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


# --- the lab ----------------------------------------------------------------------------------


class Machines:
    """The servers' side and the workers' side of the lab, started and stopped together."""

    def __init__(self, lab: Lab, repo_root: Path, mnist_dir: Path, workers: int, helpers):
        self.lab, self.repo_root, self.mnist_dir, self.helpers = lab, repo_root, mnist_dir, helpers
        self.venv = repo_root / WORKER_VENV
        self.address = lab.server_address
        self.server_user = lab.add_user("sv")
        self.workers = [lab.add_worker() for _ in range(workers)]
        self.reader = lab.add_reader()
        self.pool = f"pool-{lab.token}"
        self.server_folders = {
            name: lab.user_folder(self.server_user, name) for name in ("prefect-home", "prefect-ui", "mlflow-artifacts", "tmp")
        }
        self.logs = lab.root / "logs"
        self.worker_processes: dict[str, subprocess.Popen] = {}

    # the servers ------------------------------------------------------------------------------

    def start_servers(self) -> None:
        lab, address = self.lab, self.address
        self.pg = start_postgres(lab, free_port(address), ("prefect", "mlflow", "optuna"))
        prefect_port, mlflow_port, mirror_port = free_port(address), free_port(address), free_port(address)
        self.prefect_api = f"http://{address}:{prefect_port}/api"
        self.mlflow_uri = f"http://{address}:{mlflow_port}"
        self.mirror_url = f"http://{address}:{mirror_port}/"
        user = self.server_user
        env = {
            **OFFLINE, "PATH": f"{self.venv}/bin:/usr/bin:/bin", "HOME": str(user.home), "USER": user.name, "LANG": "C.UTF-8",
            "TMPDIR": str(self.server_folders["tmp"]), "PREFECT_HOME": str(self.server_folders["prefect-home"]),
        }  # fmt: skip
        bin_ = self.venv / "bin"
        servers = [
            ("prefect-server", [str(bin_ / "prefect"), "server", "start", "--host", address, "--port", str(prefect_port)],
             # the UI is built on first start, by default into the installed package: a folder of its own instead
             {"PREFECT_API_DATABASE_CONNECTION_URL": self.pg.url("prefect", driver="asyncpg"),
              "PREFECT_UI_STATIC_DIRECTORY": str(self.server_folders["prefect-ui"])}, f"{self.prefect_api}/health", signal.SIGINT),
            ("mlflow-server", [str(bin_ / "mlflow"), "server", "--host", address, "--port", str(mlflow_port), "--workers", "1",
                               "--backend-store-uri", self.pg.url("mlflow"), "--serve-artifacts",
                               "--artifacts-destination", str(self.server_folders["mlflow-artifacts"]),
                               "--allowed-hosts", f"{address},{address}:{mlflow_port}"],
             {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, f"{self.mlflow_uri}/health", signal.SIGTERM),
            ("mnist-mirror", [str(bin_ / "python"), "-m", "http.server", "--bind", address, "--directory", str(self.mnist_dir), str(mirror_port)],
             {}, f"{self.mirror_url}SHA256SUMS.idx", signal.SIGTERM),
        ]  # fmt: skip
        started = []
        for name, argv, extra, health, stop in servers:
            log = self.logs / f"{name}.log"
            process = lab.start([*user.as_user(), *argv], env={**env, **extra}, cwd=user.home, log=log, stop_signal=stop)
            started.append(Server(name=name, process=process, health_url=health, log_path=log))
        wait_for_servers(started, timeout=SERVER_TIMEOUT)

        client = self.client_env()
        subprocess.run([str(bin_ / "prefect"), "work-pool", "create", self.pool, "--type", "process"],
                       env=client, check=True, capture_output=True, timeout=120, cwd=self.lab.root)  # fmt: skip
        from optuna.storages import RDBStorage  # Optuna's tables before workers race to create them

        RDBStorage(self.pg.url("optuna")).engine.dispose()

    def client_env(self) -> dict[str, str]:
        """The test's own client (root, on the server side): the servers' address, a Prefect home of its own."""
        home = self.lab.root / "client"
        home.mkdir(exist_ok=True, mode=0o700)
        return {**OFFLINE, "PATH": os.environ["PATH"], "HOME": str(home), "PREFECT_HOME": str(home / ".prefect"),
                "PREFECT_API_URL": self.prefect_api, "LANG": "C.UTF-8"}  # fmt: skip

    # the workers ------------------------------------------------------------------------------

    def worker_env(self, worker: Worker) -> dict[str, str]:
        """What an operator sets on a worker machine: three URLs, the mirror, its own folders."""
        user = worker.user
        return {
            **OFFLINE,
            "PATH": f"{self.venv}/bin:/usr/bin:/bin", "HOME": str(user.home), "USER": user.name, "LOGNAME": user.name,
            "LANG": "C.UTF-8", "TMPDIR": str(self.lab.user_folder(user, "tmp")),
            "PREFECT_HOME": str(self.lab.user_folder(user, ".prefect")),
            "PREFECT_API_URL": self.prefect_api,
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "REDES_OPTUNA_STORAGE": self.pg.url("optuna", host=self.address),
            "REDES_DATA_DIR": str(self.lab.user_folder(user, "data")),
            "REDES_MNIST_MIRRORS": self.mirror_url,
            "REDES_OPTUNA_HEARTBEAT": HEARTBEAT,
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "REDES_BLAS_THREADS": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_LOGGING_LEVEL": "INFO",
        }  # fmt: skip

    def start_workers(self, count: int | None = None) -> None:
        for worker in self.workers[:count]:
            name = f"worker-{worker.index}"
            argv = [str(self.venv / "bin" / "prefect"), "worker", "start", "--pool", self.pool, "--type", "process", "--limit", "1", "--name", name]
            self.worker_processes[name] = self.lab.start(
                self.lab.in_worker(worker, argv), env=self.worker_env(worker), cwd=self.lab.user_folder(worker.user, "work"),
                # a Prefect 3.9 worker does not exit on one SIGINT (seen: 90 s and more); idle by then, it is killed
                log=self.logs / f"{name}.log", stop_signal=signal.SIGINT, stage=2, stop_seconds=5,
            )  # fmt: skip
        self.wait_for_workers(set(self.worker_processes))

    def wait_for_workers(self, names: set[str], timeout: float = SERVER_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        with self.prefect() as client:
            while True:
                self.check_workers_alive()
                online = {w.name for w in client.read_workers_for_work_pool(self.pool) if w.status.value == "ONLINE"}
                if names <= online:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"workers not online within {timeout:.0f} s: {sorted(names - online)}\n{self.tails()}")
                time.sleep(0.5)

    def check_workers_alive(self) -> None:
        for name, process in self.worker_processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}\n{self.tails()}")

    def tails(self, lines: int = 30) -> str:
        """The last lines of every log, and what each PostgreSQL connection is doing (a stall shows there)."""
        out = []
        try:
            out.append("--- pg_stat_activity ---\n" + self.pg.psql(
                "SELECT pid, usename, client_addr, state, wait_event_type, wait_event, now() - xact_start, left(query, 160) "
                "FROM pg_stat_activity WHERE datname IS NOT NULL ORDER BY xact_start"
            ))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a diagnostic only
            out.append(f"--- pg_stat_activity unavailable: {exc}")
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()
            out.append(f"--- {log.name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def prefect(self):
        """A Prefect client on the servers' API (tests/integration/stack/conftest.py)."""
        return self.helpers.prefect_client(self.prefect_api)

    # running a study --------------------------------------------------------------------------

    def deploy(self) -> str:
        """The study flow on the pool, from this checkout (what `prefect deploy` does with prefect.yaml's pull step)."""
        from prefect import flow

        with self.prefect():
            deployment = flow.from_source(source=str(self.repo_root), entrypoint="flows/study.py:mnist_study")
            return str(deployment.deploy(name=f"netns-{self.lab.token}", work_pool_name=self.pool, print_next_steps=False, ignore_warnings=True))

    def trigger(self, deployment_id: str, parameters: dict, times: int) -> list[str]:
        from prefect.deployments import run_deployment

        with self.prefect():
            return [str(run_deployment(deployment_id, parameters=parameters, timeout=0, as_subflow=False).id) for _ in range(times)]

    def wait_for_runs(self, run_ids: list[str], timeout: float = FLOW_RUN_TIMEOUT) -> list:
        deadline = time.monotonic() + timeout
        with self.prefect() as client:
            while True:
                runs = [client.read_flow_run(run_id) for run_id in run_ids]
                if all(r.state is not None and r.state.is_final() for r in runs):
                    return runs
                self.check_workers_alive()
                if time.monotonic() > deadline:
                    pytest.fail(f"flow runs not final within {timeout:.0f} s: {[r.state_type for r in runs]}\n{self.tails()}")
                time.sleep(2)

    def study_trials(self, study: str) -> list:
        """The study's trials, read within 60 s: a read that waits longer fails the test (with what every
        PostgreSQL connection is doing) instead of keeping a worker's link cut until the test's timeout."""
        import optuna

        bounded = {"connect_timeout": 30, "options": "-c statement_timeout=60000 -c lock_timeout=60000"}
        storage = optuna.storages.RDBStorage(self.pg.url("optuna"), engine_kwargs={"connect_args": bounded})
        try:
            return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
        except KeyError:
            return []
        finally:
            storage.engine.dispose()

    def run_as(self, user: User, code: str, *, timeout: float = 180) -> subprocess.CompletedProcess:
        env = {**OFFLINE, "PATH": f"{self.venv}/bin:/usr/bin:/bin", "HOME": str(user.home), "LANG": "C.UTF-8",
               "TMPDIR": str(self.lab.user_folder(user, "tmp")), "MLFLOW_TRACKING_URI": self.mlflow_uri}  # fmt: skip
        return subprocess.run([*user.as_user(), str(self.venv / "bin" / "python"), "-c", code], env=env, cwd=user.home,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip

    def can_enter(self, user: User, path: Path) -> bool:
        return subprocess.run([*user.as_user(), "test", "-r", str(path), "-o", "-x", str(path)], timeout=30).returncode == 0


def study_parameters(study: str, trials: int) -> dict:
    request = StudyRequest(
        name=study, trials=trials, workers=1, sampler="tpe", pruner="none", space_text=SPACE, epochs=EPOCHS,
        patience=EPOCHS, seed=0, train_size=TRAIN_SIZE, val_size=VAL_SIZE,
    )  # fmt: skip
    return {"request": request.parameters()}


@pytest.fixture
def lab(repo_root):
    yield from lab_of(repo_root)


@pytest.fixture
def machines(lab, repo_root, mnist_dir, stack_helpers, tmp_path):
    count = max([int(n) for n in os.environ.get("REDES_NETNS_BENCH", "").split(",") if n.strip()] or [WORKERS])
    machines = Machines(lab, repo_root, mnist_dir, workers=count, helpers=stack_helpers)
    started = time.monotonic()
    machines.start_servers()
    machines.seconds_to_servers = time.monotonic() - started
    try:
        yield machines
    finally:
        lab.stop_processes()
        shutil.copytree(machines.logs, tmp_path / "logs")  # kept by pytest after the lab is gone


# --- the test ---------------------------------------------------------------------------------


@pytest.mark.skipif(bool(os.environ.get("REDES_NETNS_BENCH")), reason="REDES_NETNS_BENCH is set: the benchmark runs instead")
@pytest.mark.timeout(900)
def test_workers_in_namespaces_share_only_the_servers(machines):
    m = machines
    started = time.monotonic()
    m.start_workers()
    study = f"netns-{uuid.uuid4().hex[:8]}"
    deployment_id = m.deploy()
    run_ids = m.trigger(deployment_id, study_parameters(study, TRIALS_PER_WORKER), times=WORKERS)

    cut = cut_mid_trial(m, study)
    runs = m.wait_for_runs(run_ids)
    flow_seconds = time.monotonic() - started
    assert [r.state_type.value for r in runs] == ["COMPLETED"] * WORKERS, [(r.name, r.state_type.value, r.state.message) for r in runs]

    trials = m.study_trials(study)
    check_trials(trials, cut.trial, cut.worker, m.workers)
    check_runs_as_reader(m, study, trials)
    check_champion_registered_once(m, study, trials)
    check_folders(m)
    print(
        f"\nnetns test: servers ready in {m.seconds_to_servers:.0f} s; {len(trials)} trials on {WORKERS} workers "
        f"in {flow_seconds:.0f} s; {cut}; per worker: {trial_windows(trials)}"
    )


@dataclass
class Cut:
    trial: int
    worker: Worker
    others_left: int  # trials the other flow runs had still to start when the link went down
    seconds: float  # from the cut to the trial's FAIL
    attempt: int

    def __str__(self) -> str:
        return (f"trial {self.trial} cut off on {self.worker.hostname} (attempt {self.attempt}, {self.others_left} trials "
                f"left to the others), failed by the heartbeat {self.seconds:.0f} s later and retried")  # fmt: skip


def cut_mid_trial(m: Machines, study: str, attempts: int = 5) -> Cut:
    """Cut the link of the first worker seen in the middle of a trial, until Optuna's heartbeat (run by the other
    workers as they start trials) has failed that trial; then restore the link. Which worker it is depends on
    Prefect and Optuna, not on its index."""
    import optuna

    deadline = time.monotonic() + CUT_TIMEOUT
    for attempt in range(1, attempts + 1):
        running, worker, others_left = wait_for_trial_to_cut(m, study, deadline)
        m.lab.cut(worker)
        try:
            cut_at = time.monotonic()
            while True:
                state = {t.number: t.state for t in m.study_trials(study)}[running.number]
                seconds = time.monotonic() - cut_at
                if state != optuna.trial.TrialState.RUNNING or seconds > STALE_TIMEOUT:
                    break
                time.sleep(0.5)
        finally:
            m.lab.restore(worker)
        if state == optuna.trial.TrialState.FAIL:
            return Cut(running.number, worker, others_left, seconds, attempt)
        # COMPLETE: told before the cut took effect; RUNNING: no worker started a trial to fail it. The next one.
    pytest.fail(f"no trial was cut off mid-trial in {attempts} attempts\n{m.tails()}")


def wait_for_trial_to_cut(m: Machines, study: str, deadline: float) -> tuple:
    """A RUNNING trial in the middle of its run (its MLflow run created, its outcome not yet recorded), its worker
    and the trials the other workers' flow runs have still to start (OTHERS_LEFT or more)."""
    import optuna

    workers = {w.hostname: w for w in m.workers}
    while True:
        trials = m.study_trials(study)
        started = {host: sum(t.user_attrs.get("worker_host") == host for t in trials) for host in workers}
        for trial in sorted(trials, key=lambda t: t.number):
            host = trial.user_attrs.get("worker_host")
            mid_run = "mlflow_run_id" in trial.user_attrs and "best_epoch" not in trial.user_attrs
            if trial.state == optuna.trial.TrialState.RUNNING and host in workers and mid_run:
                others_left = (WORKERS - 1) * TRIALS_PER_WORKER - sum(n for h, n in started.items() if h != host)
                if others_left >= OTHERS_LEFT:
                    return trial, workers[host], others_left
        m.check_workers_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"no trial seen mid-run while the other workers had {OTHERS_LEFT} trials to start "
                        f"within {CUT_TIMEOUT:.0f} s; trials started per worker: {started}\n{m.tails()}")  # fmt: skip
        time.sleep(0.2)


def trial_windows(trials: list) -> dict[str, str]:
    """Per worker host: its trials, and when its first started and its last ended (seconds after the study's first start)."""
    first = min(t.datetime_start for t in trials if t.datetime_start)
    out = {}
    for host in sorted({t.user_attrs.get("worker_host", "?") for t in trials}):
        own = [t for t in trials if t.user_attrs.get("worker_host", "?") == host]
        starts = [(t.datetime_start - first).total_seconds() for t in own if t.datetime_start]
        ends = [(t.datetime_complete - first).total_seconds() for t in own if t.datetime_complete]
        out[host] = f"{len(own)} trials {min(starts, default=0):.0f}-{max(ends, default=0):.0f} s"
    return out


def check_trials(trials: list, cut_trial: int, target: Worker, workers: list[Worker]) -> None:
    """Every trial COMPLETE or FAIL with a reason; the cut one FAIL and retried once with its parameters; none lost or doubled."""
    import optuna

    from tracking.studies import fail_reason

    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(WORKERS * TRIALS_PER_WORKER)), numbers
    by_number = {t.number: t for t in trials}
    states = {t.number: t.state.name for t in trials}
    assert set(states.values()) <= {"COMPLETE", "FAIL"}, states
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.number for t in failed] == [cut_trial], states
    cut = by_number[cut_trial]
    assert cut.user_attrs["worker_host"] == target.hostname
    assert "heartbeat" in fail_reason(cut, trials)
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == cut_trial]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", [(t.number, t.state.name) for t in retries]
    assert retries[0].params == cut.params
    hosts = {t.user_attrs.get("worker_host") for t in trials}
    assert hosts == {w.hostname for w in workers}, hosts  # every worker ran trials
    assert all(t.user_attrs.get("mlflow_run_id") for t in trials)
    assert len({t.user_attrs["mlflow_run_id"] for t in trials}) == len(trials)


READER = r"""
import json, sys, tempfile
import numpy as np
from mlflow.tracking import MlflowClient

client = MlflowClient()
study, epochs = sys.argv[1], int(sys.argv[2])
experiment = client.get_experiment_by_name(study)
out = {"artifact_location": experiment.artifact_location, "runs": {}}
for run in client.search_runs([experiment.experiment_id], max_results=1000):
    info = {"status": run.info.status, "tags": run.data.tags, "metrics": run.data.metrics}
    if run.data.tags.get("kind") == "trial":
        info["val_curve"] = [m.step for m in client.get_metric_history(run.info.run_id, "val/accuracy")]
        info["loss_curve"] = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        info["artifacts"] = sorted(a.path for d in ("model", "plots") for a in client.list_artifacts(run.info.run_id, d))
        if run.info.status == "FINISHED":
            with tempfile.TemporaryDirectory() as tmp:
                path = client.download_artifacts(run.info.run_id, "model/network.npz", tmp)
                info["weights"] = sorted(np.load(path).files)
    out["runs"][run.info.run_id] = info
print(json.dumps(out))
"""


def check_runs_as_reader(m: Machines, study: str, trials: list) -> None:
    """A fourth user, with none of the workers' files, reads every trial's run, curves and weights through the MLflow server."""
    code = READER.replace("sys.argv[1], int(sys.argv[2])", f"{study!r}, {EPOCHS}")
    done = m.run_as(m.reader, code)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["artifact_location"].startswith("mlflow-artifacts:"), seen["artifact_location"]  # proxied by the server
    runs = seen["runs"]
    for trial in trials:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run["tags"]["optuna.trial_number"] == str(trial.number)
        if trial.state.name == "COMPLETE":
            assert run["status"] == "FINISHED", (trial.number, run["status"])
            assert run["val_curve"] == list(range(1, EPOCHS + 1)) and run["loss_curve"] == list(range(1, EPOCHS + 1)), run
            assert "model/network.npz" in run["artifacts"] and "plots/learning_curve.png" in run["artifacts"], run["artifacts"]
            assert run["weights"], "the weights file holds no arrays"
            assert run["metrics"]["val/best_accuracy"] == pytest.approx(trial.value, abs=1e-6)
        else:
            assert run["status"] in ("KILLED", "FAILED"), (trial.number, run["status"])
            assert run["tags"]["optuna.trial_state"] == "FAIL" and run["tags"].get("fail_reason")
    children = [r for r in runs.values() if r["tags"].get("kind") == "trial"]
    assert sorted(int(r["tags"]["optuna.trial_number"]) for r in children) == sorted(t.number for t in trials)
    assert [r for r in runs.values() if r["status"] == "RUNNING"] == []


def check_champion_registered_once(m: Machines, study: str, trials: list) -> None:
    """Each flow run registers the best trial it sees, unless that trial is registered already: no trial twice.
    The champion alias points at the study's best trial (the last flow run to finish saw every trial)."""
    from mlflow.tracking import MlflowClient

    from tracking.champion import CHAMPION_ALIAS

    client = MlflowClient(tracking_uri=m.mlflow_uri)
    versions = [v for v in client.search_model_versions(max_results=1000) if v.tags.get("optuna.study") == study]
    registered = [v.tags["optuna.trial_number"] for v in versions]
    assert versions and len(registered) == len(set(registered)), [(v.version, v.tags) for v in versions]
    best = max(t.value for t in trials if t.state.name == "COMPLETE")
    champion = client.get_model_version_by_alias(versions[0].name, CHAMPION_ALIAS)
    assert champion.tags["optuna.study"] == study and float(champion.tags["val_accuracy"]) == pytest.approx(best, abs=1e-6)


def check_folders(m: Machines) -> None:
    """No worker can enter a server folder or wrote into one; no server can enter a worker's folder."""
    server_folders = [m.pg.data, *m.server_folders.values()]
    for worker in m.workers:
        for folder in server_folders:
            assert not m.can_enter(worker.user, folder), f"{worker.user.name} can enter {folder}"
            found = subprocess.run(["find", str(folder), "-uid", str(worker.user.uid)], capture_output=True, text=True, timeout=60)
            assert found.stdout == "", f"{worker.user.name} wrote into {folder}: {found.stdout[:500]}"
        assert not m.can_enter(m.server_user, worker.user.home)
        assert not m.can_enter(m.reader, worker.user.home)
        assert any((worker.user.home / "data" / "raw").iterdir())  # its own copy of MNIST
    artifacts = [p for p in m.server_folders["mlflow-artifacts"].rglob("network.npz")]
    assert artifacts and all(p.stat().st_uid == m.server_user.uid for p in artifacts)  # written by the server only
    mirror_log = (m.logs / "mnist-mirror.log").read_text()
    for worker in m.workers:
        assert re.search(rf"^{re.escape(worker.address)} .*GET /train-images", mirror_log, re.M), f"{worker.address} never used the mirror"


# --- trials per hour with 1, 2, 3 namespaced workers -----------------------------------------

BENCH_TRIALS = 12  # the same search each round, split over the round's flow runs (one per worker)


@pytest.mark.skipif(not os.environ.get("REDES_NETNS_BENCH"), reason="a measurement: set REDES_NETNS_BENCH=1,2,3 to run it")
@pytest.mark.timeout(1800)
def test_trials_per_hour_with_namespaced_workers(machines):
    """One study per round of BENCH_TRIALS trials, over N flow runs on N workers. Reported: end to end (trigger to
    every flow run final: start-up, data, champion included) and the search window (first trial start to last end)."""
    counts = [int(n) for n in os.environ["REDES_NETNS_BENCH"].split(",") if n.strip()]
    m = machines
    m.start_workers()
    deployment_id = m.deploy()
    results = []
    for count in counts:
        study = f"bench{count}-{uuid.uuid4().hex[:6]}"
        shares = [BENCH_TRIALS // count + (1 if i < BENCH_TRIALS % count else 0) for i in range(count)]
        started = time.monotonic()
        run_ids = [m.trigger(deployment_id, study_parameters(study, share), times=1)[0] for share in shares]
        runs = m.wait_for_runs(run_ids, timeout=900)
        seconds = time.monotonic() - started
        assert [r.state_type.value for r in runs] == ["COMPLETED"] * count
        trials = m.study_trials(study)
        assert len(trials) == BENCH_TRIALS and {t.state.name for t in trials} == {"COMPLETE"}
        assert len({t.user_attrs["worker_host"] for t in trials}) == count
        window = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
        results.append({"workers": count, "trials": len(trials), "seconds": round(seconds, 1), "window": round(window, 1),
                        "trials_per_hour": round(3600 * len(trials) / seconds), "window_trials_per_hour": round(3600 * len(trials) / window)})  # fmt: skip
    print("\nnetns benchmark (" + f"{EPOCHS} epochs, {TRAIN_SIZE} images, {os.cpu_count()} cores):")
    for row in results:
        print(json.dumps(row))
