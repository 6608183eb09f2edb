"""One module per `redes` subcommand; `cli.main` registers them."""
