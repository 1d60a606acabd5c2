"""Test guards: no connection leaves the machine, no test touches a non-test database.

Both guards raise `GuardError` at the point of connection, before a byte is
sent, and also record the violation: code under test may catch exceptions
broadly (a relay loop does), so the test plugin fails the test afterwards
from the record even when the exception itself was swallowed.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import asyncpg.connection


class GuardError(Exception):
    """A test tried to reach something tests must never reach."""


violations: list[str] = []
_allowed_database: str | None = None
_admin_access = contextvars.ContextVar("egis_admin_access", default=False)
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _refuse(reason: str) -> GuardError:
    violations.append(reason)
    return GuardError(reason)


# --- network ---------------------------------------------------------------


def _is_ip_literal(host: Any) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


def is_loopback_host(host: Any) -> bool:
    if host in (None, "") or (isinstance(host, str) and host.lower() in _LOOPBACK_NAMES):
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_address(family: int, address: Any) -> None:
    if family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not is_loopback_host(host):
        raise _refuse(f"connection to non-loopback address {address!r} refused by the test network guard")


def install_network_guard() -> None:
    if getattr(socket.socket.connect, "_egis_guard", False):
        return
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        _check_address(self.family, address)
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        _check_address(self.family, address)
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # Resolving a remote name already sends a packet to a DNS server; an IP
        # literal needs no lookup and meets the connect guard instead.
        if not (is_loopback_host(host) or _is_ip_literal(host)):
            raise _refuse(f"name lookup of {host!r} refused by the test network guard")
        return original_getaddrinfo(host, *args, **kwargs)

    connect._egis_guard = True  # type: ignore[attr-defined]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


# --- database --------------------------------------------------------------


def allow_only_database(name: str) -> None:
    """From now on, the only database tests may open is `name`."""
    global _allowed_database
    if not name.startswith("egis_test_"):
        raise _refuse(f"{name!r} is not an ephemeral test database name")
    _allowed_database = name


@contextlib.contextmanager
def admin_access() -> Iterator[None]:
    """For the fixture itself: create and drop the ephemeral database."""
    token = _admin_access.set(True)
    try:
        yield
    finally:
        _admin_access.reset(token)


def _database_of(dsn: str | None, kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("database"):
        return kwargs["database"]
    if dsn:
        return urlsplit(dsn).path.lstrip("/") or None
    return None


def check_database(database: str | None) -> None:
    if _admin_access.get():
        return
    if _allowed_database is None or database != _allowed_database:
        raise _refuse(
            f"database {database!r} is not the ephemeral test database {_allowed_database!r}; "
            "tests may only use the database their fixture created"
        )


def install_database_guard() -> None:
    if getattr(asyncpg.connection.connect, "_egis_guard", False):
        return
    original = asyncpg.connection.connect

    async def connect(dsn: str | None = None, *args: Any, **kwargs: Any) -> Any:
        check_database(_database_of(dsn, kwargs))
        return await original(dsn, *args, **kwargs)

    connect._egis_guard = True  # type: ignore[attr-defined]
    asyncpg.connection.connect = connect  # the pool looks it up here
    asyncpg.connect = connect  # SQLAlchemy's dialect looks it up here
