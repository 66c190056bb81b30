"""Local TCP ports: is one free, and a free one (for the local servers, tests and benchmarks)."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def port_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on host:port (the servers bind with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
