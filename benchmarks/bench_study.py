"""Trials per hour of a fixed small search with W = 1 and W = 2 workers, and the tracking overhead.

Runs the real study flow (embedded stores in a temporary folder, Prefect's local mode)
on a slice of the real MNIST. Reports, per W: wall time, trials per hour, the median
share of a trial's wall time spent in MLflow and Optuna calls, and peak RSS per worker.

    .venv/bin/python benchmarks/bench_study.py --trials 8 --train-size 10000
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

#: The fixed small search both study benchmarks time: 784-100-10 sigmoid, mini-batch 10.
SPACE = (Path(__file__).with_name("fixed_784_100_10.toml")).read_text()


def run(workers: int, trials: int, train_size: int, epochs: int, root: Path) -> dict:
    os.chdir(root)
    os.environ["REDES_MNIST_MIRRORS"] = str(SHARED_MNIST)
    os.environ["REDES_DATA_DIR"] = str(root.parent / "data")
    from flows.study import run_study
    from tracking.study_request import StudyRequest
    from tracking import studies

    space = root / "space.toml"
    space.write_text(SPACE)
    name = f"bench-w{workers}"
    started = time.perf_counter()
    outcome = run_study(StudyRequest(
        workers=workers, name=name, trials=trials, sampler="random", pruner="none", space_file=str(space),
        epochs=epochs, patience=epochs, train_size=train_size, val_size=2_000,
    ))
    wall = time.perf_counter() - started
    study = studies.load(name, studies.open_storage(str(root / "optuna-journal.log")))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    overhead = [t.user_attrs["tracking_seconds"] / t.duration.total_seconds() for t in complete]
    trial_wall = [t.duration.total_seconds() for t in complete]
    return {
        "workers": workers,
        "trials": len(complete),
        "wall_s": wall,
        "search_s": sum(trial_wall) / workers,
        "trials_per_hour": 3600 * len(complete) / wall,
        "median_trial_s": statistics.median(trial_wall),
        "tracking_overhead": statistics.median(overhead),
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="redes-bench-study-") as tmp:
        rows = []
        for workers in args.workers:
            root = Path(tmp) / f"w{workers}"
            root.mkdir()
            rows.append(run(workers, args.trials, args.train_size, args.epochs, root))
    print(f"\n{'W':>2} {'trials':>6} {'wall s':>8} {'trials/h':>9} {'median trial s':>15} {'tracking share':>15}")
    for row in rows:
        print(
            f"{row['workers']:>2} {row['trials']:>6} {row['wall_s']:>8.1f} {row['trials_per_hour']:>9.0f} "
            f"{row['median_trial_s']:>15.2f} {100 * row['tracking_overhead']:>14.1f}%"
        )
    print(f"peak RSS of this process (W=1 trials run here): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"largest child (a W=2 worker): {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
