"""Every setting redes reads from the environment, in one typed place.

The same names work on a laptop (embedded defaults: files and SQLite under the working
folder) and on a team's stack (URLs of PostgreSQL, a Prefect server, an MLflow server).
The compose file sets exactly these names; a test checks that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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


def _split_list(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    return items or None


@dataclass(frozen=True)
class Settings:
    """Where data, runs and studies live. Build with :meth:`from_env`."""

    workdir: Path = field(default_factory=Path.cwd)
    data_dir: Path = Path("data")
    mnist_mirrors: tuple[str, ...] | None = None
    optuna_storage: str | None = None
    mlflow_tracking_uri: str | None = None
    prefect_api_url: str | None = None
    blas_threads: int | None = None
    optuna_heartbeat: str | None = None  # "interval,grace" in seconds; parsed by tracking.studies

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, workdir: Path | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        workdir = (workdir or Path.cwd()).resolve()
        data_dir = Path(env.get(ENV_DATA_DIR) or workdir / "data")
        return cls(
            workdir=workdir,
            data_dir=data_dir if data_dir.is_absolute() else workdir / data_dir,
            mnist_mirrors=_split_list(env.get(ENV_MNIST_MIRRORS)),
            optuna_storage=env.get(ENV_OPTUNA_STORAGE) or None,
            mlflow_tracking_uri=env.get(ENV_MLFLOW_TRACKING_URI) or None,
            prefect_api_url=env.get(ENV_PREFECT_API_URL) or None,
            blas_threads=int(env[ENV_BLAS_THREADS]) if env.get(ENV_BLAS_THREADS) else None,
            optuna_heartbeat=(env.get(ENV_OPTUNA_HEARTBEAT) or "").strip() or None,
        )

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
