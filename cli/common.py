"""What the `redes` subcommands share: data options, clear errors with exit code 2, quiet logs."""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape

from mnist.sizes import N_CLASSES, N_PIXELS, N_TRAIN_FILE

console = Console()
err_console = Console(stderr=True)

MirrorOption = Annotated[
    Optional[list[str]],
    typer.Option("--mirror", help="MNIST mirror (URL, file:// or folder; repeatable); replaces the built-in list."),
]
TrainSizeOption = Annotated[int, typer.Option("--train-size", min=1, help=f"Training images (first of the {N_TRAIN_FILE:,}).")]
ValSizeOption = Annotated[int, typer.Option("--val-size", min=1, help=f"Validation images (last of the {N_TRAIN_FILE:,}).")]

BAD_INPUT = 2


class BadInput(ValueError):
    """An option or file the user gave is wrong; reported before any work with exit code 2."""


def bad_input_errors() -> tuple[type[BaseException], ...]:
    """Every error class that means "the input is wrong", imported lazily."""
    from core.errors import ConfigError

    from mnist.errors import ReadOnlyData
    from runtime.settings import SettingsError

    errors: list[type[BaseException]] = [BadInput, ConfigError, ReadOnlyData, SettingsError]
    try:
        from tracking.names import BadName
        from tracking.search_space import SearchSpaceError
        from tracking.studies import StudyError

        errors += [BadName, SearchSpaceError, StudyError]
    except ImportError:  # pragma: no cover - tracking not installed
        pass
    return tuple(errors)


UNAVAILABLE = 1


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's documented errors into one red line: exit 2 for bad input, 1 for a missing service
    or workers that keep dying."""
    from flows.prefect_api import PrefectUnavailable
    from flows.worker_errors import WorkersKeepDying
    from tracking.mlflow_store import TrackingUnavailable
    from tracking.stores import StoreDamaged, StoreFull, is_disk_full

    try:
        yield
    except bad_input_errors() as exc:
        print_error(exc)
        raise typer.Exit(BAD_INPUT) from None
    except (TrackingUnavailable, PrefectUnavailable, WorkersKeepDying, StoreDamaged, StoreFull) as exc:
        print_error(exc)
        raise typer.Exit(UNAVAILABLE) from None
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        print_error(f"the disk filled up while the command ran ({str(exc).splitlines()[0][:160]}); free some space")
        raise typer.Exit(UNAVAILABLE) from None


def print_error(exc: BaseException | str) -> None:
    """One red line; the message is the user's text (file names, TOML keys like [space.eta]), never Rich markup.

    ``soft_wrap``: Rich would otherwise fold a long path at the console's width (80 columns in a pipe).
    """
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def parse_duration(text: str | None) -> float | None:
    """'90s', '10m', '1.5h' or plain seconds → seconds."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise BadInput(f"--timeout {text!r} is not a duration; write e.g. 90s, 10m or 1.5h")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if value <= 0:
        raise BadInput(f"--timeout {text!r} must be positive")
    return value


MNIST_CODE_BITS = 4  # 2**4 = 16 >= 10: the bits of a digit, for --output-encoding binary


def parse_sizes(text: str, output_encoding: str = "onehot") -> tuple[int, ...]:
    """Layer sizes for MNIST: 784 inputs first; 10 outputs last (one per digit), or 4 for binary outputs."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise BadInput(f"--sizes {text!r} must be comma-separated integers, e.g. 784,100,10") from None
    if len(sizes) >= 2 and sizes[0] != N_PIXELS:
        raise BadInput(f"--sizes {text!r}: the first size must be {N_PIXELS}, one input per MNIST pixel")
    if len(sizes) >= 2 and output_encoding == "binary" and sizes[-1] != MNIST_CODE_BITS:
        raise BadInput(
            f"--sizes {text!r}: with --output-encoding binary the last size must be {MNIST_CODE_BITS}, "
            f"the bits of a digit, e.g. 784,30,{MNIST_CODE_BITS}"
        )
    if len(sizes) >= 2 and output_encoding != "binary" and sizes[-1] != N_CLASSES:
        raise BadInput(f"--sizes {text!r}: the last size must be {N_CLASSES}, one output per digit")
    return sizes


def check_split_sizes(train_size: int, val_size: int, data_dir: Path) -> None:
    """--train-size and --val-size must fit in MNIST's training file together, and a read-only data folder
    must hold their split already."""
    if train_size + val_size > N_TRAIN_FILE:
        raise BadInput(
            f"--train-size {train_size} + --val-size {val_size} = {train_size + val_size} exceeds the {N_TRAIN_FILE:,} "
            f"training images of MNIST; lower one of them (e.g. --train-size {max(1, N_TRAIN_FILE - val_size)})"
        )
    from mnist.split import SplitSpec, check_stored_if_read_only

    check_stored_if_read_only(data_dir, SplitSpec(train_size=train_size, val_size=val_size))


def is_terminal() -> bool:
    return sys.stdout.isatty()
