#!/bin/sh
# Entrypoint of the mlflow service: runs its command (mlflow server ...) and, when
# MLFLOW_BASIC_AUTH=true, MLflow's basic authentication (--app-name basic-auth).
# Database URLs come from the environment (MLFLOW_BACKEND_STORE_URI, read by `mlflow server`;
# MLFLOW_AUTH_DATABASE_URI, written to a private config file), never from the command line.
# The admin user is created on the first start with MLFLOW_AUTH_ADMIN_PASSWORD; there is no
# default password, and the one older MLflow releases published is refused.
set -eu

case "${MLFLOW_BASIC_AUTH:-false}" in
  true | 1 | yes | on)
    : "${MLFLOW_AUTH_ADMIN_PASSWORD:?MLFLOW_BASIC_AUTH=true needs MLFLOW_AUTH_ADMIN_PASSWORD in .env}"
    : "${MLFLOW_FLASK_SERVER_SECRET_KEY:?MLFLOW_BASIC_AUTH=true needs MLFLOW_FLASK_SERVER_SECRET_KEY in .env}"
    : "${MLFLOW_AUTH_DATABASE_URI:?MLFLOW_AUTH_DATABASE_URI is not set}"
    if [ "$MLFLOW_AUTH_ADMIN_PASSWORD" = "password1234" ]; then
      echo "MLFLOW_AUTH_ADMIN_PASSWORD is the password older MLflow releases published; choose another" >&2
      exit 1
    fi
    umask 077
    MLFLOW_AUTH_CONFIG_PATH="$(mktemp -d)/basic_auth.ini"
    export MLFLOW_AUTH_CONFIG_PATH
    python - "$MLFLOW_AUTH_CONFIG_PATH" <<'PY'
import os
import sys


def value(text: str) -> str:
    return text.replace("%", "%%")  # MLflow reads the file with configparser interpolation


lines = [
    "[mlflow]",
    "default_permission = READ",
    f"database_uri = {value(os.environ['MLFLOW_AUTH_DATABASE_URI'])}",
    f"admin_username = {value(os.environ.get('MLFLOW_AUTH_ADMIN_USERNAME') or 'admin')}",
    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
]
with open(sys.argv[1], "w") as out:
    out.write("\n".join(lines) + "\n")
PY
    set -- "$@" --app-name basic-auth
    ;;
  false | 0 | no | off | "") ;;
  *)
    echo "MLFLOW_BASIC_AUTH must be true or false, not '$MLFLOW_BASIC_AUTH'" >&2
    exit 1
    ;;
esac
unset MLFLOW_AUTH_DATABASE_URI
exec "$@"
