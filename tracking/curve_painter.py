"""A process that draws learning curves for a study that runs its trials in the study's own process.

A curve costs about 0.15 s of CPU, nearly all of it Python code in matplotlib; drawn on a thread
beside the next trial, it holds the interpreter's lock for that long and slows that trial's
training as much. In a process of its own (`python -m tracking.curve_painter`, started with the
study's trials) it runs on the other core. One JSON line in per curve (the PNG's path, the
history, the best epoch), one line out ("ok", or the error); it exits when its input closes,
so it never outlives the process that started it. Ctrl-C is for that process, not for this one:
it runs in a process group of its own, which a terminal's Ctrl-C does not reach even while it
is still importing (before it could ignore SIGINT itself).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

FIELDS = ("epoch", "train_accuracy", "val_accuracy", "train_loss", "val_loss")


class PainterError(RuntimeError):
    """The painter could not draw a curve: its reason."""


class PainterGone(PainterError):
    """The painter process is gone (killed, or it crashed)."""


class Painter:
    """The painter process, seen from the study: :meth:`draw` one curve at a time (from one thread)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tracking.curve_painter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            process_group=0,
        )

    def draw(self, history: Sequence, best_epoch: int | None, path: Path) -> Path:
        rows = [[getattr(epoch, name) for name in FIELDS] for epoch in history]
        try:
            self._process.stdin.write(json.dumps({"path": str(path), "best_epoch": best_epoch, "history": rows}) + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline().strip()
        except (OSError, ValueError) as exc:
            raise PainterGone(f"the curve painter is gone ({exc})") from exc
        if not answer:
            raise PainterGone(f"the curve painter exited with code {self._process.poll()}")
        if answer != "ok":
            raise PainterError(answer)
        return path

    def close(self, timeout: float = 10.0) -> None:
        """Close its input and wait for it to exit (killed after TIMEOUT)."""
        try:
            self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def main() -> None:
    from runtime import collector

    collector.tune()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from tracking import plots

    for line in sys.stdin:
        try:
            request = json.loads(line)
            history = [SimpleNamespace(**dict(zip(FIELDS, row))) for row in request["history"]]
            plots.learning_curve(history, request["best_epoch"], Path(request["path"]))
            answer = "ok"
        except Exception as exc:  # noqa: BLE001 - said to the study, which tags the run and goes on
            answer = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        print(answer, flush=True)


if __name__ == "__main__":
    main()
