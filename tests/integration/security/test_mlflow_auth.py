"""MLflow basic authentication end to end: `redes ui --mlflow-auth` starts the server, requests
without the right password get 401, `redes study` logs its runs with MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD and fails fast, before any work, without them.

The admin password is the one configured on first start, never the one older MLflow releases
published in basic_auth.ini ("password1234"): that one logs nobody in as admin, a user store left
with it gets the configured password on start, and `redes ui --mlflow-auth` refuses to start
with it or with none.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cli.local_servers import PUBLISHED_MLFLOW_ADMIN_PASSWORD
from runtime.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"
ADMIN = "admin"


def status(url: str, user: str | None = None, password: str | None = None) -> tuple[int, Message]:
    """HTTP status and headers of a GET, with basic-auth credentials when given."""
    headers = {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def one_line(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines at 80 columns when not on a terminal


def test_requests_without_the_right_password_get_401(auth_mlflow):
    url = auth_mlflow.url
    assert status(f"{url}/health")[0] == 200  # the only page open to all (the health checks use it)

    code, headers = status(url + SEARCH)
    assert code == 401
    assert headers.get("WWW-Authenticate", "").startswith("Basic")
    assert status(url + SEARCH, ADMIN, auth_mlflow.admin_password + "x")[0] == 401
    assert status(url + SEARCH, ADMIN, "")[0] == 401
    assert status(url + SEARCH, "nobody", auth_mlflow.admin_password)[0] == 401
    assert status(url + SEARCH, ADMIN, auth_mlflow.admin_password)[0] == 200


def test_the_published_default_password_never_logs_in_as_admin(auth_mlflow):
    url = auth_mlflow.url
    assert status(url + SEARCH, ADMIN, PUBLISHED_MLFLOW_ADMIN_PASSWORD)[0] == 401
    user = f"{url}/api/2.0/mlflow/users/get?username={ADMIN}"
    assert status(user, ADMIN, PUBLISHED_MLFLOW_ADMIN_PASSWORD)[0] == 401
    request = urllib.request.Request(user, headers={
        "Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{auth_mlflow.admin_password}".encode()).decode()
    })  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["user"] == {"id": 1, "is_admin": True, "username": ADMIN}


SEED_LEGACY_STORE = textwrap.dedent(
    """
    import sys
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(sys.argv[1])
    if sys.argv[2] == "seed":
        store.create_user("admin", sys.argv[3], is_admin=True)
    print(store.authenticate_user("admin", sys.argv[3], use_primary=True))
    store.engine.dispose()
    """
)


def legacy_store(db: Path, action: str, env: dict[str, str]) -> bool:
    """Seed DB with an admin whose password is the published default, or check whether it still is."""
    done = subprocess.run(
        [sys.executable, "-c", SEED_LEGACY_STORE, f"sqlite:///{db}", action, PUBLISHED_MLFLOW_ADMIN_PASSWORD],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1] == "True"


def test_a_user_store_left_with_the_published_password_gets_the_configured_one_on_start(tmp_path, security_helpers):
    """An upgraded deployment whose admin still has the published password: the first start with
    MLFLOW_AUTH_ADMIN_PASSWORD replaces it in the user store (redes ui keeps it in ./basic_auth.db)."""
    workdir = tmp_path / "upgraded"
    workdir.mkdir()
    db = workdir / "basic_auth.db"
    env = security_helpers.ui_env()
    assert legacy_store(db, "seed", env), "the seeded admin should have the published password"

    server = security_helpers.start_auth_ui(workdir)
    try:
        assert status(server.url + SEARCH, ADMIN, PUBLISHED_MLFLOW_ADMIN_PASSWORD)[0] == 401
        assert status(server.url + SEARCH, ADMIN, server.admin_password)[0] == 200
    finally:
        security_helpers.stop_auth_ui(server)
    assert not legacy_store(db, "check", env), "the stored admin password is still the published default"
    assert "Replaced the insecure default password" in server.mlflow_log.read_text()


@pytest.mark.timeout(1200)  # its own study waits up to 900 s
def test_a_study_logs_its_runs_with_the_tracking_credentials(tmp_path, redes_env, auth_mlflow, security_helpers, monkeypatch):
    env = redes_env(tmp_path / "optuna-journal.log", **auth_mlflow.client_env())
    started = time.monotonic()
    done = subprocess.run(security_helpers.study_command("auth"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"redes study with credentials: {seconds:.1f} s")

    for key, value in auth_mlflow.client_env().items():
        monkeypatch.setenv(key, value)  # read by MlflowClient for every request
    client = MlflowClient(auth_mlflow.url)
    experiment = client.get_experiment_by_name("auth")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.kind = 'study'")
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.kind = 'trial'"
    )
    assert len(children) == 3
    assert {run.info.status for run in children} == {"FINISHED"}
    assert all("val/accuracy" in run.data.metrics for run in children)

    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    with pytest.raises(Exception, match="401|UNAUTHENTICATED|not authenticated"):
        MlflowClient(auth_mlflow.url).get_experiment_by_name("auth")


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ({}, "requires a user name and password: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        ({"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": "wrong-" + secrets.token_hex(8)},
         f"rejected user '{ADMIN}' (HTTP 401): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
    ],
    ids=["no-credentials", "wrong-password"],
)  # fmt: skip
def test_a_study_without_the_right_credentials_fails_fast_before_any_work(
    tmp_path, redes_env, auth_mlflow, security_helpers, credentials, expected, monkeypatch
):
    data_dir = tmp_path / "data"
    journal = tmp_path / "optuna-journal.log"
    env = redes_env(journal, MLFLOW_TRACKING_URI=auth_mlflow.url, REDES_DATA_DIR=str(data_dir), **credentials)
    started = time.monotonic()
    done = subprocess.run(security_helpers.study_command("refused"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - started
    output = one_line(done.stdout + done.stderr)
    print(f"refused in {seconds:.1f} s")

    assert done.returncode == 1, output[-3000:]  # a service problem (like an unreachable server), not bad input
    assert f"the MLflow tracking server at {auth_mlflow.url} {expected}" in output
    assert "Traceback" not in output
    if credentials:
        assert credentials["MLFLOW_TRACKING_PASSWORD"] not in output
    assert not data_dir.exists(), "MNIST was prepared before the credentials were checked"
    assert not journal.exists(), "the study was created before the credentials were checked"
    assert seconds < 60

    for key, value in auth_mlflow.client_env().items():
        monkeypatch.setenv(key, value)
    assert MlflowClient(auth_mlflow.url).get_experiment_by_name("refused") is None, "nothing reached the server"


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (None, "--mlflow-auth needs MLFLOW_AUTH_ADMIN_PASSWORD in the environment"),
        ("", "--mlflow-auth needs MLFLOW_AUTH_ADMIN_PASSWORD in the environment"),
        (PUBLISHED_MLFLOW_ADMIN_PASSWORD, "MLFLOW_AUTH_ADMIN_PASSWORD is the password older MLflow releases published"),
        ("short-pw", "MLFLOW_AUTH_ADMIN_PASSWORD is shorter than the 12 characters MLflow requires"),
    ],
    ids=["unset", "empty", "published", "too-short"],
)
def test_ui_refuses_to_start_without_a_chosen_admin_password(tmp_path, security_helpers, password, expected):
    env = security_helpers.ui_env(MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(32))
    if password is not None:
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    argv = [
        security_helpers.redes_executable(), "ui", "--mlflow-auth",
        "--mlflow-port", str(free_port()), "--optuna-port", str(free_port()),
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    output = one_line(done.stdout + done.stderr)
    assert done.returncode == 2, output
    assert expected in output
    assert not (tmp_path / ".redes").exists(), "a server was started"
    assert not (tmp_path / "basic_auth.db").exists()
