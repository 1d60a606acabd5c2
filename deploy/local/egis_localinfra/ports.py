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
