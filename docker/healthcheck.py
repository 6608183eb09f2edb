"""Health check of a compose service: GET a URL inside the container; exit 0 when the status is accepted.

    python docker/healthcheck.py URL [--host-header HOST] [--accept 200,401]

--host-header sends the Host header that other containers send (e.g. mlflow:5000), so a
server that answers /health but refuses its own service name (MLflow's 403 "Invalid Host
header") is reported unhealthy.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--host-header", default=None)
    parser.add_argument("--accept", default="200", help="comma-separated accepted status codes")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    accepted = {int(code) for code in args.accept.split(",")}
    headers = {"Host": args.host_header} if args.host_header else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(args.url, headers=headers), timeout=args.timeout) as reply:
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {args.url}: {exc}", file=sys.stderr)
        return 1
    if status not in accepted:
        print(f"unhealthy: {args.url} answered HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
