"""Trials per hour of one fixed tiny search: the stack (PostgreSQL, Prefect server, 2 workers) vs the embedded default.

stack     PostgreSQL databases of their own; `prefect server start` and `mlflow server` on
          them; a process work pool with two `prefect worker` processes; the study flow
          deployed to the pool and two flow runs of one study triggered at once, each
          with half the trials (workers=1 per flow run). Timed from the trigger to both
          flow runs finished; the servers' start-up is reported apart (they run for days).
embedded  `redes study --workers 2` in a fresh folder with nothing set: a journal file for
          Optuna, SQLite for MLflow, Prefect's local mode. Timed from the command's start
          to its exit, its temporary Prefect server included.

Both run the same search: one hidden layer of 100 sigmoid units, batch 10, cross-entropy
(only η, λ and dropout vary, which barely change the cost of a trial), 2 epochs on 2,000
images, no pruning. "window" is the time from the first trial's start to the last trial's
end (the search itself, without start-up).

    .venv/bin/python benchmarks/bench_stack.py --trials 12

Needs the local PostgreSQL 15 (running; root for `su postgres`) and the dev extra.
The stack's helpers are those of the distributed test (tests/integration/stack/conftest.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(os.environ.get("REDES_TEST_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))

#: The fixed small search both study benchmarks time: 784-100-10 sigmoid, mini-batch 10.
SPACE = (Path(__file__).with_name("fixed_784_100_10.toml")).read_text()


def stack_helpers():
    sys.path.insert(0, str(REPO / "tests"))  # the stack's helpers import tests/support, as under pytest
    spec = importlib.util.spec_from_file_location("redes_stack_helpers", REPO / "tests" / "integration" / "stack" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def search_stats(trials: list, wall: float) -> dict:
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    window = (max(t.datetime_complete for t in complete) - min(t.datetime_start for t in complete)).total_seconds()
    return {
        "trials": len(complete),
        "wall_s": round(wall, 1),
        "window_s": round(window, 1),
        "trials_per_hour_wall": round(3600 * len(complete) / wall),
        "trials_per_hour_window": round(3600 * len(complete) / window),
        "median_trial_s": round(statistics.median(t.duration.total_seconds() for t in complete), 2),
        "median_train_s": round(statistics.median(t.user_attrs.get("seconds", float("nan")) for t in complete), 2),
        # MLflow calls inside the trial (per-epoch batches, weights, plots), as measured by tracked_training
        "median_tracking_s": round(statistics.median(t.user_attrs.get("tracking_seconds", float("nan")) for t in complete), 2),
    }


def run_stack(root: Path, trials: int, train_size: int, val_size: int, epochs: int, source: Path = REPO) -> dict:
    import optuna

    h = stack_helpers()
    reason = h.postgres_unavailable()
    if reason:
        raise SystemExit(f"bench_stack: {reason}")
    dbs = h.create_databases()
    try:
        started = time.perf_counter()
        stack = h.start_stack(root / "stack", dbs, workers=2, mnist_dir=SHARED_MNIST, data_dir=root / "data")
        ready = time.perf_counter() - started
        try:
            space = root / "space.toml"
            space.write_text(SPACE)
            name = "bench-stack"
            shares = [trials // 2 + trials % 2, trials // 2]
            with h.prefect_client(stack.prefect_api) as client:
                from prefect import flow
                from prefect.deployments import run_deployment

                deployment_id = flow.from_source(source=str(source), entrypoint="flows/study.py:mnist_study").deploy(
                    name="bench", work_pool_name=stack.pool, print_next_steps=False, ignore_warnings=True
                )
                triggered = time.perf_counter()
                run_ids = [
                    run_deployment(
                        deployment_id, timeout=0, as_subflow=False,
                        parameters={"request": {
                            "name": name, "trials": share, "workers": 1, "sampler": "random", "pruner": "none",
                            "space_file": str(space), "train_size": train_size, "val_size": val_size,
                            "epochs": epochs, "patience": epochs, "seed": 0, "eta_schedule": False,
                        }},
                    ).id
                    for share in shares
                ]  # fmt: skip
                while True:
                    runs = [client.read_flow_run(i) for i in run_ids]
                    if all(r.state is not None and r.state.is_final() for r in runs):
                        break
                    time.sleep(0.5)
                wall = time.perf_counter() - triggered
                states = [r.state_type.value for r in runs]
                if states != ["COMPLETED", "COMPLETED"]:
                    raise SystemExit(f"bench_stack: flow runs ended {states}; see {root / 'stack' / 'logs'}")
            storage = optuna.storages.RDBStorage(stack.optuna_url)
            study_trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
            storage.engine.dispose()
        finally:
            h.stop_stack(stack)
    finally:
        h.drop_databases(dbs)
    return {"mode": "stack: PostgreSQL + Prefect server + 2 workers", "servers_ready_s": round(ready, 1),
            **search_stats(study_trials, wall)}  # fmt: skip


def run_embedded(root: Path, trials: int, train_size: int, val_size: int, epochs: int) -> dict:
    from optuna import load_study
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    root.mkdir(parents=True, exist_ok=True)
    (root / "space.toml").write_text(SPACE)
    unset = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true", PREFECT_SERVER_ANALYTICS_ENABLED="false",
        REDES_MNIST_MIRRORS=str(SHARED_MNIST), REDES_DATA_DIR=str(root.parent / "data"),
        PREFECT_HOME=str(root / "prefect-home"), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
    )  # fmt: skip
    argv = [
        str(Path(sys.executable).with_name("redes")), "study", "--name", "bench-embedded", "--trials", str(trials),
        "--workers", "2", "--sampler", "random", "--pruner", "none", "--space", "space.toml",
        "--epochs", str(epochs), "--patience", str(epochs), "--seed", "0",
        "--train-size", str(train_size), "--val-size", str(val_size),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bench_stack: redes study failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    study = load_study(study_name="bench-embedded", storage=JournalStorage(JournalFileBackend(str(root / "optuna-journal.log"))))
    return {"mode": "embedded: journal file + SQLite + local Prefect, --workers 2", **search_stats(study.get_trials(), wall)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="trials in all (split between the two workers)")
    parser.add_argument("--train-size", type=int, default=2_000)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=["stack", "embedded"], default=["stack", "embedded"])
    parser.add_argument("--source", type=Path, default=REPO, help="the checkout the stack's workers run (to measure a change)")
    args = parser.parse_args()
    for key, value in {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}.items():
        os.environ.setdefault(key, value)
    runners = {"stack": lambda *a: run_stack(*a, source=args.source.resolve()), "embedded": run_embedded}
    rows = []
    with tempfile.TemporaryDirectory(prefix="redes-bench-stack-") as tmp:
        for mode in args.modes:
            load_before = os.getloadavg()[0]
            row = runners[mode](Path(tmp) / mode, args.trials, args.train_size, args.val_size, args.epochs)
            # the machine's 1-minute load average around the run: other work on shared cores skews the figures
            row["load_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'mode':<62} {'trials':>6} {'wall s':>7} {'window s':>9} {'trials/h wall':>14} {'trials/h window':>16} "
          f"{'median trial s':>15} {'training s':>11} {'MLflow s':>9}")
    for row in rows:
        print(
            f"{row['mode']:<62} {row['trials']:>6} {row['wall_s']:>7.1f} {row['window_s']:>9.1f} "
            f"{row['trials_per_hour_wall']:>14} {row['trials_per_hour_window']:>16} {row['median_trial_s']:>15.2f} "
            f"{row['median_train_s']:>11.2f} {row['median_tracking_s']:>9.2f}"
        )
    for row in rows:
        if "servers_ready_s" in row:
            print(f"(stack servers and workers ready in {row['servers_ready_s']} s, not counted above: they run for days)")


if __name__ == "__main__":
    main()
