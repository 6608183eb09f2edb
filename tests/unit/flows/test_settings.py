"""The environment defaults and the settings class: offline unless told otherwise."""

from pathlib import Path

from flows.environment import OFFLINE_DEFAULTS, apply_offline_defaults
from flows.settings import Settings


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
