"""One Prefect API for every process of a run.

With no ``PREFECT_API_URL``, Prefect starts a temporary server in each Python process
that needs one, so every worker of a process pool would start its own (10-15 s each).
Starting the temporary server once here and handing its URL to the children through
the environment removes that cost; a user's own server URL is always used as is.
"""

from __future__ import annotations

import os


def shared_api_url() -> str:
    """The URL of the Prefect API that this process and its children use, started if needed."""
    from prefect.settings import PREFECT_API_URL

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if url:
        return url
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same instance Prefect's client would start in this process
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    return server.api_url
