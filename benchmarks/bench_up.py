"""Start-up of `redes --help`, `redes train` and `redes study`, with and without `redes up`, before and after a change (issue #16).

Two folders, each warmed by one `redes train` first (split cached, MLflow store created):
one in Prefect's local mode (a temporary server per command), one where `redes up --no-ui`
runs a Prefect server that the commands find in `.redes/servers.json`. The timed runs of
`redes train --epochs 1 --train-size 1000 --val-size 1000` alternate between the two folders,
so that the load of a shared machine falls on both alike; then `redes study --trials 2
--epochs 1` in each (``--workers 2``: 4 trials on a pool of two processes), timed to its first
trial's first epoch (the timestamp MLflow gives that epoch's metrics). One BLAS thread, telemetry off, each folder its own Prefect home; `redes down`
stops the server.

``--before DIR`` runs every command a second time, in turns, with the code of the checkout DIR
(``PYTHONPATH=DIR``, the same venv and libraries; its own `redes up` folder, so that its launcher has
loaded its code), and prints both side by side: the change measured under the same load.

    .venv/bin/python benchmarks/bench_up.py [--repeats 3] [--before /path/to/main] [--no-local] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_overhead import REDES, SPACE_FILE, redes_env, timed

TRAIN = [REDES, "train", "--epochs", "1", "--train-size", "1000", "--val-size", "1000"]
HELP = [REDES, "--help"]
UP = "after `redes up`"


def timed_cpu(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and the children it waited for, such as
    Prefect's temporary server; not a server of `redes up`) of one run: CPU time varies less with the load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, env, cwd)[1]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def study_first_epoch(folder: Path, env: dict[str, str], name: str, workers: int = 1) -> float:
    """Seconds from launching a new study NAME (2 trials of 1 epoch per worker) to the MLflow timestamp of its first epoch."""
    from mlflow.tracking import MlflowClient

    from tracking import studies

    argv = [
        REDES, "study", "--name", name, "--trials", str(2 * workers), "--workers", str(workers), "--sampler", "random", "--pruner", "none",
        "--space", str(SPACE_FILE), "--epochs", "1", "--patience", "1", "--seed", "0", "--train-size", "1000",
        "--val-size", "1000",
    ]  # fmt: skip
    started = timed(argv, env, folder)[0]
    study = studies.load(name, studies.open_storage(str(folder / "optuna-journal.log")))
    first = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.number)
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    return min(m.timestamp for m in client.get_metric_history(first.user_attrs["mlflow_run_id"], "val/accuracy")) / 1000 - started


def with_code(env: dict[str, str], checkout: Path | None) -> dict[str, str]:
    """ENV running the redes code of CHECKOUT (None: this venv's own)."""
    return env if checkout is None else {**env, "PYTHONPATH": str(checkout)}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with (e.g. the main branch)")
    parser.add_argument("--no-local", action="store_true", help="only the folder with `redes up` (local mode costs ~40 s a command)")
    parser.add_argument("--workers", default="1", help="worker processes of the timed studies, e.g. 1,2 (2: the pool's start-up)")
    args = parser.parse_args()
    codes = {"after": None, **({"before": args.before.resolve()} if args.before else {})}
    print(f"machine: {os.cpu_count()} CPUs, load average {load()}")
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}

    def record(row: str, code: str, wall: float, cpu: float | None = None) -> None:
        walls.setdefault((row, code), []).append(wall)
        if cpu is not None:
            cpus.setdefault((row, code), []).append(cpu)

    with tempfile.TemporaryDirectory(prefix="redes-bench-up-") as tmp:
        root = Path(tmp)
        # each code its own `redes up` (its launcher has loaded that code); the local-mode folder is shared
        served = {code: root / f"up-{code}" for code in codes}
        local = {} if args.no_local else {"Prefect local mode": root / "local"}

        def folder_of(label: str, code: str) -> Path:
            return served[code] if label == UP else local[label]

        def env_of(label: str, code: str) -> dict[str, str]:
            folder = folder_of(label, code)
            return with_code(redes_env(root / "data", folder / "prefect-home", None), codes[code])

        labels = [UP, *local]
        up_walls = {}
        for code, folder in served.items():
            folder.mkdir()
            up_walls[code] = timed([REDES, "up", "--no-ui", "--prefect-port", "0"], env_of(UP, code), folder)[1]
        try:
            for label in labels:  # warm: split cached, MLflow store and Prefect database created
                for code in codes if label == UP else ["after"]:
                    timed(TRAIN, env_of(label, code), folder_of(label, code))
            for _ in range(args.repeats):
                for code in codes:
                    record("redes --help", code, *timed_cpu(HELP, env_of(UP, code), served[code]))
                    for label in labels:
                        record(f"redes train, {label}", code, *timed_cpu(TRAIN, env_of(label, code), folder_of(label, code)))
            for workers in map(int, args.workers.split(",")):
                for _ in range(args.repeats):
                    for label in labels:
                        for code in codes:
                            name = f"bench-{code}-{time.time_ns()}"
                            row = f"redes study{f' --workers {workers}' if workers > 1 else ''} to first epoch, {label}"
                            record(row, code, study_first_epoch(folder_of(label, code), env_of(label, code), name, workers))
        finally:
            for code, folder in served.items():
                subprocess.run([REDES, "down"], env=env_of(UP, code), cwd=folder, capture_output=True, timeout=120)
    for code, wall in up_walls.items():
        print(f"{code}: `redes up --no-ui` returned after {wall:.1f} s (a new Prefect database)")
    print()
    header = f"{'':<46}" + "".join(f" {code + ': wall s, each run':>28} {'median':>7} {'CPU s':>6}" for code in reversed(codes))
    print(header)
    rows = dict.fromkeys(row for row, _ in walls)
    for row in rows:
        line = f"{row:<46}"
        for code in reversed(codes):
            runs = walls[(row, code)]
            cpu = f"{statistics.median(cpus[(row, code)]):>6.1f}" if (row, code) in cpus else f"{'':>6}"
            line += f" {' '.join(f'{w:.1f}' for w in runs):>28} {statistics.median(runs):>7.2f} {cpu}"
        print(line)
    print("(CPU s: median, user + system of the command and the children it waited for)")
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
