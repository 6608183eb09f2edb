"""The stores: created once when two commands start together, checked before use.

Two first ``redes study`` in a new folder would both create MLflow's SQLite schema (one
crashes in MLflow's migration, "duplicate column name"): the first creation of a store
runs under an exclusive lock on the folder that holds it, or, on PostgreSQL, under an
advisory lock of its database. A damaged Optuna journal or SQLite file, or a disk too
full to run, is one line naming the file and what to do.

A disk that fills up mid-study leaves no room to record anything: while a study runs on
embedded stores, a reserve file is kept beside them; the first process that meets their disk
full deletes it, which stops the study everywhere (every process looks for it at each
epoch end) and gives the trials and the parent run the room to record their end.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from runtime.paths import nearest_existing

#: Free space a study needs in the working folder: the MLflow store, each trial's network and pictures, the journal.
MIN_FREE_BYTES = 100 * 2**20
#: How the errors of a full disk read (OSError ENOSPC, SQLite).
FULL_DISK_MARKERS = ("No space left on device", "database or disk is full", "Disk quota exceeded")
#: The fail_reason of a trial whose writes met a full disk, and why the study stopped.
DISK_FULL = "disk full"
#: The reserve kept free while a study runs: a few hundred small writes end the trials and the parent run.
RESERVE_BYTES = 8 * 2**20
#: Where the processes of a study find the reserve file (pool processes inherit it).
ENV_RESERVE = "REDES_DISK_RESERVE"
#: The PostgreSQL advisory lock taken while a store's schema is created or upgraded (any 64-bit number
#: that nothing else locks; the same for MLflow and Optuna, whose stores may share a database).
SCHEMA_LOCK_KEY = 0x7265646573  # "redes"


class StoreDamaged(RuntimeError):
    """A store's file cannot be read (cut short, garbage appended, not a database); the message says what to do."""


class StoreFull(RuntimeError):
    """The disk that holds the stores is (nearly) full."""


def is_disk_full(exc: BaseException) -> bool:
    """True when EXC (or what caused it) is the disk being full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (28, 122):  # ENOSPC, EDQUOT
            return True
        if any(marker in str(exc) for marker in FULL_DISK_MARKERS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_detail(exc: BaseException) -> str:
    """The line of EXC's chain that says the disk is full (``[Errno 28] No space left on device``), for one-line messages."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (28, 122):
            return f"[Errno {exc.errno}] {exc.strerror}"
        for line in str(exc).splitlines():
            if any(marker in line for marker in FULL_DISK_MARKERS):
                return line.strip()[:300]
        exc = exc.__cause__ or exc.__context__
    return "the disk is full"


@contextmanager
def creation_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on FOLDER (flock on the folder itself: no lock file left behind) while a store is created."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """On a PostgreSQL URL, ``pg_advisory_lock`` on its database while a store's tables are created or upgraded.

    Without it, two commands starting together on a new database both create the tables and
    one fails (``duplicate key … pg_type_typname_nsp_index``). Other URLs: no lock. The lock is
    held on a connection of its own, released when it closes, even if this process dies.
    """
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            connection.commit()  # the lock is the session's; no transaction stays open while the store is built
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()


def move_aside_hint(path: Path) -> str:
    companions = [str(f) for f in sqlite_companions(path) if f.exists()]
    into = f"mkdir {path}.damaged && mv {' '.join([str(path), *companions])} {path}.damaged/" if companions else f"mv {path} {path}.damaged"
    return f"move it aside ({into}) to start a new one, or restore it from a backup"


def sqlite_companions(path: Path) -> tuple[Path, Path]:
    """The write-ahead log and its index beside a SQLite file: they go wherever the file goes, or a new database
    of the same name would read another's pages from them."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def use_write_ahead_log(path: Path, timeout: float = 5.0) -> None:
    """Keep the MLflow database in SQLite's write-ahead-log mode (a setting stored in the file).

    A commit then appends to one file with one `fsync`, instead of writing a rollback journal and
    the database with three; a trial makes about ten commits. Readers (`redes ui`) no longer block
    the study's writers either. A database busy at that moment stays as it is, and works as before.
    """
    try:
        with closing(sqlite3.connect(path, timeout=timeout)) as database:
            database.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass


def check_sqlite(path: Path) -> None:
    """A SQLite file that exists must be a readable database (SQLite's quick check); read-only."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            result = connection.execute("PRAGMA quick_check").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise StoreDamaged(f"the MLflow database {path} is damaged ({exc}); {move_aside_hint(path)}") from None
    if result != [("ok",)]:
        detail = str(result[0][0])[:80] if result else "no answer"
        raise StoreDamaged(f"the MLflow database {path} is damaged ({detail}); {move_aside_hint(path)}")


def check_journal(path: Path) -> None:
    """Every line of an Optuna journal file must be one complete JSON record; read under Optuna's own lock."""
    if not path.is_file():
        return
    from optuna.storages.journal import JournalFileSymlinkLock

    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
    finally:
        lock.release()
    if data and not data.endswith(b"\n"):
        raise StoreDamaged(f"the Optuna journal {path} is damaged (its last line is cut short); {move_aside_hint(path)}")
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            json.loads(line)
        except ValueError:
            raise StoreDamaged(
                f"the Optuna journal {path} is damaged (line {number} is not a JSON record); {move_aside_hint(path)}"
            ) from None


@contextmanager
def disk_reserve(folder: Path) -> Iterator[Path]:
    """While inside: RESERVE_BYTES held in FOLDER/.redes/disk-reserve, named in the environment for the workers."""
    path = folder / ".redes" / "disk-reserve"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system without fallocate: write it
            raise
        os.write(fd, bytes(RESERVE_BYTES))
    finally:
        os.close(fd)
    previous = os.environ.get(ENV_RESERVE)
    os.environ[ENV_RESERVE] = str(path)
    try:
        yield path
    finally:
        release_reserve()
        if previous is None:
            os.environ.pop(ENV_RESERVE, None)
        else:
            os.environ[ENV_RESERVE] = previous


def release_reserve() -> None:
    """Delete this study's reserve file, if it has one."""
    if os.environ.get(ENV_RESERVE):
        Path(os.environ[ENV_RESERVE]).unlink(missing_ok=True)


def disk_filled() -> None:
    """A write of this process met a full disk: free the reserve and stop the study (see the module's docstring)."""
    from tracking import interruption

    release_reserve()
    interruption.request_stop(DISK_FULL)


def failure_reason(exc: BaseException) -> str:
    """Why EXC failed a run, for its trial and its tags; the stores' disk full is named as such, and stops the study."""
    if is_disk_full(exc) and stores_disk_full():
        disk_filled()
        return f"{DISK_FULL}: {disk_full_detail(exc)}"
    return f"{type(exc).__name__}: {exc}"


def stores_disk_full() -> bool:
    """Whether the full disk is the one of the study's embedded stores (where its reserve is).

    Another full disk, an artifact folder mounted apart, say, fails the trials that write
    to it with the reason, and the study goes on: the stores can still record every end.
    """
    path = os.environ.get(ENV_RESERVE)
    if not path:
        return False
    if not os.path.exists(path):  # another process met it first
        return True
    return shutil.disk_usage(os.path.dirname(path)).free < RESERVE_BYTES


def check_reserve() -> None:
    """At an epoch end: when another process of the study met a full disk (the reserve is gone), stop here too."""
    path = os.environ.get(ENV_RESERVE)
    if path and not os.path.exists(path):
        from tracking import interruption

        interruption.request_stop(DISK_FULL)


def check_free_space(folder: Path, need: int = MIN_FREE_BYTES) -> None:
    """Refuse to start when the disk of FOLDER (or its nearest existing parent) has less than NEED bytes free."""
    existing = nearest_existing(folder)
    free = shutil.disk_usage(existing).free
    if free < need:
        raise StoreFull(
            f"only {free / 2**20:.1f} MiB free on the disk of {existing}; a study needs at least {need // 2**20} MiB "
            "for its MLflow store, artifacts and journal: free some space or run from another folder"
        )
