"""FastAPI dependencies as Annotated aliases: the service, and who is calling.

Routes declare the role they need with one of ``ViewerDep``, ``OperatorDep``,
``EngineerDep``, ``IngestDep`` or ``AdminDep``; the value is the calling ``Principal``
(its name goes into audit trails). A key is sent as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.auth import ANONYMOUS, Principal, Role, grants
from app.errors import Forbidden, Unauthorized
from app.wiring import Service

_bearer = HTTPBearer(auto_error=False, description="an API key from `spcmon keys create`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key")


# every dependency is async: a sync one would hop to the thread pool on each request
async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_principal(
    service: ServiceDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    """The caller: the key presented, else the anonymous reader when allowed."""
    return principal_for(service, bearer.credentials if bearer is not None else header)


def principal_for(service: Service, token: str | None) -> Principal:
    """The caller presenting ``token`` (``None``: no key sent); Unauthorized if refused."""
    if token is None:
        if service.settings.auth.anonymous_read:
            return ANONYMOUS
        raise Unauthorized(
            "this API needs a key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(an administrator creates keys with 'spcmon keys create')"
        )
    key = service.keys.verify(token)
    if key is None:
        raise Unauthorized("the API key is not valid (unknown, revoked or mistyped)")
    return Principal(key.name, key.role)


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through callers whose role grants ``role``."""

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not grants(principal.role, role):
            who = "anonymous callers" if principal.anonymous else f"key {principal.name!r}"
            raise Forbidden(
                f"this needs the {role.value} role; {who} "
                f"{'have' if principal.anonymous else 'has'} {principal.role.value}"
            )
        return principal

    check.__name__ = f"require_{role.value}"
    return check


ViewerDep = Annotated[Principal, Depends(require(Role.VIEWER))]
OperatorDep = Annotated[Principal, Depends(require(Role.OPERATOR))]
EngineerDep = Annotated[Principal, Depends(require(Role.ENGINEER))]
IngestDep = Annotated[Principal, Depends(require(Role.INGEST))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
