"""``GET /api/v1/characteristics/{id}/status`` answered before FastAPI's routing.

Dashboards poll every tile's status each second. Through the middleware stack and the
dependency solving, one answer cost about 0.6 ms of CPU, two thirds of it machinery
(sampled with py-spy under ``benchmarks.api_load``). A request that will certainly
succeed (a known characteristic, a key that may read, no CORS ``Origin``) is answered
here from the same cache, with the same status, headers and body as the route. Anything
else, every error included, goes the usual way, so answers keep one shape and one set of
rules.
"""

from __future__ import annotations

import logging

from starlette.types import Scope, Send

from app.api.status_view import status_answer
from app.status_poll import may_read, send_status, status_poll
from app.wiring import Service

_log = logging.getLogger(__name__)


async def answer_status(service: Service, scope: Scope, send: Send) -> bool:
    """Send the status answer if this request is one the route would answer with 200/304.

    Returns ``False``, having sent nothing, for any other request.
    """
    poll = status_poll(scope)
    if poll is None:
        return False
    try:
        if not may_read(service.keys, service.settings.auth.anonymous_read, poll.token):
            return False
        record = service.monitor.record(poll.characteristic)
        if record is None:
            return False
        body, etag = status_answer(service, record)
    except Exception:  # the route meets it again and answers with the usual problem
        _log.exception("status of %s: the fast path failed; handing over", poll.characteristic)
        return False
    await send_status(send, body, etag, poll.if_none_match)
    return True
