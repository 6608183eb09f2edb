"""The `redes` command line: one typer app, one module per subcommand in `flows.commands`.

Heavy libraries (Prefect, MLflow, Optuna) are imported inside the commands, so that
`redes --help` answers at once.
"""

from __future__ import annotations

import typer

from flows.commands import baselines as baselines_command
from flows.commands import data as data_command
from flows.commands import perceptron as perceptron_command
from flows.commands import run as run_command
from flows.commands import serve as serve_command
from flows.commands import study as study_command
from flows.commands import train as train_command
from flows.commands import ui as ui_command

app = typer.Typer(
    name="redes",
    help="Neural networks from first principles: train, search and track them on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("data")(data_command.data)
app.command("perceptron")(perceptron_command.perceptron)
app.command("train")(train_command.train)
app.command("study")(study_command.study)
app.command("run")(run_command.run)
app.command("ui")(ui_command.ui)
app.command("serve")(serve_command.serve)
app.command("baselines")(baselines_command.baselines)


def main() -> None:
    """Entry point of the `redes` console script."""
    app()
