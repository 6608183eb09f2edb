"""The warm launcher of `redes up` (issue #16): commands run there with the caller's terminal, arguments
and exit code; Ctrl-C and `kill -9` of the command typed at the terminal reach the forked command;
another environment, or REDES_LAUNCHER=off, runs the command where it was typed.

One `redes up --no-ui` for the module, in a fresh folder; each study runs as a terminal's foreground
job (its own session; the terminal's Ctrl-C is `os.killpg`). Every process is stopped by PID at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from runtime.servers import group_alive, stop_process

from support import processes
from support.study_cli import SPACE_TOML, study_command, trials_of, wait_for_trials

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDES = str(Path(sys.executable).with_name("redes"))
TRAIN = ["train", "--epochs", "1", "--train-size", "1000", "--val-size", "500", "--json"]


class Folder:
    """A folder where `redes up --no-ui` runs a Prefect server and the launcher."""

    def __init__(self, path: Path, env: dict[str, str]):
        self.path, self.env = path, env
        self.record = {entry["name"]: entry for entry in json.loads((path / ".redes" / "servers.json").read_text())["servers"]}
        self.log = Path(self.record["launcher"]["log"])

    def redes(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([REDES, *args], cwd=self.path, env=env or self.env, capture_output=True, text=True, timeout=300)

    def launched(self) -> list[str]:
        """The launcher's lines about the commands it ran or refused."""
        return [line for line in self.log.read_text().splitlines() if " ran `" in line or " refused `" in line]

    def fork_server(self) -> int:
        """The PID of the launcher's fork server for the studies' workers (its child, loaded with their modules)."""
        launcher = self.record["launcher"]["pid"]
        servers = [pid for pid, ppid, command in children() if ppid == launcher and "multiprocessing.forkserver" in command]
        assert len(servers) == 1, subprocess.run(["ps", "-eo", "pid,ppid,pgid,etime,cmd", "--forest"], capture_output=True, text=True).stdout
        return servers[0]

    def not_servers(self) -> list[str]:
        """What runs in the folder besides the recorded servers and the fork server (the commands and their workers)."""
        pids = {entry["pid"] for entry in self.record.values()} | {self.fork_server()}
        return [line for line in processes.processes_in(self.path) if int(line.split()[0]) not in pids]


def children() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every live process."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            found.append((int(entry), ppid, Path(f"/proc/{entry}/cmdline").read_text().replace("\0", " ")))
        except (OSError, ValueError):
            continue
    return found


@pytest.fixture(scope="module")
def folder(tmp_path_factory, mnist_dir):
    path = tmp_path_factory.mktemp("launcher")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REDES_"))}
    env.update(processes.CHILD_ENV, PREFECT_HOME=str(path / "prefect-home"), REDES_MNIST_MIRRORS=str(mnist_dir))
    (path / "space.toml").write_text(SPACE_TOML)
    done = subprocess.run([REDES, "up", "--no-ui", "--prefect-port", "0"], cwd=path, env=env, capture_output=True, text=True, timeout=300)
    pids = []
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        here = Folder(path, env)
        pids = [entry["pid"] for entry in here.record.values()]
        assert set(here.record) == {"prefect", "launcher"} and "started the launcher" in done.stdout, done.stdout
        yield here
    finally:
        for pid in pids:
            if group_alive(pid):
                stop_process(pid, sig=signal.SIGKILL, timeout=5)
        for line in processes.processes_in(path):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def test_a_command_runs_in_the_launcher_with_the_callers_output_and_exit_code(folder):
    before = len(folder.launched())
    done = folder.redes(TRAIN)
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(done.stdout.splitlines()[-1])["mlflow_run_id"]  # printed by the forked command, on our stdout
    (line,) = folder.launched()[before:]
    assert f"ran `redes {' '.join(TRAIN)}` as pid" in line and line.endswith(" s") and "exit 0" in line, line

    from mlflow.tracking import MlflowClient

    run = MlflowClient(f"sqlite:///{folder.path / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED" and "test/accuracy" in run.data.metrics

    missing = folder.redes(["study", "--name", "x", "--trials", "1", "--space", "missing.toml"])
    assert missing.returncode == 2 and "missing.toml" in missing.stderr, missing.stdout + missing.stderr
    assert "exit 2" in folder.launched()[-1]


def test_another_environment_or_redes_launcher_off_runs_the_command_here(folder):
    before = len(folder.launched())
    other = folder.redes(["--verbose", *TRAIN[:-1]], {**folder.env, "REDES_TEST_OTHER": "1"})
    assert other.returncode == 0, other.stdout + other.stderr
    assert "the launcher of `redes up` did not run it: its environment differs in" in other.stderr
    (refused,) = folder.launched()[before:]
    assert "refused" in refused and "REDES_TEST_OTHER" in refused, refused
    off = folder.redes(TRAIN, {**folder.env, "REDES_LAUNCHER": "off"})
    assert off.returncode == 0, off.stdout + off.stderr
    assert len(folder.launched()) == before + 1  # nothing asked of the launcher


def start_study(folder: Folder, name: str) -> subprocess.Popen:
    """A 2-worker study as a terminal's foreground job, once a trial with its MLflow run is under way."""
    command = study_command(name, 40, workers=2, epochs=30, train_size=5000, patience=30)
    log = open(folder.path / f"{name}.log", "wb")
    study = subprocess.Popen(command, cwd=folder.path, env=folder.env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    wait_for_trials(
        study, name, folder.path / "optuna-journal.log",
        lambda trials: any(t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs for t in trials),
        "a trial with its MLflow run", timeout=120,
    )  # fmt: skip
    return study


def wait_stopped(folder: Folder, name: str, since: float, timeout: float) -> float:
    """Seconds from SINCE until no command or worker runs in the folder and no trial of NAME is RUNNING."""
    while folder.not_servers() or any(t.state == TrialState.RUNNING for t in trials_of(name, folder.path / "optuna-journal.log")):
        assert time.monotonic() - since < timeout, f"still running: {folder.not_servers()}"
        time.sleep(0.1)
    return time.monotonic() - since


def test_ctrl_c_of_the_typed_command_stops_the_study_in_the_launcher(folder):
    study = start_study(folder, "ctrl-c")
    assert "ran `redes study --name ctrl-c" not in folder.log.read_text()  # running, in the launcher
    workers = [pid for pid, ppid, _ in children() if ppid == folder.fork_server()]
    assert len(workers) == 2  # forked from the launcher's fork server, loaded before the study began
    sent = time.monotonic()
    os.killpg(study.pid, signal.SIGINT)
    code = study.wait(timeout=30)
    gone = wait_stopped(folder, "ctrl-c", sent, timeout=30)
    output = (folder.path / "ctrl-c.log").read_text()
    print(f"launcher, Ctrl-C: exit {code} after {time.monotonic() - sent:.1f} s, everything gone after {gone:.1f} s")
    assert code == 130 and gone <= 10, output[-3000:]
    assert "interrupted (SIGINT)" in output and "Traceback" not in output, output[-3000:]
    assert "ran `redes study --name ctrl-c" in folder.log.read_text() and "exit 130" in folder.launched()[-1]
    trials = trials_of("ctrl-c", folder.path / "optuna-journal.log")
    assert [t for t in trials if t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "interrupted"]


def test_kill_9_of_the_typed_command_stops_the_study_it_started(folder):
    study = start_study(folder, "kill-9")
    killed = time.monotonic()
    study.kill()
    study.wait(timeout=10)
    gone = wait_stopped(folder, "kill-9", killed, timeout=30)
    print(f"launcher, kill -9 of the typed command: everything gone after {gone:.1f} s")
    assert gone <= 12
    assert "exit 143" in folder.launched()[-1]  # the forked command stopped as on SIGTERM: cleanly
    trials = trials_of("kill-9", folder.path / "optuna-journal.log")
    assert [t for t in trials if t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "interrupted"]
