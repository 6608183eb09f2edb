"""Everything that talks to MLflow and Optuna.

Importing the package applies the offline defaults before MLflow loads.
"""

from flows.environment import apply_offline_defaults

apply_offline_defaults()
