"""`redes --help` loads no heavy library, and the `redes train` path never loads Optuna (benchmarks/README.md: start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
{code}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def loaded(code: str, repo_root) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], cwd=repo_root, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_the_command_line_loads_no_heavy_library_before_a_command_runs(repo_root):
    heavy = loaded("import cli.main", repo_root) & {"numpy", "prefect", "mlflow", "optuna", "pandas", "matplotlib"}
    assert not heavy, f"`redes --help` imports {sorted(heavy)}"


def test_the_train_path_loads_no_optuna(repo_root):
    code = (
        "import cli.main, flows.train_once, tracking.tracked_training, tracking.champion\n"
        "from cli.common import user_errors\n"
        "with user_errors(): pass"
    )
    modules = loaded(code, repo_root)
    assert "mlflow" in modules  # the probe did reach the tracking code
    assert "optuna" not in modules
