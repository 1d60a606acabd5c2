"""Free TCP ports on loopback, for the local servers, the services and the benchmarks."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    # Hold every socket open until all ports are picked, so the ports are distinct.
    # Small race, inherent to the technique: another process may take a port before its server binds it.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on `port` on loopback now.

    With SO_REUSEADDR, as servers bind: connections of a server that died linger in TIME_WAIT
    on its port, and they must not keep it from coming back there.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
