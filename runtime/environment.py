"""Process-wide defaults that keep redes offline and patient unless the user says otherwise.

Prefect and MLflow phone home on start; on a closed network that costs errors and
seconds. Prefect's ephemeral server also needs longer than its default 20 s to start on
a busy 2-core machine. Values the user already set are never touched.
"""

from __future__ import annotations

import os

OFFLINE_DEFAULTS: dict[str, str] = {
    "DO_NOT_TRACK": "true",  # the string "true": MLflow ignores "1"
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # redes draws its own progress
}


def apply_offline_defaults(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set each default the user has not set; return the ones that were applied."""
    env = os.environ if environ is None else environ
    applied = {}
    for key, value in OFFLINE_DEFAULTS.items():
        if key not in env:
            env[key] = value
            applied[key] = value
    return applied
