"""Credentials appear in no command line, no log line, no file and no record a run leaves behind.

One full `redes study` with two worker processes, its Optuna storage a PostgreSQL database with a
password (REDES_OPTUNA_STORAGE) and its MLflow server the authenticated one `redes ui --mlflow-auth`
starts (MLFLOW_TRACKING_PASSWORD). While it runs, every process's command line (what `ps -eo args`
shows, read from /proc/*/cmdline) is sampled until it ends; afterwards both passwords (and the
server's Flask secret) are searched for in the command's output, the servers' logs, every file
under the test's folder, Prefect's home, the flow runs' parameters, logs, task runs and artifacts
read from the Prefect API, the MLflow runs' parameters and tags, and the Optuna study's attributes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "leak"
PAGE = 200
FRAGMENT = 10


def command_lines() -> dict[int, tuple[int, str]]:
    """Every process's command line as `ps -eo args` shows it, with its session: {pid: (sid, args)}."""
    seen = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            sid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
        seen[int(entry)] = (sid, raw.replace(b"\0", b" ").decode(errors="replace"))
    return seen


def mask(text: str, secrets: dict[str, str]) -> str:
    for secret in secrets.values():
        for piece in pieces(secret):
            text = text.replace(piece, "***")
    return text


def sample_until_done(process: subprocess.Popen, secrets: dict[str, str], timeout: float) -> tuple[int, set[int]]:
    """Read every command line until PROCESS ends; fail on the first one holding a secret.

    Returns the number of samples and the PIDs seen in PROCESS's session (it and its workers).
    """
    deadline = time.monotonic() + timeout
    samples, session = 0, set()
    while process.poll() is None:
        assert time.monotonic() < deadline, f"redes study did not end within {timeout:.0f} s"
        for pid, (sid, args) in command_lines().items():
            found = [what for what, secret in secrets.items() if holds(args, secret)]
            assert not found, f"{', '.join(found)} on the command line of pid {pid}: {mask(args, secrets)}"
            if sid == process.pid:
                session.add(pid)
        samples += 1
        time.sleep(0.02)
    return samples, session


def pieces(secret: str) -> tuple[str, ...]:
    """The secret and its first and last ten characters: a password cut short by a table is still out."""
    return (secret, secret[:FRAGMENT], secret[-FRAGMENT:])


def holds(data: str | bytes, secret: str) -> bool:
    if isinstance(data, bytes):
        return any(piece.encode() in data for piece in pieces(secret))
    return any(piece in data for piece in pieces(secret))


def absent(text: str, secrets: dict[str, str], where: str) -> None:
    """Fail naming which secrets TEXT holds, whole or in part (never printing them)."""
    found = [what for what, secret in secrets.items() if holds(text, secret)]
    assert not found, f"{', '.join(found)} in {where}"


def files_holding(root: Path, secrets: dict[str, str]) -> list[str]:
    """Every file under ROOT whose bytes contain a secret, as 'what in path'."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{what} in {path}" for what, secret in secrets.items() if holds(data, secret)]
    return found


def prefect_records(since: datetime) -> dict[str, list]:
    """Flow runs started since SINCE in this session's Prefect API, with their logs, task runs and artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterStartTime,
        LogFilter,
        LogFilterFlowRunId,
    )

    def pages(read, **kwargs) -> list:
        items, offset = [], 0
        while True:
            page = read(limit=PAGE, offset=offset, **kwargs)
            items += page
            if len(page) < PAGE:
                return items
            offset += PAGE

    with get_client(sync_client=True) as client:
        runs = pages(client.read_flow_runs, flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)))
        ids = [run.id for run in runs]
        logs = pages(client.read_logs, log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))) if ids else []
        tasks = pages(client.read_task_runs, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))) if ids else []
        artifacts = (
            pages(client.read_artifacts, artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
            if ids else []
        )  # fmt: skip
    return {"flow runs": runs, "logs": logs, "task runs": tasks, "artifacts": artifacts}


def mlflow_records(url: str, credentials: dict[str, str], monkeypatch) -> list:
    from mlflow.tracking import MlflowClient

    for key, value in credentials.items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name(NAME)
    assert experiment is not None, "the study logged nothing to MLflow"
    return client.search_runs([experiment.experiment_id], max_results=100)


def optuna_records(storage_url: str) -> list[dict]:
    import optuna

    from tracking import studies

    storage = studies.open_storage(storage_url)
    study = optuna.load_study(study_name=NAME, storage=storage)
    study_id = storage.get_study_id_from_name(NAME)
    records = [{"study": NAME, "user_attrs": study.user_attrs, "system_attrs": storage.get_study_system_attrs(study_id)}]
    records += [
        {"trial": t.number, "params": t.params, "user_attrs": t.user_attrs, "system_attrs": t.system_attrs}
        for t in study.get_trials(deepcopy=False)
    ]
    assert len(records) == 4
    storage.engine.dispose()
    return records


@pytest.mark.timeout(1200)  # its own sampling waits up to 900 s
def test_no_password_in_command_lines_logs_files_or_run_records(
    tmp_path, tmp_path_factory, redes_env, optuna_postgres_url, security_helpers, monkeypatch
):
    server = security_helpers.start_auth_ui(tmp_path / "mlflow-ui")
    try:
        secrets = {
            "PostgreSQL password": urlsplit(optuna_postgres_url).password,
            "MLflow password": server.admin_password,
            "MLflow Flask secret key": server.secret_key,
        }
        assert all(secret and len(secret) >= 16 for secret in secrets.values())
        # INFO: every log line a user sees by default; 200 columns: tables printed whole, not cut at 80
        env = redes_env(optuna_postgres_url, PREFECT_LOGGING_LEVEL="INFO", COLUMNS="200", **server.client_env())
        since = datetime.now(timezone.utc) - timedelta(seconds=5)
        out, err = tmp_path / "study.out", tmp_path / "study.err"
        started = time.monotonic()
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            study = subprocess.Popen(
                security_helpers.study_command(NAME, workers=2), cwd=tmp_path, env=env, stdout=stdout, stderr=stderr,
                start_new_session=True,
            )  # fmt: skip
            try:
                samples, session = sample_until_done(study, secrets, timeout=900)
            finally:
                if study.poll() is None:
                    os.killpg(study.pid, 9)
                    study.wait(timeout=30)
        seconds = time.monotonic() - started
        output = out.read_text(errors="replace") + err.read_text(errors="replace")
        assert study.returncode == 0, mask(output[-4000:], secrets)
        print(f"redes study --workers 2: {seconds:.1f} s, {samples} samples of every command line")
        assert len(session) >= 3, f"the study's worker processes were never seen (session: {sorted(session)})"
        runs = mlflow_records(server.url, server.client_env(), monkeypatch)
    finally:
        security_helpers.stop_auth_ui(server)

    # the command's output, the servers' logs and every file of the test, PostgreSQL's data excepted (it is elsewhere)
    absent(output, secrets, "the output of redes study")
    assert server.mlflow_log.stat().st_size > 0
    leaks = files_holding(tmp_path, secrets)
    leaks += files_holding(tmp_path_factory.getbasetemp() / "prefect-home", secrets)
    assert not leaks, leaks

    # what Prefect's API keeps (its UI shows it): flow run parameters, log lines, task runs, artifacts
    records = prefect_records(since)
    for kind, items in records.items():
        absent(json.dumps([item.model_dump(mode="json") for item in items]), secrets, f"Prefect's {kind}")
    study_runs = [run for run in records["flow runs"] if (run.parameters.get("request") or {}).get("name") == NAME]
    assert study_runs, "the study's flow run was not found: nothing was searched"
    assert any(f"study {NAME}: best validation accuracy" in log.message for log in records["logs"])
    assert records["task runs"] and records["artifacts"]

    # MLflow: the parent run and its three trials, their parameters, tags and names
    parents = [run for run in runs if run.data.tags.get("kind") == "study"]
    children = [run for run in runs if run.data.tags.get("kind") == "trial"]
    assert len(parents) == 1 and len(children) == 3
    assert "***" in parents[0].data.tags["optuna.storage"]  # named, its password masked
    text = json.dumps([{"name": r.info.run_name, "params": r.data.params, "tags": r.data.tags} for r in runs])
    absent(text, secrets, "the MLflow runs' parameters or tags")

    # Optuna's own records, as optuna-dashboard shows them
    absent(json.dumps(optuna_records(optuna_postgres_url), default=str), secrets, "the Optuna study's attributes")
