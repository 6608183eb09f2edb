"""Why a mirror could not give a file, and the one error raised when no mirror could.

A :class:`SourceError` says whether it is *transient* (connection reset, timeout, HTTP
5xx: worth a retry with backoff) and whether the whole mirror is *unreachable* (no
point asking it for the other files). Bad bytes are never transient: a checksum error
moves on to the next mirror and is not retried.
"""

from __future__ import annotations

from dataclasses import dataclass


class SourceError(Exception):
    """A mirror failed to deliver one file."""

    def __init__(self, message: str, *, transient: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.unreachable = unreachable


@dataclass(frozen=True)
class MirrorFailure:
    """One failed attempt: which mirror, which file (None: the whole mirror), and why."""

    mirror: str
    file: str | None
    reason: str
    transient: bool = False


class MirrorsExhausted(RuntimeError):
    """Every mirror was tried and some MNIST files are still missing.

    The message lists each mirror and why it failed; ``transient`` is true when at least
    one failure was a network hiccup, so retrying the whole list later may succeed.
    """

    def __init__(self, missing: list[str], failures: list[MirrorFailure], mirrors: list[str]) -> None:
        self.missing = list(missing)
        self.failures = list(failures)
        self.mirrors = list(mirrors)
        super().__init__(self._message())

    @property
    def transient(self) -> bool:
        return any(f.transient for f in self.failures)

    def _message(self) -> str:
        lines = [f"MNIST could not be downloaded: no mirror gave {', '.join(self.missing)}."]
        if not self.mirrors:
            lines.append("  The mirror list is empty.")
        for number, mirror in enumerate(self.mirrors, start=1):
            reasons = [f for f in self.failures if f.mirror == mirror]
            if not reasons:
                lines.append(f"  {number}. {mirror}: not tried")
            elif len(reasons) == 1 and reasons[0].file is None:
                lines.append(f"  {number}. {mirror}: {reasons[0].reason}")
            else:
                lines.append(f"  {number}. {mirror}:")
                lines.extend(f"       - {f.file or 'all files'}: {_without_prefix(f)}" for f in reasons)
        lines.append(
            "Point redes at a copy with --mirror (a URL, a file:// URL or a folder holding the four "
            "IDX files, gzipped or not) or with REDES_MNIST_MIRRORS (comma-separated)."
        )
        return "\n".join(lines)


def _without_prefix(failure: MirrorFailure) -> str:
    """The reason without a leading ``<file>: `` (the list already names the file)."""
    prefix = f"{failure.file}: "
    return failure.reason[len(prefix) :] if failure.file and failure.reason.startswith(prefix) else failure.reason


class ReadOnlyData(RuntimeError):
    """The data folder cannot be written and lacks something a command needs (a file, a split); the message says
    what and how to get it: a read-only REDES_DATA_DIR serves only what was stored in it before."""
