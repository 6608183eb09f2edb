"""Where MLflow keeps runs, and a quick check that it answers before any training starts.

The embedded default is a SQLite file and an artifact folder in the working folder;
``MLFLOW_TRACKING_URI`` points the same code at a tracking server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import mlflow
from mlflow.tracking import MlflowClient

from runtime.paths import nearest_existing
from runtime.servers import LOOPBACK, MLFLOW_UI_PORT, mask_url, probe
from runtime.settings import Settings
from tracking import names, stores, ui_views


#: How a tracking database refuses a second insert of the same key (PostgreSQL, SQLite, MySQL).
DUPLICATE_KEY_ERRORS = ("UniqueViolation", "UNIQUE constraint failed", "Duplicate entry", "IntegrityError")


def is_duplicate_key(exc: Exception) -> bool:
    """True when the server lost an insert race: it looked a row up, found none, and another client inserted it first."""
    return any(marker in str(exc) for marker in DUPLICATE_KEY_ERRORS)


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking server does not answer; raised before any work is done."""


def masked(uri: str) -> str:
    """The URI with any password replaced, for messages and logs."""
    return mask_url(uri)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the URI, when a tracking server does not answer its health check
    or refuses this process's credentials (see :func:`check_credentials`)."""
    if not uri.startswith(("http://", "https://")):
        return
    status, reason = probe(uri.rstrip("/") + "/health", timeout)
    if status in (200, 401, 403):  # 401/403: alive, behind authentication
        return check_credentials(uri, timeout)
    raise TrackingUnavailable(
        f"the MLflow tracking server at {masked(uri)} does not answer ({reason}); start it, or unset "
        "MLFLOW_TRACKING_URI to use the local SQLite store"
    )


#: An API call any signed-in user may make; `/health` answers without authentication.
CREDENTIALS_PROBE = "/api/2.0/mlflow/experiments/search"


def check_credentials(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds when the server at URI refuses the credentials MLflow would send (basic authentication).

    One API call with MLflow's own client credentials (MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD, or a token): HTTP 401 or 403 stops here, before any work,
    with what to set. Anything else, no answer included, is left to the calls that follow.
    Messages name the user, never the password.
    """
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    try:
        response = http_request(
            creds, CREDENTIALS_PROBE, "GET", max_retries=0, timeout=timeout, raise_on_status=False,
            params={"max_results": 1},
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - a server that answered /health a moment ago; later calls retry
        return
    where = f"the MLflow tracking server at {masked(uri)}"
    if response.status_code == 401:
        if creds.token:
            raise TrackingUnavailable(f"{where} rejected the token in MLFLOW_TRACKING_TOKEN (HTTP 401)")
        if not (creds.username and creds.password):
            raise TrackingUnavailable(
                f"{where} requires a user name and password: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (docs/operations.md, \"MLflow basic authentication\")"
            )
        raise TrackingUnavailable(
            f"{where} rejected user {creds.username!r} (HTTP 401): check MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD"
        )
    if response.status_code == 403:
        detail = " ".join(response.text.split())[:120] or "forbidden"
        hint = ""
        if "invalid host header" in detail.lower():
            hint = "; add the host name of MLFLOW_TRACKING_URI to the server's --allowed-hosts"
        raise TrackingUnavailable(f"{where} refuses this client (HTTP 403: {detail}){hint}")


def check_artifact_root(uri: str, root: Path) -> None:
    """Fail before any work when the embedded store's artifact folder cannot be written (read-only, no rights).

    Checks the folder or, if it does not exist yet, its nearest existing parent; writes nothing.
    A tracking server keeps its own artifacts and is not checked here.
    """
    if uri.startswith(("http://", "https://", "databricks")):
        return
    existing = nearest_existing(root)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TrackingUnavailable(
            f"MLflow cannot write its artifacts to {root}: {existing} is read-only or not writable by this user; "
            "make it writable, run from another folder, or set MLFLOW_TRACKING_URI to a tracking server"
        )


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store (checked first) and return a client for it."""
    uri = settings.tracking_uri
    check_reachable(uri)
    check_artifact_root(uri, settings.artifact_root)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow.set_tracking_uri(uri)
    from runtime.terminal import libraries_verbose

    if not libraries_verbose():  # its ERROR line and traceback for every failed call: the error is ours to report
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    open_store(uri)
    return MlflowClient(tracking_uri=uri)


_opened: set[str] = set()


def open_store(uri: str) -> None:
    """Once per process: create (or upgrade) a database store's schema under a lock; check an embedded SQLite file first.

    Two commands starting together in a new folder, or on a new PostgreSQL database, would
    otherwise both run MLflow's schema migration, and one would crash ("duplicate column
    name", a duplicate key). MLflow keeps the store it builds here for the process, so later
    clients do not migrate again. A tracking server builds its own store.
    """
    if uri in _opened:
        return
    path = local_path(uri)
    if path is None:
        if uri.startswith("postgresql"):
            with stores.schema_lock(uri):
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates or upgrades the schema
            _opened.add(uri)
        return
    stores.check_sqlite(path)
    try:
        with stores.creation_lock(path.parent):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates or upgrades the schema
            stores.use_write_ahead_log(path)
    except Exception as exc:  # noqa: BLE001 - a database error here means the file, named in the message
        if stores.is_disk_full(exc):
            raise stores.StoreFull(f"the disk of the MLflow database {path} is full: free some space") from None
        if "malformed" in str(exc) or "not a database" in str(exc):
            raise stores.StoreDamaged(
                f"the MLflow database {path} is damaged ({str(exc).splitlines()[0][:120]}); {stores.move_aside_hint(path)}"
            ) from None
        raise
    _opened.add(uri)


def experiment_id(client: MlflowClient, name: str, settings: Settings) -> str:
    """The id of experiment NAME, created on first use (with a local artifact folder when embedded)."""
    check_experiment_name(name, settings)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if is_embedded(settings.tracking_uri):
        location = names.inside(settings.artifact_root, name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags=ui_views.experiment_tags())
    except mlflow.exceptions.MlflowException:
        # another worker created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def is_embedded(uri: str) -> bool:
    """True when this process writes the artifacts itself (no tracking server in between)."""
    return not uri.startswith(("http://", "https://", "databricks"))


def check_experiment_name(name: str, settings: Settings, option: str = "the experiment name") -> None:
    """Before any work: NAME is a name, and its artifact folder (embedded store) stays inside the artifact root."""
    names.check_name(option, name)
    if is_embedded(settings.tracking_uri):
        names.inside(settings.artifact_root, name)


def run_url(settings: Settings, experiment: str, run_id: str | None = None) -> str:
    """Where a person looks at a run: the server's page, or how to open the local store."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        return f"{ui_base_url(uri)}/#/experiments/{experiment}/runs" + (f"/{run_id}" if run_id else "")
    return f"{uri} (open it with: redes ui)"


def ui_base_url(tracking_uri: str) -> str:
    """Where a browser shows the runs of TRACKING_URI: the tracking server itself (without any
    user name or password in its URL), or, for a local store, the MLflow UI that `redes ui` serves."""
    if not tracking_uri.startswith(("http://", "https://")):
        return f"http://{LOOPBACK}:{MLFLOW_UI_PORT}"
    parts = urlsplit(tracking_uri)
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path.rstrip("/"), "", ""))


def run_page_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The page of one run in the MLflow UI (see :func:`ui_base_url`)."""
    return f"{ui_base_url(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}"


def local_path(uri: str) -> Path | None:
    """The file behind a ``sqlite:///`` URI, if any."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
