"""The `redes` command line: one typer app, one module per subcommand in `flows.commands`.

Heavy libraries (Prefect, MLflow, Optuna) are imported inside the commands, so that
`redes --help` answers at once.
"""

from __future__ import annotations

import typer

from flows.commands import data as data_command

app = typer.Typer(
    name="redes",
    help="Neural networks from first principles: train, search and track them on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("data")(data_command.data)


def main() -> None:
    """Entry point of the `redes` console script."""
    app()
