"""Search-space files for tests, written from keyword arguments instead of TOML copied around."""

from __future__ import annotations

import json


def space_toml(**params: tuple | list) -> str:
    """The ``[space.NAME]`` tables of a search-space file.

    A tuple is a range, ``(low, high)`` or ``(low, high, "log")``; a list is the choices.
    """
    lines = []
    for name, value in params.items():
        lines.append(f"[space.{name}]")
        if isinstance(value, list):
            lines.append(f"choices = {json.dumps(value)}")
        else:
            low, high, *scale = value
            lines += [f"low = {low}", f"high = {high}"] + (["log = true"] if scale == ["log"] else [])
    return "\n".join(lines) + "\n"
