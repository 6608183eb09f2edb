"""The servers `redes up` left running in a working folder: `.redes/servers.json`.

Each entry names a server, its PID and the PID's start time (a PID alone may have been
reused by another process since), where it answers and how it stops. Every later command in
the folder reads the record at its entry point and talks to the recorded Prefect server
instead of starting Prefect's temporary one; a PREFECT_API_URL in the environment wins.
An entry whose process is gone is stale: it is dropped from the record when read.

A command that uses the recorded Prefect server notes itself in `.redes/users/` until it exits,
so that `redes down` does not pull the server from under a running study (it asks for --force).
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import signal
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.servers import http_status, process_started, same_process

RECORD = Path(".redes") / "servers.json"
USERS = Path(".redes") / "users"
HEALTH_TIMEOUT = 5.0


@dataclass(frozen=True)
class Recorded:
    """One server started by `redes up`: ``started`` is its PID's start time (see `runtime.servers.process_started`)."""

    name: str
    pid: int
    started: float
    url: str  # its front page; Prefect's API is at url + "/api"
    health_url: str
    stop_signal: int = signal.SIGTERM
    log: str = ""

    def alive(self) -> bool:
        return same_process(self.pid, self.started)


def record_path(workdir: Path) -> Path:
    return Path(workdir) / RECORD


@contextmanager
def locked(workdir: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the folder's record lock, so that two `redes up` (or `up` and `down`) never interleave.

    Without WAIT, yields False at once when another process holds it (and holds nothing).
    """
    lock = record_path(workdir).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read(workdir: Path) -> list[Recorded]:
    """Every entry of the record, live or not ([] without a record; a damaged record counts as none)."""
    path = record_path(workdir)
    try:
        return [Recorded(**entry) for entry in json.loads(path.read_text())["servers"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def write(workdir: Path, entries: list[Recorded]) -> None:
    """Replace the record with ENTRIES at once (a reader never sees half a file); no entries, no file."""
    path = record_path(workdir)
    if not entries:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"servers": [asdict(entry) for entry in entries]}, indent=2) + "\n")
    os.replace(partial, path)


def sweep(workdir: Path) -> tuple[list[Recorded], list[Recorded]]:
    """The live entries and the stale ones; the stale ones are removed from the record.

    The caller holds the record's lock (:func:`locked`).
    """
    live, stale = _split(read(workdir))
    if stale:
        write(workdir, live)
    return live, stale


def look(workdir: Path) -> tuple[list[Recorded], list[Recorded]]:
    """Like :func:`sweep`, without waiting: while a `redes up` or `redes down` holds the lock, the
    stale entries are left for it to remove."""
    live, stale = _split(read(workdir))
    if stale:
        with locked(workdir, wait=False) as holding:
            if holding:
                sweep(workdir)
    return live, stale


def _split(entries: list[Recorded]) -> tuple[list[Recorded], list[Recorded]]:
    live = [entry for entry in entries if entry.alive()]
    return live, [entry for entry in entries if entry not in live]


def use_recorded_prefect(workdir: Path, environ: MutableMapping[str, str] | None = None) -> str | None:
    """Point this process (and its children) at the Prefect server `redes up` recorded in WORKDIR.

    Sets PREFECT_API_URL unless the environment already has one. Returns a warning line when a
    recorded server is gone (the record is cleaned) or does not answer, else None.
    """
    env = os.environ if environ is None else environ
    if (env.get("PREFECT_API_URL") or "").strip() or not record_path(workdir).exists():
        return None
    live, stale = look(workdir)
    prefect = next((entry for entry in live if entry.name == "prefect"), None)
    if prefect is None:
        gone = next((entry for entry in stale if entry.name == "prefect"), None)
        if gone is None:
            return None
        return (
            f"the Prefect server `redes up` started (pid {gone.pid}) is gone; its record is removed and this command "
            "uses Prefect's temporary server (`redes up` starts a new one)"
        )
    if http_status(prefect.health_url, timeout=HEALTH_TIMEOUT) != 200:
        return (
            f"the Prefect server `redes up` started (pid {prefect.pid}) does not answer {prefect.health_url}; this "
            "command uses Prefect's temporary server (`redes down` then `redes up` restarts it)"
        )
    env["PREFECT_API_URL"] = prefect.url + "/api"
    return None


@dataclass(frozen=True)
class User:
    """A command of this folder that uses the recorded Prefect server: its PID, the PID's start time, what was typed."""

    pid: int
    started: float
    command: str


def note_user(workdir: Path, argv: list[str]) -> None:
    """Note this process as a user of the recorded Prefect server until it exits (a file removed at exit;
    one left by a killed process is stale, recognised by its PID's start time)."""
    pid, started = os.getpid(), process_started(os.getpid())
    if started is None:
        return
    path = Path(workdir) / USERS / f"{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(User(pid, started, " ".join(["redes", *argv])))))
    atexit.register(path.unlink, missing_ok=True)


def users(workdir: Path, live_servers: list[Recorded]) -> list[User]:
    """The live users of the recorded Prefect server, oldest first ([] when LIVE_SERVERS has no Prefect server);
    stale notes are removed."""
    if not any(entry.name == "prefect" for entry in live_servers):
        return []
    live = []
    for path in (Path(workdir) / USERS).glob("*.json"):
        try:
            user = User(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            user = None
        if user is not None and same_process(user.pid, user.started):
            live.append(user)
        else:
            path.unlink(missing_ok=True)
    return sorted(live, key=lambda user: user.started)
