"""How `tierserve serve` runs its worker processes: uvicorn's supervisor, and a listening socket per worker.

With one shared listening socket, the worker whose event loop wakes first accepts every connection
waiting (uvicorn accepts in a loop), so a client that opens its keep-alive connections together lands
on one worker while the others idle (`bench.soak`: 32 of 32 connections on one of two workers). With
`reuse_port`, each worker binds its own socket to the same address with SO_REUSEPORT and the kernel
hashes each new connection to one of them (Linux >= 3.9: the sockets must belong to the same user).
The supervisor stays uvicorn's (`Multiprocess`: health checks, restarts of dead workers, SIGHUP, TTIN
and TTOU): the socket it hands to each worker is a `ReusePortListener`, which the parent only binds
(so the address is taken and a port 0 chosen once) and which each worker re-creates as its own
listening socket when it unpickles it, joining the supervisor's table of open connections with
`rebalance` (`api.balance`: a worker over its share closes connections so that they are hashed again).
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from tierserve.api import balance

logger = logging.getLogger("uvicorn.error")


class ReusePortListener(socket.socket):
    """A TCP socket bound with SO_REUSEPORT that pickles as "bind a new one at this address".

    In the parent it holds the address and never listens (so it takes no connections); each worker
    process gets its own bound socket at the same address, on which uvicorn listens, and joins the
    listener's `connections` table when there is one.
    """

    connections: balance.ConnectionTable | None = None

    @classmethod
    def reserve(cls, host: str, port: int, connections: balance.ConnectionTable | None) -> ReusePortListener:
        """Bind `host`:`port` (0: a free port) for the workers; OSError when the address is taken."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = cls(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            _allow_reuse(listener)
            listener.bind((host, port))
        except OSError:
            listener.close()
            raise
        listener.connections = connections
        return listener

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bound_socket, (self.family, self.getsockname(), self.connections))


def _allow_reuse(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def _bound_socket(
    family: socket.AddressFamily, address: tuple[Any, ...], connections: balance.ConnectionTable | None
) -> socket.socket:
    """A worker's own socket at the parent's `address` (uvicorn listens on it); joins `connections`."""
    if connections is not None:
        balance.current = connections.join()
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    _allow_reuse(sock)
    sock.bind(address)
    return sock


def run(config: uvicorn.Config, reuse_port: bool, rebalance: bool) -> None:
    """Serve `config` (an app import string when `config.workers` > 1) until SIGINT or SIGTERM.

    One worker: in this process. Several: uvicorn's supervisor over one shared socket, or a socket per
    worker with `reuse_port` on Linux (elsewhere SO_REUSEPORT does not balance: the shared socket), their
    connections rebalanced with `rebalance`. Exits with uvicorn's startup-failure status when the address
    cannot be bound.
    """
    if config.workers <= 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:  # the app's startup failed (uvicorn logged why)
            raise SystemExit(STARTUP_FAILURE)
        return
    if not (reuse_port and sys.platform == "linux"):  # BSD and macOS do not spread connections over them
        sock = config.bind_socket()
    else:
        try:
            # slots for workers added later with SIGTTIN; one beyond them serves without rebalancing
            table = balance.ConnectionTable(2 * config.workers) if rebalance else None
            sock = ReusePortListener.reserve(config.host, config.port, table)
        except OSError as exc:
            logger.error(exc)
            raise SystemExit(STARTUP_FAILURE) from exc
        host, port = sock.getsockname()[:2]
        logger.info("Uvicorn running on http://%s:%d, a socket per worker (Press CTRL+C to quit)", host, port)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
