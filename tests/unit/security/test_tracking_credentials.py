"""`tracking.mlflow_store.check_reachable` against a stand-in server on 127.0.0.1: /health answers
200 to anyone, the API answers what the test says. A server that refuses the credentials is
reported before any work, naming what to set and never the password."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracking.mlflow_store import TrackingUnavailable, check_reachable

USER, PASSWORD = "alice", "correct-horse-battery"


class Handler(BaseHTTPRequestHandler):
    api_status: int | None = None  # None: basic authentication with USER and PASSWORD
    body = b"{}"

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/health":
            return self._answer(200, b"OK")
        status = self.api_status
        if status is None:
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            status = 200 if self.headers.get("Authorization") == expected else 401
        self._answer(status, self.body if status != 401 else b"You are not authenticated.")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    handler = type("TestHandler", (Handler,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_no_credentials_name_the_two_settings(server):
    _, url = server
    with pytest.raises(TrackingUnavailable) as caught:
        check_reachable(url)
    assert str(caught.value) == (
        f"the MLflow tracking server at {url} requires a user name and password: set MLFLOW_TRACKING_USERNAME and "
        'MLFLOW_TRACKING_PASSWORD (docs/operations.md, "MLflow basic authentication")'
    )


def test_a_wrong_password_names_the_user_never_the_password(server, monkeypatch):
    _, url = server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-" + PASSWORD)
    with pytest.raises(TrackingUnavailable, match=f"rejected user '{USER}'") as caught:
        check_reachable(url)
    assert PASSWORD not in str(caught.value)


def test_the_right_credentials_pass(server, monkeypatch):
    _, url = server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    check_reachable(url)


def test_a_refused_host_header_says_where_to_allow_it(server):
    handler, url = server
    handler.api_status, handler.body = 403, b"Invalid Host header - possible DNS rebinding attack detected"
    with pytest.raises(TrackingUnavailable, match=r"HTTP 403: Invalid Host header.*--allowed-hosts"):
        check_reachable(url)


@pytest.mark.parametrize("status", [200, 404, 500])
def test_other_answers_are_left_to_the_calls_that_follow(server, status):
    handler, url = server
    handler.api_status = status
    check_reachable(url)
