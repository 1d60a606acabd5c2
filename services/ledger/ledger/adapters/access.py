"""Who calls the management API, and what that caller may do: checked here, once, for every endpoint.

Every endpoint takes `Caller` (any live token) or `Admin` (an admin token). A
`viewer` token passes `Caller` for reads only: any other method is refused
here, so a write endpoint cannot forget to refuse it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from egis_common.runtime import Runtime
from ledger import auth
from ledger.auth import Principal

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Refused(Exception):
    code = "refused"


class Unauthorized(Refused):
    code = "unauthorized"


class OwnerNotAllowed(Refused):
    code = "owner_not_allowed"


class ReadOnlyToken(Refused):
    code = "read_only_token"


class AdminOnly(Refused):
    code = "admin_only"


_bearer = HTTPBearer(auto_error=False, description="an `egt_` token from `egis-ledger-admin create-token`")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> Principal:
    """Every refusal looks the same: no token, a malformed, unknown, revoked or expired one."""
    principal = None
    if credentials is not None:
        async with runtime_of(request).engine.begin() as conn:  # begin: it may note the token's use
            principal = await auth.authenticate(conn, credentials.credentials)
    if principal is None:
        raise Unauthorized("a valid bearer token is required")
    if principal.read_only and request.method not in READ_METHODS:
        raise ReadOnlyToken(f"a {principal.role.value} token reads only; it cannot {request.method}")
    return principal


Caller = Annotated[Principal, Depends(current_principal)]


async def admin_principal(caller: Caller) -> Principal:
    if caller.role is not auth.Role.ADMIN:
        raise AdminOnly("an admin token is required")
    return caller


Admin = Annotated[Principal, Depends(admin_principal)]
