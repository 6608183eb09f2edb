"""Separate machines on one Linux host: a network namespace and a Unix user per worker.

Each worker gets its own network namespace joined to the host by a veth pair in a private
/30 of its own, its own UTS namespace (host name), and its own unprivileged user with its own
home, working folder, data folder and temporary folder. The servers run as one more user, on
one address of the lab (the host end of a veth pair of its own, which is never cut), and keep
their folders to themselves (mode 0700). Every address is in one /24 of 10.213.0.0/16 that no
route or address of the machine uses; nothing else is touched.

Everything is created by :class:`Lab` and removed by :meth:`Lab.teardown`: processes by PID,
namespaces, links, users and the lab's folder. Used by tests/integration/stack/test_netns_workers.py
and benchmarks/bench_netns.py.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.servers import start_process, stop_processes

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
LAB_NETWORK = ipaddress.ip_network("10.213.0.0/16")
#: The interpreter other users can run: the test's own venv may hang off a folder only root can enter (/root/.pyenv).
WORKER_VENV = ".venv-netns"


def run(*argv: str, check: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done


def namespaces_unavailable() -> str | None:
    """Why this machine cannot build the lab (not root, a tool missing, `ip netns add` refused), or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "network namespaces and test users need root (run as root, e.g. in the CI container)"
    for tool in ("ip", "useradd", "userdel", "unshare", "setpriv", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not (POSTGRES_BIN / "initdb").exists():
        return f"PostgreSQL 15 is not installed ({POSTGRES_BIN}/initdb missing)"
    probe = f"rnprobe{secrets.token_hex(3)}"
    added = run("ip", "netns", "add", probe, check=False)
    if added.returncode != 0:
        return f"`ip netns add` is not allowed here: {added.stderr.strip()}"
    run("ip", "netns", "delete", probe, check=False)
    return None


def worker_venv_unusable(venv: Path) -> str | None:
    """Why VENV cannot be run by an unprivileged user, or None. (`make test-netns` builds it.)"""
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        return f"{venv} is not built: run `make {WORKER_VENV}/.installed` (or `make test-netns`)"
    done = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", str(python), "-c", "import flows.study",
               check=False, timeout=120, cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})  # fmt: skip
    if done.returncode != 0:
        return f"user nobody cannot run {python} with redes: {done.stderr.strip().splitlines()[-1:]}"
    return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network of the machine's routes and addresses, to pick a /24 that collides with none."""
    used = []
    for line in run("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in ("default", "broadcast", "local", "unreachable", "blackhole", "prohibit"):
            first = line.split()[1] if first != "default" and len(line.split()) > 1 else "0.0.0.0/0"
        try:
            used.append(ipaddress.ip_network(first, strict=False))
        except ValueError:
            continue
    return used


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path

    def folder(self, name: str) -> Path:
        return self.home / name

    def as_user(self) -> list[str]:
        """The argv prefix that runs a command as this user, with no capability and no root group."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--"]


@dataclass
class Worker:
    """One machine: a namespace, its /30, its user."""

    index: int
    namespace: str
    host_link: str
    address: str
    user: User

    @property
    def hostname(self) -> str:
        return f"{self.namespace}-host"


@dataclass
class Lab:
    root: Path
    token: str
    subnet: ipaddress.IPv4Network
    server_address: str = ""
    users: list[User] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    processes: list[tuple[int, subprocess.Popen, int, float]] = field(default_factory=list)  # (stage, process, stop signal, seconds)

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def create(cls, base: Path = Path("/var/tmp")) -> "Lab":
        """A lab folder (0711: users reach their own subfolders only) and a /24 nobody uses."""
        used = _used_networks()
        token = secrets.token_hex(2)
        for _ in range(50):
            subnet = ipaddress.ip_network(f"10.213.{secrets.randbelow(250) + 1}.0/24")
            if not any(subnet.overlaps(net) for net in used if net.prefixlen > 0):
                break
        else:
            raise RuntimeError("no free /24 in 10.213.0.0/16 on this machine")
        root = Path(base) / f"redes-lab-{token}"
        root.mkdir(mode=0o711)
        root.chmod(0o711)
        lab = cls(root=root, token=token, subnet=subnet)
        try:
            lab._add_server_link()
        except BaseException:
            lab.teardown()
            raise
        return lab

    def _add_server_link(self) -> None:
        """The servers' address: the host end of a veth pair of its own (both ends stay here and up)."""
        hosts = list(self.subnet.subnets(new_prefix=30))[0].hosts()
        address = str(next(hosts))
        a, b = f"rn{self.token}s0", f"rn{self.token}s1"
        run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        self.links.append(a)
        run("ip", "addr", "add", f"{address}/30", "dev", a)
        run("ip", "link", "set", a, "up")
        run("ip", "link", "set", b, "up")
        self.server_address = address

    def add_user(self, role: str) -> User:
        """An unprivileged user with its own home (0700) under the lab folder."""
        name = f"rn{self.token}{role}"
        home = self.root / "home" / name
        home.parent.mkdir(exist_ok=True, mode=0o711)
        run("useradd", "--create-home", "--home-dir", str(home), "--shell", "/usr/sbin/nologin", "--user-group", "--no-log-init", name)
        entry = pwd.getpwnam(name)
        user = User(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=home)
        self.users.append(user)
        home.chmod(0o700)
        return user

    def user_folder(self, user: User, name: str) -> Path:
        path = user.folder(name)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chown(path, user.uid, user.gid)
        return path

    def add_worker(self) -> Worker:
        """A namespace with a veth pair in the next /30, a route to the servers' address only, and a user."""
        index = len(self.workers)
        net = list(self.subnet.subnets(new_prefix=30))[index + 1]
        host_address, ns_address = (str(h) for h in net.hosts())
        namespace, host_link, ns_link = f"rn{self.token}n{index}", f"rn{self.token}h{index}", f"rn{self.token}w{index}"
        run("ip", "netns", "add", namespace)
        self.namespaces.append(namespace)
        run("ip", "link", "add", host_link, "type", "veth", "peer", "name", ns_link)
        self.links.append(host_link)
        run("ip", "link", "set", ns_link, "netns", namespace)
        run("ip", "addr", "add", f"{host_address}/30", "dev", host_link)
        run("ip", "link", "set", host_link, "up")
        run("ip", "-n", namespace, "addr", "add", f"{ns_address}/30", "dev", ns_link)
        run("ip", "-n", namespace, "link", "set", "lo", "up")
        run("ip", "-n", namespace, "link", "set", ns_link, "up")
        run("ip", "-n", namespace, "route", "add", f"{self.server_address}/32", "via", host_address)
        worker = Worker(index, namespace, host_link, ns_address, self.add_user(f"w{index}"))
        self.workers.append(worker)
        return worker

    def add_reader(self) -> User:
        return self.add_user("rd")

    # --- running -----------------------------------------------------------------------------

    def in_worker(self, worker: Worker, argv: list[str]) -> list[str]:
        """ARGV run on WORKER's machine: its namespace, its host name, its user."""
        return [
            "ip", "netns", "exec", worker.namespace, "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', worker.hostname, *worker.user.as_user(), *argv,
        ]  # fmt: skip

    def start(
        self, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path, stop_signal: int = signal.SIGTERM, stage: int = 1,
        stop_seconds: float = 30.0,
    ) -> subprocess.Popen:
        """ARGV in a process group of its own; stopped at the end by stage, highest first (workers, servers, database),
        and killed if still there after STOP_SECONDS."""
        process = start_process(argv, env=env, cwd=cwd, log_path=log)
        self.processes.append((stage, process, stop_signal, stop_seconds))
        return process

    def cut(self, worker: Worker) -> None:
        run("ip", "link", "set", worker.host_link, "down")

    def restore(self, worker: Worker) -> None:
        run("ip", "link", "set", worker.host_link, "up")

    # --- tearing down ------------------------------------------------------------------------

    def stop_processes(self) -> None:
        """Our processes (their groups) by PID, a stage at a time, then anything the lab's users still run, by PID."""
        for stage in sorted({stage for stage, *_ in self.processes}, reverse=True):
            batch = [(p, sig, seconds) for s, p, sig, seconds in self.processes if s == stage]
            stop_processes([(p, sig) for p, sig, _ in batch], timeout=max(seconds for *_, seconds in batch))
        self.processes.clear()
        for _ in range(3):
            left = self.user_pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)

    def user_pids(self) -> list[int]:
        uids = {u.uid for u in self.users}
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid in uids:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def teardown(self) -> list[str]:
        """Remove everything the lab made; return what could not be removed (empty when clean)."""
        problems = []
        try:
            self.stop_processes()
        except Exception as exc:  # noqa: BLE001 - go on removing the rest
            problems.append(f"processes: {exc}")
        for namespace in self.namespaces:
            if run("ip", "netns", "delete", namespace, check=False).returncode != 0:
                problems.append(f"namespace {namespace}")
        for link in self.links:
            if Path(f"/sys/class/net/{link}").exists() and run("ip", "link", "delete", link, check=False).returncode != 0:
                problems.append(f"link {link}")
        for user in self.users:
            if run("userdel", "--remove", user.name, check=False).returncode not in (0, 12):  # 12: home already gone
                problems.append(f"user {user.name}")
        shutil.rmtree(self.root, ignore_errors=True)
        return problems + self.leftovers()

    def leftovers(self) -> list[str]:
        """What of the lab still exists on the machine."""
        left = [f"namespace {n}" for n in self.namespaces if Path(f"/run/netns/{n}").exists()]
        left += [f"link {link}" for link in self.links if Path(f"/sys/class/net/{link}").exists()]
        left += [f"user {u.name}" for u in self.users if _user_exists(u.name)]
        left += [f"process {pid}" for pid in self.user_pids()]
        left += [f"folder {self.root}"] if self.root.exists() else []
        return left


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# --- a PostgreSQL cluster of the lab's own ---------------------------------------------------


@dataclass
class Postgres:
    """A private cluster (data folder owned by postgres, 0700) on 127.0.0.1 and the servers' address."""

    data: Path
    port: int
    role: str
    password: str = field(repr=False)
    process: subprocess.Popen | None = None

    @property
    def socket_dir(self) -> Path:
        return self.data.parent / "pg-socket"

    def url(self, database: str, host: str = "127.0.0.1", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.role}:{self.password}@{host}:{self.port}/{database}"

    def psql(self, sql: str) -> str:
        argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.socket_dir), "-p", str(self.port), "-d", "postgres"]  # fmt: skip
        return run(*argv, input=sql, cwd="/").stdout


def start_postgres(lab: Lab, port: int, databases: tuple[str, ...]) -> Postgres:
    """initdb, listen on 127.0.0.1 and the servers' address (TCP logins from the lab's /24 only), create DATABASES."""
    folder = lab.root / "postgres"
    folder.mkdir(mode=0o700)
    pg = Postgres(data=folder / "data", port=port, role=f"rn{lab.token}", password=secrets.token_hex(16))
    pg.socket_dir.mkdir(mode=0o700)
    shutil.chown(folder, "postgres", "postgres")
    shutil.chown(pg.socket_dir, "postgres", "postgres")
    run("runuser", "-u", "postgres", "--", str(POSTGRES_BIN / "initdb"), "--no-sync", "-D", str(pg.data),
        "--auth-local=peer", "--auth-host=scram-sha-256", "-U", "postgres", timeout=120, cwd="/")  # fmt: skip
    with open(pg.data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {lab.subnet} scram-sha-256\n")
    argv = ["runuser", "-u", "postgres", "--", str(POSTGRES_BIN / "postgres"), "-D", str(pg.data), "-p", str(port),
            "-c", f"listen_addresses=127.0.0.1,{lab.server_address}", "-c", f"unix_socket_directories={pg.socket_dir}",
            "-c", "fsync=off", "-c", "max_connections=200"]  # fmt: skip
    pg.process = lab.start(argv, env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}, cwd=Path("/"),
                           log=lab.root / "logs" / "postgres.log", stop_signal=signal.SIGINT, stage=0)  # fmt: skip
    deadline = time.monotonic() + 60
    while run(str(POSTGRES_BIN / "pg_isready"), "-h", str(pg.socket_dir), "-p", str(port), "-U", "postgres", check=False).returncode != 0:
        if pg.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the lab's PostgreSQL did not start:\n{(lab.root / 'logs' / 'postgres.log').read_text()[-2000:]}")
        time.sleep(0.3)
    pg.psql(f"CREATE ROLE {pg.role} LOGIN PASSWORD '{pg.password}';")
    for database in databases:
        pg.psql(f"CREATE DATABASE {database} OWNER {pg.role};")
    return pg


def lab_of(repo_root: Path):
    """A lab for a test fixture (``yield from lab_of(repo_root)``): skipped with the reason where namespaces are not
    allowed, failed when the workers' venv cannot serve other users, torn down with nothing left behind."""
    import pytest

    reason = namespaces_unavailable()
    if reason is not None:
        pytest.skip(f"separate machines cannot be simulated here: {reason}")
    unusable = worker_venv_unusable(repo_root / WORKER_VENV)
    if unusable is not None:
        pytest.fail(unusable)
    lab = Lab.create()
    try:
        yield lab
    finally:
        left = lab.teardown()
        assert left == [], f"the lab left behind: {left}"
