"""Importing a redes library leaves its host's environment alone; the entry points apply the offline defaults.

Each check runs in a fresh interpreter whose environment lacks every default, so that
nothing this test process imported or set earlier can hide a change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runtime.environment import OFFLINE_DEFAULTS
from runtime.terminal import QUIET

REPO_ROOT = Path(__file__).resolve().parents[3]

#: Third-party libraries loaded first: what they set at their own import (scikit-learn sets
#: KMP_DUPLICATE_LIB_OK) is theirs, not redes's.
LIBRARIES = ("sklearn", "mlflow", "optuna", "prefect")

IMPORT_ALL = """
import importlib, json, os, pkgutil, sys
for library in %r:
    importlib.import_module(library)
before = dict(os.environ)
for package in sys.argv[1:]:
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__, package + "."):
        importlib.import_module(info.name)
changed = {k: v for k, v in os.environ.items() if before.get(k) != v}
removed = [k for k in before if k not in os.environ]
print(json.dumps({"changed": changed, "removed": removed}))
""" % (LIBRARIES,)

ENTRY_POINT = """
import json, os
from cli.main import app
try:
    app(["perceptron", "--help"], prog_name="redes")
except SystemExit:
    pass
print(json.dumps({k: os.environ.get(k) for k in %r}))
"""


def _bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_DEFAULTS and k not in QUIET}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _run(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=_bare_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_every_module_of_the_libraries_changes_no_variable():
    diff = _run(IMPORT_ALL, "runtime", "mnist", "tracking", "flows")
    assert diff == {"changed": {}, "removed": []}


def test_the_redes_command_applies_the_offline_defaults():
    seen = _run(ENTRY_POINT % (list(OFFLINE_DEFAULTS),))
    assert seen == OFFLINE_DEFAULTS
