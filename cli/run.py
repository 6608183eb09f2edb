"""`redes run`: the main job. Data, a study sized for about ten minutes, the test evaluation, a summary."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import MirrorOption
from cli.study import print_summary, run_study_command
from flows.defaults import RUN_DEFAULTS



def run(
    timeout: Annotated[str, typer.Option(help="Time budget of the search (the test evaluation comes after).")] = RUN_DEFAULTS["timeout"],
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = RUN_DEFAULTS["workers"],
    name: Annotated[str, typer.Option(help="Study name (continued when it exists).")] = RUN_DEFAULTS["name"],
    storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL or journal path.")] = None,
    mirror: MirrorOption = None,
) -> None:
    """The main job of `make run`: prepare MNIST, search for ~10 minutes, test the best network once."""
    from cli.common import parse_duration, user_errors

    with user_errors():
        # trials still running when the budget ends may finish their epoch for 90 s more, then are cut short
        hard_timeout = f"{parse_duration(timeout) + 90:.0f}s"
    options = {**RUN_DEFAULTS, "timeout": timeout, "workers": workers, "name": name, "hard_timeout": hard_timeout}
    outcome = run_study_command(storage=storage, space=None, mirror=mirror, main=True, **options)
    print_summary(outcome)
