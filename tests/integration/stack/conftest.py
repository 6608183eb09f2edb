"""The multi-machine topology on 127.0.0.1, without Docker: PostgreSQL, a Prefect server and workers, MLflow.

Used by the distributed test (test_distributed.py) and by benchmarks/bench_stack.py,
which loads this file by its path. Every database is created with a unique name (and a
role of its own with a random password) and dropped at the end; every process is started
in its own process group by :mod:`runtime.servers` and stopped by PID. Passwords travel in
environment variables and on stdin, never on a command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.postgres import (  # noqa: F401 - the stack_helpers fixture hands these to tests
    DATABASES,
    PgDatabases,
    create_databases,
    databases_exist,
    drop_databases,
    postgres_port,
    postgres_unavailable,
    psql,
)

from runtime.servers import (
    Server,
    child_env,
    free_port,
    start_process,
    stop_processes,
    wait_for_servers,
)

OFFLINE = {
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
STORE_NAMES = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE", "PREFECT_API_DATABASE_CONNECTION_URL")
SERVER_TIMEOUT = 240.0


def executable(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    """Servers and workers on 127.0.0.1, all on the PostgreSQL databases of ``dbs``."""

    root: Path
    dbs: PgDatabases
    pool: str
    prefect_api: str
    mlflow_uri: str
    servers: list[Server] = field(default_factory=list)
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    seconds_to_ready: dict[str, float] = field(default_factory=dict)

    @property
    def optuna_url(self) -> str:
        return self.dbs.url("optuna")

    def worker_log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def client_env(self, **extra: str) -> dict[str, str]:
        """What a machine of the stack sets: the three addresses, offline, one BLAS thread per flow run."""
        env = {k: v for k, v in os.environ.items() if k not in STORE_NAMES}
        env.update(OFFLINE)
        env.update(
            PREFECT_API_URL=self.prefect_api,
            MLFLOW_TRACKING_URI=self.mlflow_uri,
            REDES_OPTUNA_STORAGE=self.optuna_url,
            PREFECT_HOME=str(self.root / "prefect-home"),
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            # one flow run per worker, two workers on this machine: one BLAS thread each (the
            # study flow would otherwise take cores / workers-per-flow-run = all cores in each)
            REDES_BLAS_THREADS="1",
        )
        env.update(extra)
        return env


def start_stack(root: Path, dbs: PgDatabases, *, workers: int = 2, mnist_dir: Path, data_dir: Path) -> Stack:
    """PostgreSQL-backed Prefect and MLflow servers (started together), a process pool, WORKERS workers."""
    root.mkdir(parents=True, exist_ok=True)
    prefect_port, mlflow_port = free_port(), free_port()
    stack = Stack(
        root=root, dbs=dbs, pool=f"pool-{dbs.prefix}",
        prefect_api=f"http://127.0.0.1:{prefect_port}/api", mlflow_uri=f"http://127.0.0.1:{mlflow_port}",
    )  # fmt: skip
    try:
        base = {k: v for k, v in os.environ.items() if k not in STORE_NAMES}
        prefect_env = child_env(
            {**OFFLINE, "PREFECT_API_DATABASE_CONNECTION_URL": dbs.url("prefect", "asyncpg"), "PREFECT_HOME": str(root / "server-home")},
            base=base,
        )  # fmt: skip
        mlflow_env = child_env(
            {**OFFLINE, "MLFLOW_BACKEND_STORE_URI": dbs.url("mlflow"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            base=base,
        )  # fmt: skip
        started = [
            _spawn("prefect-server", [executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
                   f"{stack.prefect_api}/health", prefect_env, root),
            _spawn("mlflow-server", [executable("mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                                     "--workers", "1", "--serve-artifacts", "--artifacts-destination", str(root / "mlflow-artifacts")],
                   f"{stack.mlflow_uri}/health", mlflow_env, root),
        ]  # fmt: skip
        stack.servers.extend(started)
        wait_for_servers(started, timeout=SERVER_TIMEOUT)
        stack.seconds_to_ready.update({s.name: s.seconds_to_ready for s in started})

        env = stack.client_env()
        subprocess.run(
            [executable("prefect"), "work-pool", "create", stack.pool, "--type", "process"],
            env=env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        _create_optuna_schema(stack.optuna_url)
        worker_env = stack.client_env(
            REDES_DATA_DIR=str(data_dir),
            REDES_MNIST_MIRRORS=str(mnist_dir),
            PREFECT_WORKER_QUERY_SECONDS="2",  # ask for scheduled runs every 2 s (default 10 s)
            PREFECT_LOGGING_LEVEL="INFO",  # the tests read "submitting flow run" from the workers' logs
        )
        started_at = time.monotonic()
        for index in range(workers):
            name = f"worker-{chr(ord('a') + index)}"
            stack.workers[name] = start_process(
                [executable("prefect"), "worker", "start", "--pool", stack.pool, "--type", "process", "--limit", "1", "--name", name],
                env=worker_env, cwd=root, log_path=stack.worker_log(name),
            )  # fmt: skip
        wait_for_workers(stack, set(stack.workers), timeout=SERVER_TIMEOUT)
        stack.seconds_to_ready["workers"] = time.monotonic() - started_at
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def stop_stack(stack: Stack) -> None:
    """Workers first (SIGINT: they ignore SIGTERM for a long time), then the servers (Prefect on SIGINT)."""
    stop_processes([(p, signal.SIGINT) for p in stack.workers.values()], timeout=30)
    stop_processes(
        [(s.process, signal.SIGINT if s.name == "prefect-server" else signal.SIGTERM) for s in stack.servers], timeout=30
    )


def wait_for_workers(stack: Stack, names: set[str], timeout: float) -> None:
    """Until the Prefect server lists every worker of NAMES as ONLINE in the pool."""
    deadline = time.monotonic() + timeout
    with prefect_client(stack.prefect_api) as client:
        while True:
            for name, process in stack.workers.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail(stack.worker_log(name))}")
            online = {w.name for w in client.read_workers_for_work_pool(stack.pool) if w.status.value == "ONLINE"}
            if names <= online:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not online within {timeout:.0f} s: {sorted(names - online)}")
            time.sleep(0.5)


def _spawn(name: str, argv: list[str], health_url: str, env: dict[str, str], root: Path) -> Server:
    log = root / "logs" / f"{name}.log"
    return Server(name=name, process=start_process(argv, env=env, cwd=root, log_path=log), health_url=health_url, log_path=log)


def _create_optuna_schema(url: str) -> None:
    """Optuna's tables on the empty database, as the stack's optuna-dashboard service does at start
    (docker/optuna-dashboard-entrypoint.sh): workers starting together would otherwise race to create them."""
    from optuna.storages import RDBStorage

    storage = RDBStorage(url)
    storage.engine.dispose()


class prefect_client:
    """A synchronous Prefect client for API_URL, this process's own settings left alone."""

    def __init__(self, api_url: str):
        self.api_url = api_url

    def __enter__(self):
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        self._settings = temporary_settings(updates={PREFECT_API_URL: self.api_url})
        self._settings.__enter__()
        self._client = get_client(sync_client=True)
        return self._client.__enter__()

    def __exit__(self, *exc):
        try:
            self._client.__exit__(*exc)
        finally:
            self._settings.__exit__(*exc)


def tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return f"--- last lines of {path} ---\n" + "\n".join(text[-lines:])


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack_helpers():
    """This module: the tests call its helpers (start_stack, prefect_client, …) as functions."""
    return sys.modules[__name__]


@pytest.fixture
def pg_databases():
    """Databases prefect/mlflow/optuna with unique names and a role of their own; dropped at the end."""
    reason = postgres_unavailable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and PostgreSQL cannot be used: {reason}")
        pytest.skip(reason)
    dbs = create_databases()
    try:
        yield dbs
    finally:
        drop_databases(dbs)
        assert databases_exist(dbs) == [], f"test databases left behind: {databases_exist(dbs)}"
