"""`redes ui` prints each link whole on a line of its own, however narrow the terminal or wherever it writes."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from cli import local_servers, ui
from tracking import ui_views

MLFLOW = "http://127.0.0.1:5000"
RUNS = ui_views.runs_url(MLFLOW, "12")
CHARTS = ui_views.runs_url(MLFLOW, "12", charts=True)
DASHBOARD = "http://127.0.0.1:8080/dashboard/studies/3"


def running(name: str, pid: int) -> ui.Running:
    planned = local_servers.Planned(name, [], {}, "", f"http://127.0.0.1:{pid}", f"/somewhere/a/rather/long/path/{name}.db")
    server = SimpleNamespace(pid=pid, seconds_to_ready=1.5, log_path=Path("/w/.redes/logs") / f"{name}.log")
    return ui.Running(planned, server)


@pytest.mark.parametrize("width", [40, 80], ids=["40 columns", "80 columns"])
@pytest.mark.parametrize("is_terminal", [True, False], ids=["terminal", "file"])
def test_every_url_is_printed_whole_on_its_own_line(monkeypatch, width, is_terminal):
    out = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=out, width=width, force_terminal=is_terminal, color_system=None))
    listed = [
        ui.Listed("mnist", "study 'mnist': 68 trials", [("runs", RUNS), ("charts", CHARTS), ("optuna", DASHBOARD)]),
        ui.Listed("", "every experiment and study", [("mlflow", ui_views.experiments_url(MLFLOW))]),
    ]
    ui._print_links([running("mlflow", 5000), running("optuna-dashboard", 8080)], listed, 20.0, None)
    lines = out.getvalue().splitlines()
    for url in (RUNS, CHARTS, DASHBOARD, ui_views.experiments_url(MLFLOW)):
        assert sum(1 for line in lines if line.split() and line.split()[-1] == url) == 1, out.getvalue()
    assert all(line.split()[-1].startswith("http") for line in lines if "://" in line and "store" not in line)
    assert any(line.startswith("  mlflow") and "pid 5000" in line for line in lines)
    assert lines[-1].endswith("Press Ctrl-C to stop.")


def test_with_nothing_tracked_yet_it_says_what_to_run(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=out, width=80))
    listed = [ui.Listed("", "every experiment and study", [("mlflow", ui_views.experiments_url(MLFLOW))])]
    ui._print_links([running("mlflow", 5000)], listed, 1.0, None)
    assert "run `redes study` or `redes train`" in out.getvalue()
