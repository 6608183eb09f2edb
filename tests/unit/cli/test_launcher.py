"""The warm launcher's rules that need no process: which environments it serves, and its socket's address."""

from __future__ import annotations

import os

from cli.launcher import env_difference
from cli.launcher_control import address


def test_only_the_variables_that_change_a_command_count_and_only_their_names_are_told():
    ours = {"PATH": "/bin", "PREFECT_API_URL": "http://127.0.0.1:4200/api", "PWD": "/a", "SHLVL": "1"}
    theirs = {**ours, "PWD": "/b", "SHLVL": "2", "_": "/usr/bin/redes", "COLUMNS": "250"}
    assert env_difference(theirs, ours) == []
    theirs.update(PREFECT_API_URL="http://elsewhere/api", MLFLOW_TRACKING_URI="postgresql://u:secret@h/db")
    del theirs["PATH"]
    assert env_difference(theirs, ours) == ["MLFLOW_TRACKING_URI", "PATH", "PREFECT_API_URL"]


def test_a_socket_too_deep_for_a_unix_address_is_reached_relative_to_the_folder(tmp_path, monkeypatch):
    deep = tmp_path / ("a" * 60) / ("b" * 60)
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    socket = deep / ".redes" / "launcher.sock"
    assert address(socket) == os.path.join(".redes", "launcher.sock")
    short = "/tmp/x/.redes/launcher.sock"
    assert address(short) == short
