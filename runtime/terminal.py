"""What reaches the terminal: redes's own progress and results; the libraries' logs only with ``--verbose``.

Prefect's run loggers send every record to Prefect's API whatever the console shows (the
flow run's page keeps its INFO lines): only Prefect's console handler is raised to WARNING.
MLflow's own logger (database migrations, "Inferring model signature…", and its registry
prints, see :func:`tracking.champion.register`) is raised to WARNING too. Both are set in
the environment, so worker processes and served flow runs, started later, are quiet alike;
a value the user set is kept.
"""

from __future__ import annotations

import logging
import os
import sys

PREFECT_CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"  # logging.yml's handlers.console.level
MLFLOW_LEVEL = "MLFLOW_LOGGING_LEVEL"

QUIET = {PREFECT_CONSOLE_LEVEL: "WARNING", MLFLOW_LEVEL: "WARNING"}
VERBOSE = {PREFECT_CONSOLE_LEVEL: "NOTSET", MLFLOW_LEVEL: "INFO"}


def configure(verbose: bool) -> None:
    """Quiet libraries unless VERBOSE, in this process (Prefect is loaded already) and the ones it starts."""
    for key, value in (VERBOSE if verbose else QUIET).items():
        if verbose:
            os.environ[key] = value  # --verbose wins over an inherited quiet setting
        else:
            os.environ.setdefault(key, value)
    if "prefect.logging.handlers" in sys.modules:  # logging set up at `import prefect`: adjust its handler
        from prefect.logging.handlers import PrefectConsoleHandler

        for handler in logging.getLogger().handlers:
            if isinstance(handler, PrefectConsoleHandler):
                try:
                    handler.setLevel(os.environ[PREFECT_CONSOLE_LEVEL].upper())
                except ValueError:  # a level name logging does not know: Prefect will say so itself
                    pass
    if "mlflow" in sys.modules:  # set at MLflow's import otherwise
        logging.getLogger("mlflow").setLevel(os.environ[MLFLOW_LEVEL].upper())


def libraries_verbose() -> bool:
    """True when MLflow's INFO lines show (``--verbose``, or MLflow left at its default outside the CLI)."""
    return logging.getLogger("mlflow").isEnabledFor(logging.INFO)
