"""Container health check: exit 0 when the service answers GET /healthz, else 1.

Used by deploy/Dockerfile's HEALTHCHECK (no curl in the slim image). The port is the
service's, from SPCMON_HTTP__PORT (default 8000). /healthz answers 200 while the process
serves requests, "degraded" included (the spool keeps data while the database is away);
readiness for traffic is /readyz.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("SPCMON_HTTP__PORT", "8000")
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:  # URLError and HTTPError (a non-2xx answer) included
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
