"""`redes run`: the main job. Data, a study sized for about ten minutes, the test evaluation, a summary."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import MirrorOption
from cli.study import print_summary, run_study_command
from flows.defaults import MAIN_JOB, main_job



def run(
    timeout: Annotated[str, typer.Option(help="Time budget of the search (the test evaluation comes after).")] = f"{MAIN_JOB.timeout_seconds / 60:g}m",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = MAIN_JOB.workers,
    name: Annotated[
        Optional[str],
        typer.Option(help=f"Study name (continued when it exists); default {MAIN_JOB.name!r}, or e.g. "
                          f"'{MAIN_JOB.name}-60m' for a longer --timeout, whose trials train longer."),
    ] = None,
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL or journal path.")] = None,
    mirror: MirrorOption = None,
) -> None:
    """The main job of `make run`: prepare MNIST, search for ~10 minutes, test the best network once."""
    from cli.common import parse_duration, user_errors

    with user_errors():
        budget = parse_duration(timeout)
    request = main_job(budget, name=name, workers=workers, mirrors=tuple(mirror) if mirror else None)
    outcome = run_study_command(request, storage, main=True)
    print_summary(outcome)
