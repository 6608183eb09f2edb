#!/usr/bin/env bash
# Starts what the tests need and is not running yet: PostgreSQL 15 when it is installed.
set -uo pipefail
if command -v pg_lsclusters >/dev/null 2>&1; then
  if ! pg_lsclusters --no-header 2>/dev/null | awk '{print $4}' | grep -q online; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster 15 main start || echo "services: PostgreSQL did not start; tests that need it will fail"
  fi
fi
exit 0
