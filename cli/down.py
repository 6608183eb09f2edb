"""`redes down`: stop the servers `redes up` started in this folder and remove their record.

Each server is stopped by its recorded PID, checked against the PID's start time first (a
PID reused by another process is never signalled): its process group gets the server's stop
signal, then SIGKILL after the timeout. While a command of this folder still uses the Prefect
server (a study, `redes serve`), nothing is stopped without --force: its flow run would lose the
server mid-way and fill its output with Prefect's errors.
"""

from __future__ import annotations

from typing import Annotated

import typer


def down(
    timeout: Annotated[float, typer.Option(min=1, help="Seconds each server gets to stop before it is killed.")] = 15.0,
    force: Annotated[bool, typer.Option(help="Stop them even while commands of this folder still use the Prefect server.")] = False,
) -> None:
    """Stop the Prefect server and dashboards `redes up` started here."""
    from cli.common import print_error
    from cli.status import plain_printer
    from runtime import server_record
    from runtime.servers import stop_processes
    from runtime.settings import Settings

    workdir = Settings.from_env().workdir
    say = plain_printer()
    with server_record.locked(workdir):
        live, stale = server_record.sweep(workdir)
        users = server_record.users(workdir, live)
        if users and not force:
            print_error(
                (f"{len(users)} commands of this folder still use" if len(users) > 1 else "a command of this folder still uses")
                + " the Prefect server: "
                + "; ".join(f"pid {user.pid}: {user.command}" for user in users)
                + ". Let them finish or stop them (Ctrl-C), then `redes down`; `redes down --force` stops the "
                "servers now (those commands then fail without their Prefect server)"
            )
            raise typer.Exit(1)
        stop_processes([(entry.pid, entry.stop_signal) for entry in live], timeout=timeout)
        server_record.write(workdir, [])
    for entry in stale:
        say(f"removed the stale record of {entry.name} (pid {entry.pid}: gone)")
    for entry in live:
        say(f"stopped {entry.name} (pid {entry.pid})")
    if not live:
        say("nothing was running here (`redes up` starts the servers)")
