"""No committed file holds a secret: settings files carry empty values or `${NAME:?…}`
interpolations, URLs carry placeholders, and the files where secrets live are never tracked.

Tests are left out of the text scans: they build passwords at run time (`secrets.token_hex`)
and hold a few fakes on purpose, to check that those are masked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
#: A password in a URL: scheme://user:password@
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://([^/\s:@\"'`]+):([^/\s@\"'`]+)@")
#: NAME=value in shell, .env files, Makefiles and docs
ENV_ASSIGNMENT = re.compile(r"\b([A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN)[A-Z0-9_]*)=([^\s\"'/;]*)")
#: name = "value" in code and configuration
QUOTED_ASSIGNMENT = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|secret|token|api_key|apikey)[\w.-]*)\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']"
)
#: The one literal allowed: the admin password older MLflow releases published, kept to refuse it.
REFUSED_LITERALS = {("PUBLISHED_MLFLOW_ADMIN_PASSWORD", "password1234")}


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in listing.split("\0") if name]


def text_files(skip_tests: bool = True) -> list[tuple[Path, str]]:
    files = []
    for path in tracked_files():
        relative = path.relative_to(REPO).as_posix()
        if skip_tests and relative.startswith("tests/"):
            continue
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, FileNotFoundError):  # binary, or deleted in the working tree
            continue
    return files


def is_placeholder(value: str) -> bool:
    """An interpolation ($NAME, ${NAME…}, {name}), a masked value, or a word in capitals (PASSWORD)."""
    return value.startswith(("$", "{", "<")) or set(value) <= {"*"} or bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", value))


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def test_env_example_leaves_every_secret_empty():
    values = env_example()
    secrets = {name: value for name, value in values.items() if SECRET_NAME.search(name)}
    assert {"POSTGRES_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_TRACKING_PASSWORD"} <= set(secrets)
    assert {name: value for name, value in secrets.items() if value} == {}


def test_compose_requires_or_leaves_empty_every_secret():
    """Every secret of docker-compose.yml comes from .env: required (`${NAME:?why}`) or empty by default
    (`${NAME:-}`, then required by the service's entrypoint when its feature is on); none has a default."""
    model = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    seen = {}
    for service_name, service in model["services"].items():
        environment = service.get("environment") or {}
        for name, value in environment.items():
            value = str(value)
            if SECRET_NAME.search(name):
                seen[f"{service_name}.{name}"] = value
                match = re.fullmatch(r"\$\{([A-Z0-9_]+)(:\?[^}]+|:-)\}", value)
                assert match, f"{service_name}: {name} is {value!r}, not ${{NAME:?…}} or ${{NAME:-}}"
            for url in re.finditer(r"://([^@/\s]*)@", value):
                password = url.group(1).split(":", 1)[1] if ":" in url.group(1) else ""
                assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", password), (
                    f"{service_name}: {name} has a URL whose password is not the required ${{POSTGRES_PASSWORD:?…}}"
                )
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", seen["postgres.POSTGRES_PASSWORD"])
    assert "mlflow.MLFLOW_AUTH_ADMIN_PASSWORD" in seen and "prefect-worker.MLFLOW_TRACKING_PASSWORD" in seen


def test_no_literal_password_in_committed_files():
    found = []
    for path, text in text_files():
        relative = path.relative_to(REPO).as_posix()
        for number, line in enumerate(text.splitlines(), 1):
            for match in URL_PASSWORD.finditer(line):
                if not is_placeholder(match.group(2)):
                    found.append(f"{relative}:{number}: a password in a URL")
            for match in ENV_ASSIGNMENT.finditer(line):
                value = match.group(2)
                if value not in ("", ".*") and not value.startswith("$"):  # `.*`: a sed pattern in the docs
                    found.append(f"{relative}:{number}: {match.group(1)} set to a literal")
            for match in QUOTED_ASSIGNMENT.finditer(line):
                if (match.group(1), match.group(2)) not in REFUSED_LITERALS and not is_placeholder(match.group(2)):
                    found.append(f"{relative}:{number}: {match.group(1)} set to a literal")
    assert found == []


def test_the_published_mlflow_password_appears_only_where_it_is_refused():
    places = {
        path.relative_to(REPO).as_posix()
        for path, text in text_files()
        if "password1234" in text
    }
    assert places <= {"cli/local_servers.py", "docker/mlflow-entrypoint.sh"}, places


def test_files_that_hold_secrets_are_neither_tracked_nor_committable():
    tracked = [path.relative_to(REPO).as_posix() for path in tracked_files()]
    secret_files = re.compile(r"(^|/)(\.env|basic_auth\.ini|credentials|id_[a-z0-9]+)$|\.(db|sqlite|pem|key|p12)$")
    assert [name for name in tracked if secret_files.search(name)] == []
    for name in (".env", "basic_auth.db", "mlflow.db", "optuna-journal.log"):  # what `redes` and compose write here
        done = subprocess.run(["git", "check-ignore", "-q", name], cwd=REPO)
        assert done.returncode == 0, f"{name} is not ignored by git"
