#!/bin/sh
# Entrypoint of the optuna-dashboard service: runs its command (optuna-dashboard ...) on the
# study database named by OPTUNA_DASHBOARD_STORAGE. The URL, password included, goes into a
# private TOML file read with --from-config, never onto the command line. Optuna's tables are
# created first when the database is empty, so /api/studies answers before the first study.
# optuna-dashboard has no authentication of its own: keep its port on 127.0.0.1.
set -eu
: "${OPTUNA_DASHBOARD_STORAGE:?OPTUNA_DASHBOARD_STORAGE is not set}"
umask 077
config="$(mktemp -d)/optuna-dashboard.toml"
python - "$config" <<'PY'
import json
import os
import sys

import optuna

url = os.environ["OPTUNA_DASHBOARD_STORAGE"]
optuna.storages.RDBStorage(url)  # creates the schema on an empty database; checks its version otherwise
with open(sys.argv[1], "w") as out:
    out.write("[optuna_dashboard]\n")
    out.write(f"storage = {json.dumps(url, ensure_ascii=False)}\n")
    out.write('storage_class = "RDBStorage"\n')
PY
unset OPTUNA_DASHBOARD_STORAGE
exec "$@" --from-config "$config"
