"""Prefect flows of redes: data, training runs, studies, schedules.

Importing the package applies the offline defaults before Prefect or MLflow load.
"""

from flows.environment import apply_offline_defaults

apply_offline_defaults()
