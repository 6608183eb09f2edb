"""One module per `redes` subcommand; `flows.cli` registers them."""
