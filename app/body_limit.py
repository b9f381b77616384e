"""Refuse request bodies over a size limit before they are read into memory."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes``: by its Content-Length, or while it streams in.

    The streaming check raises Starlette's ``HTTPException`` from ``receive``, so the
    app's own handler turns it into the usual problem+json answer.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = HTTPException(413, too_large_detail(self.max_bytes))
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self.app(scope, _refuse(too_large), send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise too_large
            return message

        await self.app(scope, counting_receive, send)


def too_large_detail(max_bytes: int) -> str:
    """What a 413 answer says (the service's and the status front's)."""
    return (
        f"the request body is over the limit of {max_bytes} bytes "
        "(SPCMON_HTTP__MAX_BODY_BYTES); send smaller batches"
    )


def _refuse(exc: HTTPException) -> Receive:
    async def receive() -> Message:
        raise exc

    return receive
