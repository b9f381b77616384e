"""Who the caller is (``/whoami``) and every tile's status in one answer (``/status``).

A dashboard asks ``/whoami`` once to know which actions to offer (a viewer is not shown
an Acknowledge button it would be refused), and reads ``/status`` instead of one status
request per characteristic: the answer is the per-characteristic status answers, from
the same cache, joined into one JSON array with an ETag of its own.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.api.deps import ServiceDep, ViewerDep, get_principal
from app.api.schemas import StatusPublic, WhoAmIPublic
from app.api.status_view import status_answer
from app.auth import Principal, Role, grants
from app.status_poll import etag_matches

router = APIRouter(prefix="/api/v1", tags=["session"])


@router.get("/whoami", response_model=WhoAmIPublic)
async def read_whoami(principal: Annotated[Principal, Depends(get_principal)]) -> WhoAmIPublic:
    """The calling key's name and role, and every role it grants (any valid key may ask)."""
    return WhoAmIPublic(
        name=principal.name,
        role=principal.role.value,
        anonymous=principal.anonymous,
        grants=[r.value for r in Role if grants(principal.role, r)],
    )


@router.get(
    "/status",
    response_model=list[StatusPublic],
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
async def read_statuses(
    service: ServiceDep,
    request: Request,
    _: ViewerDep,
    line: Annotated[str | None, Query(description="only this line's characteristics")] = None,
    process: Annotated[
        str | None, Query(description="only this process's: `line.process` or a bare id")
    ] = None,
) -> Response:
    """The live status of many characteristics at once (all, or a line's or a process's),
    in the order of ``GET /characteristics``; each element is what
    ``GET /characteristics/{id}/status`` answers.

    The answer carries an ``ETag``; send it back in ``If-None-Match`` to get a bodiless
    304 while no characteristic in it changed.
    """
    bodies, tags = [], []
    for record in service.monitor.characteristics:
        if line is not None and record.line != line:
            continue
        if process is not None and process not in (
            record.process,
            f"{record.line}.{record.process}",
        ):
            continue
        body, etag = status_answer(service, record)
        bodies.append(body)
        tags.append(etag)
    digest = hashlib.blake2b("".join(tags).encode(), digest_size=12).hexdigest()
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(etag, request.headers.get("if-none-match", "")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(b"[" + b",".join(bodies) + b"]", media_type="application/json", headers=headers)
