"""Issue #18: with PREFECT_API_URL naming no server, `redes data` printed a traceback after ~9 s (Prefect's
client retrying). Every command that needs Prefect now fails in seconds, before any work, with one line naming
the variable and the fix (exit 1: a missing service, not bad input)."""

from __future__ import annotations

import http.server
import threading
import time

import pytest
from typer.testing import CliRunner

from cli.main import app
from flows.prefect_api import PrefectUnavailable, check_reachable
from runtime.servers import free_port

SMALL = ["--train-size", "1000", "--val-size", "100"]
COMMANDS = {
    "data": ["data", *SMALL],
    "train": ["train", "--epochs", "1", *SMALL],
    "study": ["study", "--trials", "1", *SMALL],
    "run": ["run", "--timeout", "1m"],
    "baselines": ["baselines", "--no-svm", *SMALL],
    "serve": ["serve", *SMALL],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_with_an_unreachable_prefect_api_is_one_line_in_seconds(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDES_DATA_DIR", str(tmp_path / "data"))
    for name in ("REDES_OPTUNA_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)

    started = time.monotonic()
    result = CliRunner().invoke(app, COMMANDS[command])
    seconds = time.monotonic() - started
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"the Prefect API at {url} (PREFECT_API_URL) does not answer" in output
    assert "unset PREFECT_API_URL" in output
    assert "Traceback" not in output and isinstance(result.exception, SystemExit), result.exception
    assert seconds < 5, f"{command} took {seconds:.1f} s"
    assert list(tmp_path.iterdir()) == [], "no data, no journal, no MLflow store"


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - the standard library's name
        self.send_response(self.status if self.path == "/api/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, answers", [(200, True), (401, True), (503, False)])
def test_an_api_counts_as_reachable_when_its_health_check_answers(status, answers, monkeypatch):
    handler = type("Health", (_Health,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{server.server_port}/api")
        if answers:
            check_reachable()
        else:
            with pytest.raises(PrefectUnavailable, match=f"HTTP {status}"):
                check_reachable()
    finally:
        server.shutdown()
        server.server_close()


def test_no_prefect_api_url_is_nothing_to_check(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    check_reachable()
