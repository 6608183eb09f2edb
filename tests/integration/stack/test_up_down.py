"""`redes up` / `redes down` for real: servers that outlive one command, used by the commands that follow.

`redes up` starts Prefect's server, the MLflow UI and optuna-dashboard on free 127.0.0.1 ports in
a fresh folder and returns once their health URLs answer; the test reads the record, runs
`redes data` (a Prefect flow) and finds its flow run on the recorded server, checks that an
explicit PREFECT_API_URL wins over the record, that a second `redes up` starts nothing, and that
`redes down` stops every process group and removes the record. Every process is stopped by PID
at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.server_record import record_path
from runtime.servers import free_port, group_alive, group_has_live_members, http_status, port_in_use, stop_process

from support import processes

pytestmark = pytest.mark.integration

CHILD_ENV = dict(processes.CHILD_ENV)
DATA = ["data", "--no-track", "--train-size", "100", "--val-size", "100"]


def redes(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("redes")), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def folder_env(tmp_path: Path, mnist_dir: Path, **extra: str) -> dict[str, str]:
    """No store or Prefect setting from the outside; Prefect's database in the test's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REDES_"))}
    env.update(CHILD_ENV)
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), REDES_MNIST_MIRRORS=str(mnist_dir), **extra)
    return env


def recorded(workdir: Path) -> dict[str, dict]:
    path = record_path(workdir)
    return {entry["name"]: entry for entry in json.loads(path.read_text())["servers"]} if path.exists() else {}


def flow_runs(api: str) -> list[dict]:
    import httpx

    response = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=30)
    response.raise_for_status()
    return response.json()


def test_up_records_the_servers_commands_use_them_and_down_stops_them(tmp_path, mnist_dir):
    env = folder_env(tmp_path, mnist_dir)
    pids: list[int] = []
    try:
        done = redes(["up", "--prefect-port", "0", "--mlflow-port", "0", "--optuna-port", "0"], tmp_path, env)
        servers = recorded(tmp_path)
        pids = [entry["pid"] for entry in servers.values()]
        assert done.returncode == 0, done.stdout + done.stderr
        assert set(servers) == {"prefect", "mlflow", "optuna-dashboard", "launcher"}, done.stdout
        for name, entry in servers.items():
            if name != "launcher":
                assert http_status(entry["health_url"]) == 200, name
                assert entry["url"].startswith("http://127.0.0.1:"), entry
            assert os.getpgid(entry["pid"]) == entry["pid"], f"{name} does not lead its own process group"
            assert f"pid {entry['pid']}" in done.stdout
        assert servers["launcher"]["url"] == f"unix:{tmp_path / '.redes' / 'launcher.sock'}"
        api = servers["prefect"]["url"] + "/api"
        assert f"commands here use the Prefect API {api}" in done.stdout

        again = redes(["up", "--no-ui", "--prefect-port", "0"], tmp_path, env)
        assert again.returncode == 0 and "started" not in again.stdout, again.stdout + again.stderr
        assert recorded(tmp_path) == servers

        before = len(flow_runs(api))
        data = redes(DATA, tmp_path, env)
        assert data.returncode == 0, data.stdout + data.stderr
        runs = flow_runs(api)
        assert len(runs) > before and all(run["state_type"] == "COMPLETED" for run in runs), runs
        assert f"ran `redes {' '.join(DATA)}` as pid" in Path(servers["launcher"]["log"]).read_text()

        elsewhere = f"http://127.0.0.1:{free_port()}/api"  # an explicit URL wins, even one where nothing answers
        explicit = redes(DATA, tmp_path, {**env, "PREFECT_API_URL": elsewhere}, timeout=180)
        assert explicit.returncode != 0 and elsewhere in explicit.stdout + explicit.stderr
        assert len(flow_runs(api)) == len(runs)

        down = redes(["down"], tmp_path, env, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        for name, entry in servers.items():
            assert f"stopped {name} (pid {entry['pid']})" in down.stdout
            assert not group_has_live_members(entry["pid"]), name
            if name != "launcher":
                assert not port_in_use(int(entry["url"].rsplit(":", 1)[1]))
        assert not (tmp_path / ".redes" / "launcher.sock").exists()
        assert not record_path(tmp_path).exists()
        assert "nothing was running" in redes(["down"], tmp_path, env).stdout
    finally:
        for pid in pids:
            if group_alive(pid):
                stop_process(pid, sig=signal.SIGKILL, timeout=5)


def test_a_server_killed_behind_redes_back_is_a_stale_record_and_commands_fall_back(tmp_path, mnist_dir):
    env = folder_env(tmp_path, mnist_dir)
    pids = []
    try:
        done = redes(["up", "--no-ui", "--prefect-port", "0"], tmp_path, env)
        assert done.returncode == 0, done.stdout + done.stderr
        pids = [entry["pid"] for entry in recorded(tmp_path).values()]
        pid = recorded(tmp_path)["prefect"]["pid"]
        stop_process(pid, sig=signal.SIGKILL, timeout=10)

        # Prefect's temporary server, as without `redes up`; not in the launcher, which was told the dead server's URL
        data = redes(DATA, tmp_path, env)
        assert data.returncode == 0, data.stdout + data.stderr
        assert f"the Prefect server `redes up` started (pid {pid}) is gone" in data.stderr
        assert "its environment differs in PREFECT_API_URL" in Path(recorded(tmp_path)["launcher"]["log"]).read_text()
        assert set(recorded(tmp_path)) == {"launcher"}
        status = redes(["status"], tmp_path, env)
        assert "temporary server" in status.stdout, status.stdout

        again = redes(["up", "--no-ui", "--prefect-port", "0"], tmp_path, env)  # a new server, and a launcher told its URL
        assert again.returncode == 0 and "stopped the launcher" in again.stdout, again.stdout + again.stderr
        pids += [entry["pid"] for entry in recorded(tmp_path).values()]
        assert set(recorded(tmp_path)) == {"prefect", "launcher"}
        data = redes(DATA, tmp_path, env)
        assert data.returncode == 0, data.stdout + data.stderr
        assert f"ran `redes {' '.join(DATA)}` as pid" in Path(recorded(tmp_path)["launcher"]["log"]).read_text()
    finally:
        for pid in pids:
            if group_alive(pid):
                stop_process(pid, sig=signal.SIGKILL, timeout=5)
