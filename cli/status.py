"""`redes status`: what `redes up` left running in this folder, and where each page is.

Reads `.redes/servers.json` (runtime.server_record); an entry whose process is gone (or whose
PID now belongs to another process) is stale and removed. Says which Prefect API the commands
here use: PREFECT_API_URL from the environment, else the recorded server, else Prefect's
temporary one, and which commands of this folder use the recorded server now.
"""

from __future__ import annotations

import os
from typing import Annotated, Callable, Optional

import typer

from cli.common import console


def status(
    study: Annotated[
        Optional[str], typer.Option(help="Study whose MLflow runs and dashboard page to link; without it, every study.")
    ] = None,
) -> None:
    """Show the servers `redes up` started here (PIDs, addresses, logs) and the pages of the studies."""
    from runtime import server_record
    from runtime.settings import Settings

    settings = Settings.from_env()
    live, stale = server_record.look(settings.workdir)  # never waits for a `redes up` at work
    say = plain_printer()
    for entry in stale:
        say(f"removed the stale record of {entry.name} (pid {entry.pid}: gone)")
    describe(live, settings, say, study)
    for user in server_record.users(settings.workdir, live):
        say(f"in use by pid {user.pid}: {user.command}")


def describe(live: list, settings, say: Callable[[str], None], study: str | None = None) -> None:
    """One line per server, the Prefect API the commands use, then the links of the dashboards that run."""
    if not live:
        say("nothing runs in the background here; `redes up` starts a Prefect server and the dashboards")
    width = max((len(entry.name) for entry in live), default=0)
    for entry in live:
        say(f"  {entry.name:<{width}}  pid {entry.pid}  {entry.url}  log {entry.log}")
    say(f"commands here use the Prefect API {prefect_in_use(live)}")
    bases = {entry.name: entry.url for entry in live if entry.name in ("mlflow", "optuna-dashboard")}
    if bases:
        from cli import local_servers, ui_links

        remote = settings.tracking_uri if local_servers.is_http(settings.tracking_uri) else None
        ui_links.say_links(ui_links.links(bases, study, remote, settings.study_storage), say)
    if live:
        say("`redes down` stops them.")


def prefect_in_use(live: list) -> str:
    from runtime.servers import mask_url

    explicit = (os.environ.get("PREFECT_API_URL") or "").strip()
    if explicit:
        return f"{mask_url(explicit)} (PREFECT_API_URL in the environment)"
    prefect = next((entry for entry in live if entry.name == "prefect"), None)
    if prefect is not None:
        return f"{prefect.url}/api (the server of `redes up`)"
    return "of Prefect's temporary server, one per command (`redes up` keeps one running)"


def plain_printer() -> Callable[[str], None]:
    """Plain lines, never wrapped or cut: each URL whole on its own line."""

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, crop=False, highlight=False, markup=False)

    return say

