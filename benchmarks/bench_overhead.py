"""Start-up and per-trial overhead of redes, beside a bare Optuna loop and Optuna + MLflow glued by hand.

One run, one machine, one objective: 12 trials of 784-100-10 sigmoid (mini-batch 10,
2 epochs, only η, λ and dropout vary, as in ``fixed_784_100_10.toml``) on a 5,000-image
slice of the real MNIST cut by redes's own split code. ``redes study`` runs first (random
sampler, seed 0); the two peer loops then enqueue the very parameters it drew, so every
loop trains the same 12 networks. Per trial, wall time comes from Optuna's trial
datetimes and training time from the ``train()`` seconds each loop records (redes: the
``seconds`` user attribute), so overhead = trial wall − training inside it.

Start-up: ``redes --help``; ``redes train --epochs 1 --train-size 1000 --val-size 1000``
in a new folder and again in the same folder, with Prefect's local mode, with a
Prefect server already running, and in a folder where `redes up --no-ui` runs Prefect's
server and the warm launcher (the commands are forked from it); ``redes study`` to its
first trial's first epoch (the timestamp MLflow gives that epoch's metrics). Threads pinned to 1, telemetry off, every
store embedded in a temporary folder, the Prefect server on 127.0.0.1 stopped by PID.

    .venv/bin/python benchmarks/bench_overhead.py
    .venv/bin/python benchmarks/bench_overhead.py --trials-only     # the per-trial table alone
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
SPACE_FILE = Path(__file__).with_name("fixed_784_100_10.toml")
REDES = str(Path(sys.executable).with_name("redes"))
PREFECT = str(Path(sys.executable).with_name("prefect"))

PINNED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "REDES_BLAS_THREADS": "1"}
OFFLINE = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
for key, value in {**PINNED, **OFFLINE}.items():
    os.environ.setdefault(key, value)


def redes_env(data_dir: Path, prefect_home: Path, api_url: str | None) -> dict[str, str]:
    """The environment of a redes subprocess: shared data, its own Prefect home, a server's URL or none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REDES_", "OPTUNA_"))}
    env.update(PINNED)
    env.update(OFFLINE)
    env.update({"REDES_MNIST_MIRRORS": str(SHARED_MNIST), "REDES_DATA_DIR": str(data_dir), "PREFECT_HOME": str(prefect_home)})
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run ARGV to completion; return (unix start time, wall seconds). A failure stops the benchmark."""
    cwd.mkdir(parents=True, exist_ok=True)
    started, t0 = time.time(), time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return started, wall


# --- the data and the trials every loop shares --------------------------------------------------------------


def prepare_split(data_dir: Path, train_size: int, val_size: int):
    """The split `redes study --train-size --val-size` uses, built with redes's own code (and reused by it)."""
    from mnist.download import fetch_mnist
    from mnist.split import SplitSpec, load_split, write_split

    fetch_mnist([str(SHARED_MNIST)], data_dir / "raw")
    return load_split(write_split(data_dir / "raw", data_dir / "splits", SplitSpec(train_size=train_size, val_size=val_size)))


def search_space(epochs: int):
    from tracking.study_request import StudyRequest

    return StudyRequest(space_file=str(SPACE_FILE), epochs=epochs, patience=epochs, seed=0).space()


def trial_rows(trials) -> dict:
    """Per-trial wall (Optuna's datetimes) and training (user attribute ``seconds``) of complete trials."""
    done = [t for t in trials if t.state.name == "COMPLETE"]
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return {
        "n": len(done),
        "span": span.total_seconds(),  # first trial's start to last trial's end: the gaps between trials too
        "trial_wall": [(t.datetime_complete - t.datetime_start).total_seconds() for t in done],
        "training": [float(t.user_attrs["seconds"]) for t in done],
        "params": [t.params for t in sorted(done, key=lambda t: t.number)],
    }


# --- (a) a bare Optuna loop calling core ----------------------------------------------------------------------


def bare_loop(split, space, params: list[dict]) -> dict:
    import optuna

    from core.network import Network
    from core.training import train
    from tracking.search_space import config_from_params, suggest

    def objective(trial: optuna.Trial) -> float:
        config = config_from_params(suggest(trial, space), space)
        result = train(Network.from_config(config), split.X_train, split.y_train, split.X_val, split.y_val, config)
        trial.set_user_attr("seconds", result.seconds)
        return result.best_val_accuracy

    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for p in params:
        study.enqueue_trial(p)
    study.optimize(objective, n_trials=len(params))
    return {"wall": time.perf_counter() - t0, **trial_rows(study.trials)}


# --- (b) Optuna + MLflow glued by hand --------------------------------------------------------------------------


def glued_loop(split, space, params: list[dict], root: Path) -> dict:
    """A nested MLflow run per trial, metrics per epoch, the weights as an .npz artifact; SQLite and a journal file."""
    import mlflow
    import numpy as np
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from core.network import Network
    from core.training import train
    from tracking.search_space import config_from_params, suggest

    root.mkdir(parents=True)
    t0 = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment("glued")

    def objective(trial: optuna.Trial) -> float:
        config = config_from_params(suggest(trial, space), space)
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial.params)

            def on_epoch_end(m) -> None:
                mlflow.log_metrics(
                    {"train/loss": m.train_loss, "train/accuracy": m.train_accuracy, "val/loss": m.val_loss,
                     "val/accuracy": m.val_accuracy}, step=m.epoch,
                )
                trial.report(m.val_accuracy, m.epoch)

            network = Network.from_config(config)
            result = train(network, split.X_train, split.y_train, split.X_val, split.y_val, config, on_epoch_end=on_epoch_end)
            weights = root / f"weights-{trial.number}.npz"
            np.savez(weights, *network.get_params())
            mlflow.log_artifact(str(weights))
            mlflow.log_metric("val/best_accuracy", result.best_val_accuracy)
        trial.set_user_attr("seconds", result.seconds)
        return result.best_val_accuracy

    storage = JournalStorage(JournalFileBackend(str(root / "optuna-journal.log")))
    study = optuna.create_study(
        study_name="glued", storage=storage, direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0)
    )
    for p in params:
        study.enqueue_trial(p)
    with mlflow.start_run(run_name="study"):
        study.optimize(objective, n_trials=len(params))
    return {"wall": time.perf_counter() - t0, **trial_rows(study.trials)}


# --- (c) redes study as a subprocess ----------------------------------------------------------------------------


def redes_study(root: Path, env: dict[str, str], trials: int, epochs: int, train_size: int, val_size: int) -> dict:
    """`redes study` with 1 worker on a journal file; trials read back from the journal, first epoch from MLflow."""
    from mlflow.tracking import MlflowClient

    from tracking import studies

    argv = [
        REDES, "study", "--name", "bench", "--trials", str(trials), "--workers", "1", "--sampler", "random",
        "--pruner", "none", "--space", str(SPACE_FILE), "--epochs", str(epochs), "--patience", str(epochs),
        "--seed", "0", "--train-size", str(train_size), "--val-size", str(val_size),
    ]
    started, wall = timed(argv, env, root)
    study = studies.load("bench", studies.open_storage(str(root / "optuna-journal.log")))
    first = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.number)
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    epoch1 = min(m.timestamp for m in client.get_metric_history(first.user_attrs["mlflow_run_id"], "val/accuracy"))
    return {"wall": wall, "first_epoch": epoch1 / 1000 - started, **trial_rows(study.trials)}


def start_prefect_server(root: Path):
    """A Prefect server on a free 127.0.0.1 port with its own home; returns (server, API URL)."""
    from runtime.servers import free_port, start_server

    port = free_port()
    env = redes_env(root / "data", root / "prefect-server-home", None)
    server = start_server(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/api/health", env=env, cwd=root, log_path=root / "prefect-server.log",
        timeout=180, name="prefect",
    )
    return server, f"http://127.0.0.1:{port}/api"


# --- the run ----------------------------------------------------------------------------------------------------


def start_up(root: Path, label: str, env: dict[str, str], repeats: int, folder: Path | None = None) -> list[tuple[str, float]]:
    """`redes train --epochs 1` on 1,000 + 1,000 images in a new folder, then REPEATS times in the same one."""
    argv = [REDES, "train", "--epochs", "1", "--train-size", "1000", "--val-size", "1000"]
    folder = folder or root / f"train-{label}"
    first = timed(argv, env, folder)[1]
    again = [timed(argv, env, folder)[1] for _ in range(repeats)]
    return [(f"redes train, {label}, new folder", first), (f"redes train, {label}, same folder (median of {repeats})", statistics.median(again))]


def with_launcher(root: Path, env: dict[str, str], args) -> tuple[list[tuple[str, float]], dict]:
    """In a folder where `redes up --no-ui` runs Prefect's server and the warm launcher: `redes train`, then the study."""
    folder = root / "up"
    folder.mkdir()
    subprocess.run([REDES, "up", "--no-ui", "--prefect-port", "0"], cwd=folder, env=env, check=True, capture_output=True, timeout=300)
    try:
        label = "after `redes up`"
        rows = start_up(root, label, env, args.repeats, folder=folder)
        study = redes_study(folder, env, args.trials, args.epochs, args.train_size, args.val_size)
    finally:
        subprocess.run([REDES, "down"], cwd=folder, env=env, capture_output=True, timeout=120)
    launched = (folder / ".redes" / "logs" / "launcher.log").read_text().count(" ran `")
    assert launched == args.repeats + 2, f"{launched} commands ran in the launcher, not {args.repeats + 2}"
    return rows + [(f"redes study to first trial's first epoch, {label}", study["first_epoch"])], study


def trial_line(name: str, row: dict) -> str:
    wall, training = statistics.mean(row["trial_wall"]), statistics.mean(row["training"])
    outside = row["wall"] - sum(row["trial_wall"])
    all_in = row["span"] / row["n"]
    return (
        f"{name:<44} {row['n']:>6} {row['wall']:>8.1f} {outside:>10.1f} {wall:>10.3f} {training:>10.3f} "
        f"{wall - training:>10.3f} {all_in:>10.3f} {all_in - training:>10.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=5_000)
    parser.add_argument("--val-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3, help="Warm repeats of `redes --help` and `redes train`.")
    parser.add_argument(
        "--trials-only", action="store_true",
        help="Only the per-trial table, without a Prefect server: no start-up timings (about 2 minutes).",
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"python {sys.version.split()[0]}; threads pinned to 1; telemetry off")
    with tempfile.TemporaryDirectory(prefix="redes-bench-overhead-") as tmp:
        root = Path(tmp)
        data = root / "data"
        split = prepare_split(data, args.train_size, args.val_size)
        local = redes_env(data, root / "prefect-home", None)

        startup = []
        if not args.trials_only:
            help_walls = [timed([REDES, "--help"], local, root)[1] for _ in range(args.repeats)]
            startup = [(f"redes --help (median of {args.repeats})", statistics.median(help_walls))]
            startup += start_up(root, "Prefect local mode", local, args.repeats)
        study_local = redes_study(root / "study-local", local, args.trials, args.epochs, args.train_size, args.val_size)

        space = search_space(args.epochs)
        bare = bare_loop(split, space, study_local["params"])
        glued = glued_loop(split, space, study_local["params"], root / "glued")

        study_served = None
        if not args.trials_only:
            server, api_url = start_prefect_server(root)
            try:
                served = redes_env(data, root / "prefect-home", api_url)
                startup += start_up(root, "Prefect server running", served, args.repeats)
                study_served = redes_study(root / "study-served", served, args.trials, args.epochs, args.train_size, args.val_size)
            finally:
                from runtime.servers import stop_server

                stop_server(server)
        startup.append(("redes study to first trial's first epoch, Prefect local mode", study_local["first_epoch"]))
        if study_served:
            startup.append(("redes study to first trial's first epoch, Prefect server running", study_served["first_epoch"]))
        study_up = None
        if not args.trials_only:
            launched, study_up = with_launcher(root, local, args)
            startup += launched
        same = bare["params"] == glued["params"] == study_local["params"] == (study_served or study_local)["params"]
        same = same and (study_up or study_local)["params"] == study_local["params"]

    print(f"\n{args.trials} trials of 784-100-10 sigmoid, mini-batch 10, {args.epochs} epochs on {args.train_size:,} "
          f"training + {args.val_size:,} validation images (same parameters in every loop: {'yes' if same else 'NO'})")
    print(f"{'loop':<44} {'trials':>6} {'wall s':>8} {'outside s':>10} {'trial s':>10} {'training s':>10} {'overhead s':>10} "
          f"{'span s':>10} {'all-in s':>10}")
    print(trial_line("bare Optuna loop calling core", bare))
    print(trial_line("Optuna + MLflow glued by hand (SQLite)", glued))
    print(trial_line("redes study, 1 worker, Prefect local mode", study_local))
    if study_served:
        print(trial_line("redes study, 1 worker, Prefect server running", study_served))
    if study_up:
        print(trial_line("redes study, 1 worker, after `redes up`", study_up))
    print("(outside: wall time before and after the trials; trial, training, overhead: mean per trial;\n"
          " span: first trial's start to last trial's end over trials, gaps between trials included; all-in: span − training)")
    print(f"\n{'start-up':<66} {'wall s':>8}")
    for name, seconds in startup:
        print(f"{name:<66} {seconds:>8.2f}")
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
