"""Experiment, study and run names are names, not paths.

An embedded MLflow store keeps an experiment's artifacts in ``<artifact root>/<name>``:
a name like ``../../x`` or ``/tmp/x`` would write outside the working folder. Names are
checked before any work, and the folder itself is checked once more where it is made,
symbolic links resolved, so nothing is ever written outside the artifact root.
"""

from __future__ import annotations

from pathlib import Path

#: Long enough for any sensible name; MLflow's run names (``study-<name>-<stamp>``) and file names stay short.
MAX_NAME_LENGTH = 100


class BadName(ValueError):
    """A name (or the folder it would get) is not allowed; the message names it and the fix."""


def check_name(option: str, name: str) -> str:
    """NAME as given to OPTION (e.g. ``--experiment``), or :class:`BadName` saying what to change."""
    shown = name if len(name) <= 40 else name[:40] + "…"
    if not name or not name.strip():
        raise BadName(f"{option} is empty; give a name, e.g. {option} mnist")
    if len(name) > MAX_NAME_LENGTH:
        raise BadName(f"{option} {shown!r} is {len(name)} characters long; use at most {MAX_NAME_LENGTH}")
    if "/" in name or "\\" in name or ".." in name:
        raise BadName(f"{option} {shown!r} is a path; a name may not hold '/', '\\' or '..', e.g. {option} mnist")
    if name != name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadName(f"{option} {shown!r} starts or ends with a space or holds a control character; remove it")
    return name


def inside(root: Path, name: str) -> Path:
    """``root / name`` with links resolved, or :class:`BadName` when that is not inside ROOT (a link pointing out)."""
    check_name("the experiment name", name)
    real_root = root.resolve()
    folder = (root / name).resolve()
    if folder.parent != real_root:
        raise BadName(
            f"the artifact folder of experiment {name!r}, {root / name}, leads to {folder}, outside the artifact root "
            f"{real_root}; remove that link or use another name"
        )
    return folder
