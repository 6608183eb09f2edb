"""The error a study's worker pool raises, in a module of its own so the CLI can catch it without importing Optuna or Prefect."""


class WorkersKeepDying(RuntimeError):
    """The worker processes died again and again; what they finished is kept."""
