"""docs/tutorial.md, run: every `redes` command of its ```bash blocks, in order, and the outputs it quotes.

The tutorial cannot drift from the program: each ```bash block whose lines are `redes …`
commands is run as ``.venv/bin/redes …`` in a fresh working folder (embedded stores:
SQLite MLflow, an Optuna journal; MNIST from the ``mnist_dir`` fixture; the tutorial's
TOML files copied to ``docs/tutorial/`` in that folder) and must exit 0. A ```text block
right after a command block quotes what those commands print: each of its lines must
appear, in order, in their output. Numbers must match exactly in a ```text block (the
perceptron is deterministic), and loosely in a ```text approx block (training on another
machine's BLAS may differ in the last digits): decimals within ±0.02 (percentages within
±2 points), whole numbers within ±25 % (at least ±2). ``…`` stands for anything (seconds,
run ids). Blocks marked ```bash tutorial-pending (or any other info string) are not run.

One Prefect server is started for the whole tutorial: without one, every command would
start its own temporary server (10–15 s each). As the tutorial suggests, `redes up` runs
first (`--no-ui`: with PREFECT_API_URL set it starts only the warm launcher), so every
command is forked from the launcher, and `redes down` runs last.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.main import DELEGATED
from runtime.servers import free_port, start_server, stop_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "tutorial.md"
TUTORIAL_FILES = REPO / "docs" / "tutorial"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DECIMAL_TOLERANCE = 0.02
INTEGER_TOLERANCE = 0.25
COMMAND_TIMEOUT = 600
SCRUBBED = ("MLFLOW_TRACKING_URI", "REDES_OPTUNA_STORAGE", "PREFECT_API_URL", "PREFECT_PROFILE")


@dataclass
class Step:
    """One ```bash block of `redes` commands and the output it quotes (if a ```text block follows it)."""

    line: int
    commands: list[list[str]]
    expected: list[str] = field(default_factory=list)
    approx: bool = False


def tutorial_steps(text: str) -> list[Step]:
    """The runnable blocks of the tutorial, in order, each with the output block that follows it."""
    steps: list[Step] = []
    previous_end = None
    for match in FENCE.finditer(text):
        info = match["info"].split()
        body_lines = [line for line in match["body"].splitlines() if line.strip()]
        adjacent = previous_end is not None and not text[previous_end : match.start()].strip()
        if info[:1] == ["bash"] and len(info) == 1 and body_lines and body_lines[0].startswith("redes "):
            joined = match["body"].replace("\\\n", " ")
            commands = [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]
            assert all(c and c[0] == "redes" for c in commands), f"line {_line(text, match)}: only `redes` lines in a runnable block"
            steps.append(Step(_line(text, match), [c for c in commands if c]))
        elif info[:1] == ["text"] and adjacent and steps and steps[-1].line == previous_line:
            steps[-1].expected = body_lines
            steps[-1].approx = "approx" in info[1:]
        previous_end, previous_line = match.end(), _line(text, match)
    return steps


def _line(text: str, match: re.Match) -> int:
    return text.count("\n", 0, match.start()) + 1


def matches(expected: str, actual: str, approx: bool) -> bool:
    """Whether one output line is the quoted one: same words, numbers equal (or close with ``approx``), ``…`` anything."""
    pattern, numbers = "", []
    parts = re.split(r"(…|-?\d+(?:\.\d+)?)", " ".join(expected.split()))
    for index, part in enumerate(parts):
        if part == "…":
            pattern += ".*?"
        elif NUMBER.fullmatch(part):
            pattern += r"(-?\d+(?:\.\d+)?)"
            percent = index + 1 < len(parts) and parts[index + 1].startswith("%")
            numbers.append((part, DECIMAL_TOLERANCE * (100 if percent else 1)))
        else:
            pattern += re.escape(part)
    found = re.fullmatch(pattern, " ".join(actual.split()))
    if not found:
        return False
    for (quoted, tolerance), measured in zip(numbers, found.groups()):
        if not approx or ("." in quoted) != ("." in measured):
            if quoted != measured:
                return False
        elif "." in quoted:
            if abs(float(quoted) - float(measured)) > tolerance:
                return False
        elif abs(int(quoted) - int(measured)) > max(2, INTEGER_TOLERANCE * abs(int(quoted))):
            return False
    return True


def check_output(step: Step, output: str) -> None:
    """Every quoted line appears, in order, among the output lines of the step's commands."""
    lines = [line for line in output.splitlines() if line.strip()]
    position = 0
    for expected in step.expected:
        for index in range(position, len(lines)):
            if matches(expected, lines[index], step.approx):
                position = index + 1
                break
        else:
            raise AssertionError(
                f"docs/tutorial.md line {step.line}: the quoted line\n    {expected}\nis not in the output "
                f"(from line {position + 1} on; {'approx' if step.approx else 'exact'} numbers):\n" + "\n".join(lines)
            )


def redes_executable() -> str:
    beside = Path(sys.executable).with_name("redes")
    return str(beside if beside.exists() else REPO / ".venv" / "bin" / "redes")


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> str:
    """One `prefect server start` on a free 127.0.0.1 port for every command of the tutorial."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ, "PREFECT_HOME": str(home), "DO_NOT_TRACK": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    server = start_server(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/api/health",
        env=env,
        log_path=home / "server.log",
        timeout=180,
    )
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop_server(server)


def test_parsing_finds_commands_and_quoted_output():
    text = (
        "intro\n```bash\nredes perceptron --gate and\n```\n\n```text\nAND learned: no mistake in epoch 2\n```\n"
        "```bash tutorial-pending\nredes later\n```\n```bash\nredes train --epochs 1 \\\n  --lmbda 0\n```\n"
        "prose between\n```text approx\nnot adjacent\n```\n"
    )
    steps = tutorial_steps(text)
    assert [s.commands for s in steps] == [[["redes", "perceptron", "--gate", "and"]], [["redes", "train", "--epochs", "1", "--lmbda", "0"]]]
    assert steps[0].expected == ["AND learned: no mistake in epoch 2"] and not steps[0].approx
    assert steps[1].expected == []


@pytest.mark.parametrize(
    "expected, actual, approx, ok",
    [
        ("w = (0.9, 0.4), b = -1", "w = (0.9, 0.4), b = -1", False, True),
        ("w = (0.9, 0.4), b = -1", "w = (0.9, 0.4), b = -1.5", False, False),
        ("validation accuracy 0.9230, training 1.0000 (best epoch 26, …", "validation accuracy 0.9150, training "
         "0.9990 (best epoch 29, stopped at 41: patience), 1.2 s", True, True),
        ("validation accuracy 0.9230 …", "validation accuracy 0.8950 (x)", True, False),
        ("best epoch 26, …", "best epoch 36, x", True, False),
        ("│ validation accuracy │ 0.9140 │", "│ validation accuracy     │ 0.9140      │", False, True),
        ("│ random │ 10.00% │ 9.20% │ …", "│ random   │  11.50% │   9.20% │  0.0 │", True, True),
        ("│ random │ 10.00% │ 9.20% │ …", "│ random   │  12.50% │   9.20% │  0.0 │", True, False),
    ],
)
def test_quoted_lines_match_loosely_only_where_asked(expected, actual, approx, ok):
    assert matches(expected, actual, approx) is ok


@pytest.mark.integration  # a real Prefect server (prefect_api); about 7 minutes alone on 2 cores
def test_every_command_of_the_tutorial_runs_and_prints_what_it_quotes(tmp_path, tmp_path_factory, mnist_dir, prefect_api):
    steps = tutorial_steps(TUTORIAL.read_text())
    assert len(steps) >= 8, "the tutorial has a runnable block per step of the lecture"
    shutil.copytree(TUTORIAL_FILES, tmp_path / "docs" / "tutorial")
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update({
        "REDES_MNIST_MIRRORS": str(mnist_dir),
        "REDES_DATA_DIR": str(tmp_path_factory.getbasetemp() / "shared-data-cache"),
        "PREFECT_API_URL": prefect_api,
        "COLUMNS": "250",  # rich wraps long lines at 80 columns when it writes to a pipe
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    })
    redes = redes_executable()
    up = subprocess.run([redes, "up", "--no-ui"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert up.returncode == 0 and "started the launcher" in up.stdout, up.stdout + up.stderr
    try:
        timings = run_steps(steps, redes, tmp_path, env)
    finally:
        down = subprocess.run([redes, "down"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "stopped launcher" in down.stdout, down.stdout + down.stderr
    launched = (tmp_path / ".redes" / "logs" / "launcher.log").read_text()
    delegated = [command for _, command in timings if command.split()[1] in DELEGATED]
    assert launched.count(" ran `") == len(delegated), launched  # every such command was forked from the launcher
    print("\n".join(f"{seconds:6.1f} s  {command}" for seconds, command in timings))
    print(f"{sum(s for s, _ in timings):6.1f} s  in all, {len(timings)} commands")


def run_steps(steps: list[Step], redes: str, cwd: Path, env: dict[str, str]) -> list[tuple[float, str]]:
    """Run every command of STEPS in order, each exiting 0, each step printing what it quotes; their seconds."""
    timings = []
    for step in steps:
        output = ""
        for command in step.commands:
            started = time.perf_counter()
            done = subprocess.run(
                [redes, *command[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
            )
            timings.append((time.perf_counter() - started, shlex.join(command)))
            assert done.returncode == 0, (
                f"docs/tutorial.md line {step.line}: `{shlex.join(command)}` exited {done.returncode}\n"
                f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
            )
            output += done.stdout
        check_output(step, output)
    return timings
