"""Start-up of `redes train` and `redes study` with and without `redes up` (issue #16), side by side.

Two folders, each warmed by one `redes train` first (split cached, MLflow store created):
one in Prefect's local mode (a temporary server per command), one where `redes up --no-ui`
runs a Prefect server that the commands find in `.redes/servers.json`. The timed runs of
`redes train --epochs 1 --train-size 1000 --val-size 1000` alternate between the two folders,
so that the load of a shared machine falls on both alike; then `redes study` in each, timed
to its first trial's first epoch (the timestamp MLflow gives that epoch's metrics). One BLAS
thread, telemetry off, each folder its own Prefect home; `redes down` stops the server.

    .venv/bin/python benchmarks/bench_up.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench_overhead import REDES, redes_env, redes_study, timed

TRAIN = [REDES, "train", "--epochs", "1", "--train-size", "1000", "--val-size", "1000"]


def timed_cpu(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and the children it waited for, such as
    Prefect's temporary server; not a server of `redes up`) of one run: CPU time varies less with the load."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, env, cwd)[1]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="redes-bench-up-") as tmp:
        root = Path(tmp)
        local, served = root / "local", root / "up"
        env = {folder: redes_env(root / "data", folder / "prefect-home", None) for folder in (local, served)}
        served.mkdir()
        up_wall = timed([REDES, "up", "--no-ui", "--prefect-port", "0"], env[served], served)[1]
        try:
            for folder in (local, served):  # warm: split cached, MLflow store and Prefect database created
                timed(TRAIN, env[folder], folder)
            walls: dict[Path, list[float]] = {local: [], served: []}
            cpus: dict[Path, list[float]] = {local: [], served: []}
            for _ in range(args.repeats):
                for folder in (local, served):
                    wall, cpu = timed_cpu(TRAIN, env[folder], folder)
                    walls[folder].append(wall)
                    cpus[folder].append(cpu)
            first_epoch = {
                folder: redes_study(folder, env[folder], trials=2, epochs=1, train_size=1000, val_size=1000)["first_epoch"]
                for folder in (local, served)
            }
        finally:
            subprocess.run([REDES, "down"], env=env[served], cwd=served, capture_output=True, timeout=120)
    print(f"`redes up --no-ui` returned after {up_wall:.1f} s (a new Prefect database)")
    print(f"\n{'':<44} {'wall s, each run':>24} {'median':>8} {'CPU s, median':>14}")
    for label, folder in (("redes train, Prefect local mode", local), ("redes train, after `redes up`", served)):
        runs = " ".join(f"{wall:.1f}" for wall in walls[folder])
        print(f"{label:<44} {runs:>24} {statistics.median(walls[folder]):>8.1f} {statistics.median(cpus[folder]):>14.1f}")
    print(f"{'redes study to first epoch, local mode':<44} {'':>24} {first_epoch[local]:>8.1f}")
    print(f"{'redes study to first epoch, after `redes up`':<44} {'':>24} {first_epoch[served]:>8.1f}")
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
