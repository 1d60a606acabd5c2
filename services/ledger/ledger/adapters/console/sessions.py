"""The console's sessions: the cookie holds only a random id; the server keeps the rest.

A session row holds the SHA-256 of that id, the token it was opened with and
its CSRF token. Every request reads the session with its token, so a revoked
or expired token, or an expired session, ends it at once; the session is then
deleted. Who the visitor is and what they may do is the token's `Principal`,
the same one the API's bearer token gives.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from egis_common.secrets import lookup_key, new_token
from ledger import auth
from ledger.auth import Principal, Role
from ledger.repository import api_tokens, console_sessions

COOKIE = "egis_console"
# Before a session exists, the login form's CSRF token is checked against this cookie (double submit).
LOGIN_COOKIE = "egis_console_login"
PATH = "/console"
# A working day: long enough not to interrupt an operator, short enough that a forgotten browser closes itself.
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Visitor:
    principal: Principal
    csrf_token: str


async def open_session(conn: AsyncConnection, principal: Principal) -> str:
    """A new session for a verified token; returns the cookie's value (the only copy of the id)."""
    now = datetime.now(UTC)
    await conn.execute(console_sessions.delete().where(console_sessions.c.expires_at <= now))
    token_expiry = await conn.scalar(
        sa.select(api_tokens.c.expires_at).where(api_tokens.c.token_id == principal.token_id)
    )
    session_id = new_token()
    await conn.execute(
        console_sessions.insert().values(
            session_key=lookup_key(session_id),
            token_id=principal.token_id,
            csrf_token=new_token(),
            created_at=now,
            expires_at=min(now + LIFETIME, token_expiry or now + LIFETIME),
        )
    )
    return session_id


async def visitor(conn: AsyncConnection, session_id: str | None) -> Visitor | None:
    """The visitor behind a cookie, or None; a session whose token or time is over is deleted here."""
    if not session_id:
        return None
    s, t = console_sessions, api_tokens
    query = (
        sa.select(
            s.c.session_key,
            s.c.csrf_token,
            s.c.expires_at.label("session_expires_at"),
            t.c.token_id,
            t.c.role,
            t.c.owner_id,
            t.c.name,
            t.c.revoked_at,
            t.c.expires_at,
        )
        .join(t, t.c.token_id == s.c.token_id)
        .where(s.c.session_key == lookup_key(session_id))
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    now = datetime.now(UTC)
    if row.session_expires_at <= now or not auth.is_live(row, now):
        await conn.execute(s.delete().where(s.c.session_key == row.session_key))
        return None
    return Visitor(Principal(row.token_id, Role(row.role), row.owner_id, row.name), row.csrf_token)


async def close_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(console_sessions.delete().where(console_sessions.c.session_key == lookup_key(session_id)))


def same_secret(sent: str | None, expected: str | None) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over https."""
    response.set_cookie(
        name, value, max_age=max_age, path=PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https")
