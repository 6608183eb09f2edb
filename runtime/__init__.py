"""Settings and process plumbing shared by the flows, tracking and the command line.

Typed settings read from the environment, the offline defaults the entry points apply,
server start and stop, URL masking, and what reaches the terminal. No Prefect, MLflow or
Optuna import at module level.
"""
