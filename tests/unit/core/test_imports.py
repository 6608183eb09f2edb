"""core imports NumPy and the standard library only: each module is imported alone in a fresh interpreter."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import core

MODULES = ["core"] + [f"core.{m.name}" for m in pkgutil.iter_modules([str(Path(core.__file__).parent)])]
HEAVY = ("mlflow", "optuna", "prefect", "pandas", "torch", "scipy", "matplotlib", "sklearn", "flows", "tracking")

PROBE = """
import json, sys
before = set(sys.modules)
import {module}
new = {{name.split(".")[0] for name in set(sys.modules) - before}}
print(json.dumps(sorted(new)))
"""


def test_every_module_is_listed():
    assert {"core.network", "core.training", "core.layers", "core.perceptron", "core.costs"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_pulls_in_numpy_and_stdlib_only(module, repo_root):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    new = set(json.loads(out.strip().splitlines()[-1]))
    assert not new & set(HEAVY), f"{module} imported {sorted(new & set(HEAVY))}"
    foreign = new - set(sys.stdlib_module_names) - {"numpy", "core"}
    assert not foreign, f"{module} imported {sorted(foreign)}, which is neither NumPy nor the standard library"
