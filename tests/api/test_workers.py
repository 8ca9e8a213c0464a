"""`tierserve serve --workers N`: a listening socket per worker (SO_REUSEPORT), so that a client's
keep-alive connections spread over the workers, and a worker over its share of them closes some until
the split is even; the supervisor replaces a dead worker and its socket.
Real processes on loopback; sockets seen from outside with psutil."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import psutil
import pytest

from tests.conftest import TIERSERVE, Collection, ServeProcess, serve_process

#: Enough connections that all of them hashing to one of two workers (p = 2**-31) means no spreading.
CONNECTIONS = 32


def port_of(served: ServeProcess) -> int:
    return int(served.base.rsplit(":", 1)[1])


def workers(served: ServeProcess) -> list[psutil.Process]:
    """The serving workers: the children that have a TCP socket on the port (one exiting is skipped)."""
    found = []
    for child in psutil.Process(served.process.pid).children():
        try:
            if any(conn.laddr and conn.laddr.port == port_of(served) for conn in child.net_connections("tcp")):
                found.append(child)
        except psutil.NoSuchProcess:  # ZombieProcess included
            continue
    return found


def listening(process: psutil.Process, port: int) -> list[int]:
    """The file descriptors of `process`'s sockets listening on `port`."""
    return [
        conn.fd
        for conn in process.net_connections("tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    ]


def listening_workers(served: ServeProcess, count: int = 2, dead: int | None = None) -> list[psutil.Process]:
    """The `count` workers other than `dead` once each listens on the port (a healthy server may answer
    from one worker while the other still starts); fails after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        serving = [w for w in workers(served) if w.pid != dead and listening(w, port_of(served))]
        if len(serving) == count:
            return serving
        assert time.monotonic() < deadline, f"{len(serving)} of {count} workers listen"
        time.sleep(0.2)


def open_connections(port: int, count: int) -> Iterator[socket.socket]:
    """`count` keep-alive connections, each after one answered request (so a worker has accepted it)."""
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 "), "no answer"
        yield sock


def connections_per_worker(served: ServeProcess) -> Counter[int]:
    """Established client connections to the port, by worker pid."""
    return Counter(
        worker.pid
        for worker in workers(served)
        for conn in worker.net_connections("tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port_of(served)
    )


def test_each_worker_listens_on_its_own_socket_and_connections_spread(collection: Collection, tmp_path: Path) -> None:
    """The kernel's hash alone (rebalancing off: it would close some of these connections)."""
    with (
        serve_process(collection, tmp_path, "--workers", "2", TIERSERVE_REBALANCE_CONNECTIONS="false") as served,
        ExitStack() as stack,
    ):
        port = port_of(served)
        assert listening(psutil.Process(served.process.pid), port) == []  # the parent only holds the address
        assert all(len(listening(worker, port)) == 1 for worker in listening_workers(served))
        for sock in open_connections(port, CONNECTIONS):
            stack.callback(sock.close)
        spread = connections_per_worker(served)
    assert sum(spread.values()) == CONNECTIONS and len(spread) == 2, spread


def test_one_shared_socket_when_reuse_port_is_off(collection: Collection, tmp_path: Path) -> None:
    with serve_process(collection, tmp_path, "--workers", "2", TIERSERVE_REUSE_PORT="false") as served:
        port = port_of(served)
        assert len(listening(psutil.Process(served.process.pid), port)) == 1  # inherited by the workers
        with ExitStack() as stack:
            for sock in open_connections(port, 4):
                stack.callback(sock.close)


def test_a_killed_worker_is_replaced_with_its_socket(collection: Collection, tmp_path: Path) -> None:
    with serve_process(collection, tmp_path, "--workers", "2") as served, ExitStack() as stack:
        port = port_of(served)
        killed = listening_workers(served)[0]
        killed.kill()
        killed.wait(timeout=10)
        listening_workers(served, dead=killed.pid)  # the supervisor's replacement, with its own socket
        for sock in open_connections(port, CONNECTIONS):  # none lands on the dead worker's socket
            stack.callback(sock.close)
        spread = connections_per_worker(served)
    assert killed.pid not in spread and len(spread) == 2, spread


class KeepAliveClients:
    """Keep-alive HTTP connections over `sockets` (connected to `port`); http.client reconnects one that
    the server closed."""

    def __init__(self, port: int, sockets: list[socket.socket]) -> None:
        self.connections = []
        for sock in sockets:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.sock = sock
            self.connections.append(connection)

    def round(self) -> int:
        """A request on each connection; the number of answers that closed their connection."""
        closed = 0
        for connection in self.connections:
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read()
            closed += answer.getheader("connection") == "close"
        return closed

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


def connections_to(served: ServeProcess, worker: psutil.Process, count: int) -> list[socket.socket]:
    """`count` connections that the kernel hashed to `worker` (the others are made and dropped)."""
    kept: list[socket.socket] = []
    while len(kept) < count:
        sock = socket.create_connection(("127.0.0.1", port_of(served)), timeout=10)
        client_port = sock.getsockname()[1]
        deadline = time.monotonic() + 10
        while (owner := _owner(served, client_port)) is None:
            assert time.monotonic() < deadline, "no worker took the connection"
            time.sleep(0.01)
        if owner == worker.pid:
            kept.append(sock)
        else:
            sock.close()
    return kept


def _owner(served: ServeProcess, client_port: int) -> int | None:
    for worker in workers(served):
        for conn in worker.net_connections("tcp"):
            if conn.status == psutil.CONN_ESTABLISHED and conn.raddr and conn.raddr.port == client_port:
                return worker.pid
    return None


def settle(served: ServeProcess, crowded: psutil.Process) -> tuple[Counter[int], list[int]]:
    """8 keep-alive connections all hashed to `crowded`, one request each per round until 3 rounds in
    a row close none (at most 200): the final split over the workers, and the closes of each round."""
    with closing(KeepAliveClients(port_of(served), connections_to(served, crowded, 8))) as clients:
        assert connections_per_worker(served) == {crowded.pid: 8}
        closes = [clients.round()]
        while len(closes) < 200 and (len(closes) < 3 or any(closes[-3:])):
            closes.append(clients.round())
        return connections_per_worker(served), closes


def test_a_worker_over_its_share_closes_connections_until_the_split_is_even(
    collection: Collection, tmp_path: Path
) -> None:
    """8 keep-alive connections all hashed to one of 2 workers: it answers with `connection: close`
    until the reconnections hash to 4 and 4, then no answer closes its connection."""
    with serve_process(collection, tmp_path, "--workers", "2") as served:
        spread, closes = settle(served, listening_workers(served)[0])
    assert sorted(spread.values()) == [4, 4], (spread, closes)
    assert sum(closes) >= 4 and len(closes) < 200, closes


def test_workers_replaced_by_sighup_leave_the_share(collection: Collection, tmp_path: Path) -> None:
    """SIGHUP replaces the workers one by one (a new one starts before the old one stops): the stopped
    workers must leave the table, else 2 live workers of 3 counted could never meet a share of
    ceil(8 / 3) and would close connections forever."""
    with serve_process(collection, tmp_path, "--workers", "2") as served:
        old = {worker.pid for worker in listening_workers(served)}
        served.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while not (new := listening_workers(served)) or {worker.pid for worker in new} & old:
            assert time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.2)
        spread, closes = settle(served, new[0])
    assert sorted(spread.values()) == [4, 4], (spread, closes)
    assert len(closes) < 200, closes


@pytest.mark.parametrize("workers_given", ["1", "2"])
def test_an_address_in_use_stops_the_server_with_the_reason(collection: Collection, workers_given: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "TIERSERVE_DATA_DIR": str(collection.settings.data_dir),
            "TIERSERVE_DATABASE_URL": collection.settings.resolved_database_url,
            "TIERSERVE_PORT": str(port),
        }
        done = subprocess.run(
            [*TIERSERVE, "serve", "--workers", workers_given], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 3, done.stderr
    assert "address already in use" in done.stderr.lower(), done.stderr
