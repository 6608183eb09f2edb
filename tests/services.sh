#!/usr/bin/env bash
# Starts what the tests need and is not running yet: PostgreSQL 15 when it is installed,
# and Debian's Chromium (with a font) for the browser test when apt is available.
set -uo pipefail
if command -v pg_lsclusters >/dev/null 2>&1; then
  if ! pg_lsclusters --no-header 2>/dev/null | awk '{print $4}' | grep -q online; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster 15 main start || echo "services: PostgreSQL did not start; tests that need it will fail"
  fi
fi

# The browser test (tests/integration/stack/test_browser.py) uses Chromium when present;
# with CI=true a missing Chromium fails it. Install it here, never from the test.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
  }
  if [ "$(id -u)" -ne 0 ]; then
    echo "services: Chromium is missing and installing it needs root; the browser test will skip (fail with CI=true)"
  else
    echo "services: installing Chromium and fonts-dejavu-core for the browser test"
    if ! apt_install >/dev/null; then
      echo "services: apt-get install failed; refreshing the package lists and retrying"
      apt-get update -q >/dev/null && apt_install >/dev/null \
        || echo "services: Chromium could not be installed; the browser test will skip (fail with CI=true)"
    fi
  fi
fi
exit 0
