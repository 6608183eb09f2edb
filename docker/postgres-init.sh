#!/bin/bash
# One PostgreSQL server, one database per store, all owned by POSTGRES_USER.
# The postgres image runs this once, on the first start with an empty data volume
# (/docker-entrypoint-initdb.d); later starts keep the data.
#   prefect      Prefect server (flow runs, deployments, work pools)
#   mlflow       MLflow tracking server (experiments, runs, models)
#   mlflow_auth  MLflow basic-auth users and permissions (used when MLFLOW_BASIC_AUTH=true)
#   optuna       Optuna studies (REDES_OPTUNA_STORAGE)
set -euo pipefail

for database in prefect mlflow mlflow_auth optuna; do
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --command "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\";"
done
