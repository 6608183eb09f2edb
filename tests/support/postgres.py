"""PostgreSQL for tests: the local cluster, and databases with unique names owned by a role of
their own with a random password, dropped at the end. SQL (passwords included) goes to psql on
stdin, never on a command line."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

DATABASES = ("prefect", "mlflow", "optuna")



def postgres_port() -> int | None:
    """The port of the online local PostgreSQL cluster, or None."""
    if shutil.which("pg_lsclusters") is None:
        return None
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3] == "online":
            return int(fields[2])
    return None


def postgres_unavailable() -> str | None:
    """Why the local PostgreSQL cannot be used by the tests, or None when it can."""
    if shutil.which("psql") is None or shutil.which("pg_lsclusters") is None:
        return "PostgreSQL is not installed (no psql / pg_lsclusters)"
    if postgres_port() is None:
        return "no PostgreSQL cluster is online (make test starts it: tests/services.sh)"
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        return "creating test databases needs root (su postgres) or sudo"
    return None


def psql(sql: str) -> None:
    """Run SQL as the postgres superuser over the local socket; the SQL (passwords included) goes on stdin."""
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres"]
    argv = ["su", "postgres", "-c", " ".join(command)] if os.geteuid() == 0 else ["sudo", "-n", "-u", "postgres", *command]
    done = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=120, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")


@dataclass
class PgDatabases:
    """A role with a random password and one database per store, all with unique names."""

    prefix: str
    role: str
    password: str = field(repr=False)
    port: int

    def name(self, store: str) -> str:
        return f"{self.prefix}_{store}"

    def url(self, store: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.role}:{self.password}@127.0.0.1:{self.port}/{self.name(store)}"


def create_databases(prefix: str | None = None) -> PgDatabases:
    prefix = prefix or f"redes_t{secrets.token_hex(4)}"
    dbs = PgDatabases(prefix=prefix, role=prefix, password=secrets.token_hex(16), port=postgres_port() or 5432)
    psql(f"CREATE ROLE {dbs.role} LOGIN PASSWORD '{dbs.password}';")
    try:
        for store in DATABASES:
            psql(f"CREATE DATABASE {dbs.name(store)} OWNER {dbs.role};")
    except BaseException:
        drop_databases(dbs)
        raise
    return dbs


def drop_databases(dbs: PgDatabases) -> None:
    statements = [f"DROP DATABASE IF EXISTS {dbs.name(store)} WITH (FORCE);" for store in DATABASES]
    psql("\n".join(statements) + f"\nDROP ROLE IF EXISTS {dbs.role};")


def databases_exist(dbs: PgDatabases) -> list[str]:
    """Names of DBS's databases still present (for the test of the clean-up)."""
    argv = ["su", "postgres", "-c", "psql -X -At -d postgres"] if os.geteuid() == 0 else ["sudo", "-n", "-u", "postgres", "psql", "-X", "-At", "-d", "postgres"]
    done = subprocess.run(
        argv, input=f"SELECT datname FROM pg_database WHERE datname LIKE '{dbs.prefix}%';", capture_output=True, text=True,
        cwd="/", timeout=60,
    )  # fmt: skip
    return done.stdout.split()
