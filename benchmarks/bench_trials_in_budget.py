"""How many trials one study fits into its time budget, this code beside an earlier checkout (issue #16).

The job is `make run`'s study as it was when issue #16 was filed (commit 2a3a4cb): the default
search space, TPE with the median pruner, the known-good parameter sets first, at most 40 epochs
with patience 4, η halved when validation stalls, 2 worker processes, a 7-minute budget (no trial
starts after it) and 90 s of grace (trials still running then stop with their best epoch),
50,000 / 10,000 images, the best network tested once. ``--timeout``, ``--epochs``, ``--patience``
and ``--train-size`` make other jobs, e.g. the short trials of a study that prunes most of them
after an epoch or two.

Each code runs the same job through its own Python API (``run_study_command``, the function behind
`redes study` and `redes run`), in a new folder of its own (MNIST from ../shared, Prefect's local
mode, embedded stores), one after the other, never at once, so each has the whole machine; with
``--repeats`` the order alternates. One BLAS thread per worker, telemetry off. Counted from the
Optuna journal: trials by state and the epochs they trained; the test accuracy is the job's own.

    .venv/bin/python benchmarks/bench_trials_in_budget.py --before /path/to/checkout-of-2a3a4cb
    .venv/bin/python benchmarks/bench_trials_in_budget.py --before DIR --timeout 2m --grace 30s --epochs 2 --patience 2 --train-size 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench_overhead import redes_env

from cli.common import parse_duration

#: Runs the job with the code on PYTHONPATH: the request API of today's code, or the keyword API of the code
#: whose commands lived in `flows.commands` (2a3a4cb and its neighbours). The venv's editable install puts this
#: checkout on sys.path after PYTHONPATH, so the API is told, not guessed from what imports.
DRIVER = r"""
import json, sys
job, keyword_api = json.loads(sys.argv[1]), sys.argv[2] == "keywords"
common = dict(name=job["name"], trials=1000, sampler="tpe", pruner="median", workers=job["workers"], epochs=job["epochs"],
              patience=job["patience"], eta_schedule=True, seed=0, train_size=job["train_size"], val_size=job["val_size"])
if keyword_api:
    from flows.commands.study import run_study_command
    outcome = run_study_command(storage=None, space=None, mirror=None, main=True, enqueue=True, diagnostics=False,
                                timeout=f"{job['timeout']}s", hard_timeout=f"{job['timeout'] + job['grace']}s", **common)
else:
    from cli.study import run_study_command
    from tracking.study_request import KNOWN_GOOD, StudyRequest

    request = StudyRequest(enqueue=KNOWN_GOOD, timeout_seconds=job["timeout"], hard_timeout_seconds=job["timeout"] + job["grace"], **common)
    outcome = run_study_command(request, None, main=True)
print("OUTCOME " + json.dumps({k: v for k, v in outcome.items() if isinstance(v, (int, float, str))}))
"""


def run_job(code: Path, folder: Path, job: dict) -> dict:
    """Run JOB with the code of CODE in FOLDER; count its trials from the journal it wrote."""
    import optuna

    folder.mkdir(parents=True)
    env = redes_env(folder / "data", folder / "prefect-home", None)
    env.update(PYTHONPATH=str(code), PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    api = "keywords" if (code / "flows" / "commands" / "study.py").exists() else "request"
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(job), api], env=env, cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (folder / "output.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"the job with {code} failed ({proc.returncode}), see {folder / 'output.txt'}:\n{proc.stderr[-3000:]}")
    outcome = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("OUTCOME "))[8:])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "optuna-journal.log")))
    trials = optuna.load_study(study_name=job["name"], storage=storage).trials
    states = Counter(t.state.name for t in trials)
    return {
        "wall": wall,
        "trials": len(trials),
        "states": ", ".join(f"{state} {n}" for state, n in sorted(states.items())),
        "epochs": sum(len(t.intermediate_values) for t in trials),
        "best_val": max((t.value for t in trials if t.value is not None), default=float("nan")),
        "test": outcome.get("test_accuracy", float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--timeout", default="7m", help="budget: no trial starts after it (7m)")
    parser.add_argument("--grace", default="90s", help="then trials still running stop with their best epoch (90s)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--val-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    job = {
        "name": "budget", "timeout": parse_duration(args.timeout), "grace": parse_duration(args.grace), "epochs": args.epochs,
        "patience": args.patience, "train_size": args.train_size, "val_size": args.val_size, "workers": args.workers,
    }  # fmt: skip
    codes = {"after": Path(__file__).resolve().parents[1], "before": args.before.resolve()}
    print(f"job: {json.dumps(job)}; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="redes-budget-") as root:
        for repeat in range(args.repeats):
            order = list(codes) if repeat % 2 == 0 else list(reversed(codes))
            for label in order:
                row = run_job(codes[label], Path(root) / f"{label}-{repeat}", job)
                rows.append((label, row))
                print(
                    f"{label:6} ({codes[label]}): {row['trials']} trials ({row['states']}), {row['epochs']} epochs trained, "
                    f"best validation {row['best_val']:.4f}, test {row['test']:.4f}, {row['wall']:.1f} s wall",
                    flush=True,
                )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
