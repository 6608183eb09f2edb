"""What the per-layer diagnostics cost: one training epoch of core with them on and off.

    python benchmarks/bench_diagnostics.py [--repeats 7] [--threads 1] [--n 50000]

What is timed: ``SGD.epoch`` over the first ``--n`` MNIST training images (shuffle, gather
each mini-batch, forward, backprop, update, the epoch's train loss and accuracy), data in
memory as float32, λ = 5.0, for 784-100-10 sigmoid at mini-batch 10 and 128, once with
``diagnostics=True`` (a gradient norm per layer per step, saturation counts, weight norms
at the end) and once without. On and off run in turns, order alternating, so a busy
machine slows both. Printed per epoch: the medians, the median of the paired differences
(on − off, run back to back), and the time clocked inside the diagnostics code itself
(``Diagnostics.observe`` after every step, ``result`` at the end), which a busy machine
disturbs least; "cost" is that time over the median epoch without diagnostics.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.config import TrainConfig  # noqa: E402
from core.network import Network  # noqa: E402
from core.training import SGD  # noqa: E402
from mnist.idx import read_idx  # noqa: E402

MNIST = Path(os.environ.get("REDES_TEST_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
SIZES = (784, 100, 10)
BATCH_SIZES = (10, 128)
LMBDA = 5.0
ETA = 0.5


def load_mnist(n: int) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(MNIST / "train-images-idx3-ubyte.gz", expect_ndim=3)[:n]
    labels = read_idx(MNIST / "train-labels-idx1-ubyte.gz", expect_ndim=1)[:n]
    X = images.reshape(len(images), 784).astype(np.float32)
    X /= np.float32(255)
    return X, labels.astype(np.int64)


class Epoch:
    """One network and its SGD, diagnostics on or off, from the same initial weights as its twin.

    With diagnostics on, the time spent inside ``Diagnostics.observe`` and ``result`` (the
    only code diagnostics add to an epoch) is also clocked, call by call: ``inside``.
    """

    def __init__(self, batch_size: int, X: np.ndarray, y: np.ndarray, diagnostics: bool) -> None:
        config = TrainConfig(sizes=SIZES, eta=ETA, lmbda=LMBDA, batch_size=batch_size, seed=0)
        self.sgd = SGD(Network.from_config(config), batch_size, len(X), ETA, LMBDA, diagnostics=diagnostics)
        self.X, self.y = X, y
        self.rng = np.random.default_rng(1)
        self.diagnostics = diagnostics
        self.inside = 0.0
        if diagnostics:
            for name in ("observe", "result"):
                setattr(self.sgd.diagnostics, name, self._clocked(getattr(self.sgd.diagnostics, name)))

    def _clocked(self, method):
        def clocked(*args):
            t0 = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.inside += time.perf_counter() - t0

        return clocked

    def run(self, n: int | None = None) -> tuple[float, float]:
        """(seconds of the epoch, seconds of it inside the diagnostics code)."""
        X, y = (self.X, self.y) if n is None else (self.X[:n], self.y[:n])
        self.inside = 0.0
        t0 = time.perf_counter()
        _, _, diag = self.sgd.epoch(X, y, self.rng)
        seconds = time.perf_counter() - t0
        assert bool(diag) == self.diagnostics
        return seconds, self.inside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed epochs per setting")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")
    parser.add_argument("--n", type=int, default=50_000, help="training images per epoch")
    args = parser.parse_args(argv)

    X, y = load_mnist(args.n)
    with threadpool_limits(limits=args.threads):
        blas = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture', '?')} threads={i.get('num_threads')}"
            for i in threadpool_info()
        )
        print(f"redes diagnostics cost: one epoch = {len(X):,} MNIST examples, {'-'.join(map(str, SIZES))} sigmoid, "
              f"float32, λ = {LMBDA}")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; numpy {np.__version__}; BLAS {blas}")
        env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS") if k in os.environ}
        print(f"environment: {env or 'no OPENBLAS_*/OMP_* overrides'}")
        print(f"{args.repeats} timed epochs each, on and off interleaved; seconds per epoch, median (min–max)\n")
        header = (f"{'mini-batch':>10} {'off':>22} {'on':>22} {'on − off (paired)':>24} "
                  f"{'inside diagnostics':>24} {'cost':>7}")
        print(header)
        print("-" * len(header))
        for batch_size in BATCH_SIZES:
            off, on = Epoch(batch_size, X, y, False), Epoch(batch_size, X, y, True)
            warm = min(len(X), 200 * batch_size)
            off.run(warm)
            on.run(warm)
            times: dict[bool, list[float]] = {False: [], True: []}
            inside: list[float] = []
            for r in range(args.repeats):
                for trainer in (off, on) if r % 2 == 0 else (on, off):
                    seconds, clocked = trainer.run()
                    times[trainer.diagnostics].append(seconds)
                    if trainer.diagnostics:
                        inside.append(clocked)
            paired = [t_on - t_off for t_on, t_off in zip(times[True], times[False])]
            t_off = statistics.median(times[False])
            print(
                f"{batch_size:>10} {_spread(times[False]):>22} {_spread(times[True]):>22} {_spread(paired, '+'):>24} "
                f"{_spread(inside):>24} {100 * statistics.median(inside) / t_off:>+6.1f}%",
                flush=True,
            )
        print(f"\nload average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


def _spread(values: list[float], sign: str = "") -> str:
    return f"{statistics.median(values):{sign}.3f} ({min(values):{sign}.3f}–{max(values):{sign}.3f})"


if __name__ == "__main__":
    sys.exit(main())
