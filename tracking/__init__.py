"""Everything that talks to MLflow and Optuna.

Importing the package changes nothing in the environment: the entry points (the `redes`
command, each flow) apply the offline defaults before MLflow is used.
"""
