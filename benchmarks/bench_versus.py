"""Core's epoch speed against another checkout of redes, epoch for epoch, on the same machine at the same time.

`bench_core.py` compares core with PyTorch; a refactoring must not slow core, and on a shared
machine two separate runs differ by more than the 5 % that matters. Here two long-lived
processes, one per checkout, each build `bench_core.CoreEpoch` from their own tree and take
turns timing one epoch (order alternating), so load that comes and goes hits both alike. The
ratio of the medians (this tree's samples/s over the baseline's) is what counts; the CPU
seconds of the epoch (one BLAS thread, so one core) are reported beside wall time because
they move far less with other work on the machine.

    git worktree add /tmp/baseline <commit>
    python benchmarks/bench_versus.py /tmp/baseline --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

# Runs inside each child: its own tree first on the path, then one line per command.
CHILD = r"""
import json, sys, time
tree = sys.argv[1]
sys.path[:0] = [tree, tree + "/benchmarks"]
import bench_core
from threadpoolctl import threadpool_limits
X, y = bench_core.load_mnist()
X, y = X[: bench_core.N_TRAIN], y[: bench_core.N_TRAIN]
cases = {case.name: case for case in bench_core.CASES}
epochs = {}
print(json.dumps({"ready": sorted(cases)}), flush=True)
with threadpool_limits(limits=1):
    for line in sys.stdin:
        name = line.strip()
        if name not in epochs:
            epochs[name] = bench_core.CoreEpoch(cases[name], X, y)
            epochs[name].run(5_000)  # warm the buffers
        cpu = time.process_time()
        wall = epochs[name].run()
        print(json.dumps({"wall": wall, "cpu": time.process_time() - cpu}), flush=True)
"""


class Tree:
    """One checkout's core in its own process, timing an epoch per request."""

    def __init__(self, path: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(path)}
        env.pop("OPENBLAS_CORETYPE", None)  # the real kernel, as `make bench` measures
        self.path = path
        self.process = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=path, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
        self.cases = set(json.loads(self.process.stdout.readline())["ready"])

    def epoch(self, case: str) -> dict[str, float]:
        """Wall and CPU seconds of one epoch; with one thread, CPU time hardly moves with the machine's load."""
        self.process.stdin.write(case + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="another checkout of redes (e.g. a git worktree of an older commit)")
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per case and tree")
    args = parser.parse_args(argv)
    baseline, current = Tree(args.baseline.resolve()), Tree(HERE)
    try:
        print(f"core epoch, this tree ({HERE}) vs baseline ({args.baseline}); one BLAS thread each, turns alternating")
        print(f"load average at the start {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(f"{'network':<20} {'clock':<5} {'baseline s/epoch':>17} {'this tree s/epoch':>18} {'speed ratio (min–max)':>24}")
        for case in [c for c in sorted(current.cases) if c in baseline.cases]:
            old, new = [], []
            for turn in range(args.repeats):
                pair = (baseline, current) if turn % 2 == 0 else (current, baseline)
                for tree in pair:
                    (old if tree is baseline else new).append(tree.epoch(case))
            for clock in ("cpu", "wall"):
                o, n = [t[clock] for t in old], [t[clock] for t in new]
                ratios = [a / b for a, b in zip(o, n)]
                print(f"{case:<20} {clock:<5} {statistics.median(o):>17.3f} {statistics.median(n):>18.3f} "
                      f"{statistics.median(o) / statistics.median(n):>10.3f}× ({min(ratios):.3f}–{max(ratios):.3f})")
        print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    finally:
        baseline.close()
        current.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
