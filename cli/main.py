"""The `redes` command line: one typer app, one module per subcommand in `cli`.

Heavy libraries (Prefect, MLflow, Optuna) are imported inside the commands, so that
`redes --help` answers at once.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from cli import baselines as baselines_command
from cli import data as data_command
from cli import down as down_command
from cli import perceptron as perceptron_command
from cli import run as run_command
from cli import serve as serve_command
from cli import status as status_command
from cli import study as study_command
from cli import train as train_command
from cli import ui as ui_command
from cli import up as up_command

app = typer.Typer(
    name="redes",
    help="Neural networks from first principles: train, search and track them on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: Commands that read no setting: a bad value in the environment does not stop them.
NO_SETTINGS = ("perceptron",)
#: Commands that never talk to the Prefect server `redes up` recorded (they start, stop or show it, or need none).
NO_RECORDED_PREFECT = ("perceptron", "ui", "up", "down", "status")
#: Commands the warm launcher of `redes up` runs when there is one (cli.delegate): they load Prefect and MLflow.
DELEGATED = ("data", "train", "study", "run", "baselines")


@app.callback()
def options(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the libraries' logs too (Prefect, MLflow); Prefect's UI keeps them anyway.")
    ] = False,
) -> None:
    """Offline defaults; quiet libraries unless --verbose; every setting in the environment checked before the command starts."""
    from cli.common import BAD_INPUT, err_console
    from runtime import terminal
    from runtime.environment import apply_offline_defaults
    from runtime.settings import Settings, SettingsError

    apply_offline_defaults()  # the entry point applies them, not the import of a library
    terminal.configure(verbose)
    if ctx.invoked_subcommand in NO_SETTINGS:
        return
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None
    if ctx.invoked_subcommand not in NO_RECORDED_PREFECT:
        from cli.common import print_warning
        from runtime.server_record import use_recorded_prefect

        own_url = (os.environ.get("PREFECT_API_URL") or "").strip()
        note = use_recorded_prefect(settings.workdir)  # sets PREFECT_API_URL unless the environment has one
        if note:
            print_warning(note)
        elif not own_url and os.environ.get("PREFECT_API_URL"):
            from runtime.server_record import note_user

            note_user(settings.workdir, sys.argv[1:])  # so that `redes down` does not stop the server under it
    if ctx.invoked_subcommand in DELEGATED and "--help" not in sys.argv:
        from cli import delegate

        code, why = delegate.run_in_launcher(settings.workdir, sys.argv[1:])
        if code is not None:
            raise typer.Exit(code)
        if why and verbose:
            from cli.common import print_warning

            print_warning(f"{why}; running here")


app.command("data")(data_command.data)
app.command("perceptron")(perceptron_command.perceptron)
app.command("train")(train_command.train)
app.command("study")(study_command.study)
app.command("run")(run_command.run)
app.command("ui")(ui_command.ui)
app.command("serve")(serve_command.serve)
app.command("baselines")(baselines_command.baselines)
app.command("up")(up_command.up)
app.command("down")(down_command.down)
app.command("status")(status_command.status)


def main() -> None:
    """Entry point of the `redes` console script."""
    from runtime import collector

    collector.tune()
    try:
        app()
    finally:
        collector.skip_last_collection()
