"""loadtests/refusing_proxy.py: refusing means refused at once, and accepting again always works (the
soak's proxy died once, its port still taken by a listener closed under a blocked accept())."""

from __future__ import annotations

import socket

import pytest

from loadtests.refusing_proxy import RefusingProxy
from tests.cluster.conftest import wait_for
from tests.conftest import _free_port


@pytest.fixture
def echo_server():
    """A server behind the proxy that sends back what it gets, one connection at a time."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def through(proxy: RefusingProxy, server: socket.socket) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as client:
        accepted, _ = server.accept()
        with accepted:
            client.sendall(b"ping")
            accepted.sendall(accepted.recv(4))
            return client.recv(4)


@pytest.mark.parametrize("refuse", ["refuse", "refuse_new"])
def test_a_refusing_proxy_refuses_every_new_connection_and_accepts_again_on_resume(echo_server, refuse):
    proxy = RefusingProxy(_free_port(), echo_server.getsockname())
    proxy.resume()
    try:
        for _ in range(20):
            getattr(proxy, refuse)()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
            proxy.resume()
            assert through(proxy, echo_server) == b"ping"
    finally:
        proxy.stop()


def test_refuse_new_keeps_the_open_connections_and_cut_ends_the_chosen_ones(echo_server):
    proxy = RefusingProxy(_free_port(), echo_server.getsockname())
    proxy.resume()
    try:
        kept, cut = (socket.create_connection(("127.0.0.1", proxy.port), timeout=2) for _ in range(2))
        servers = [echo_server.accept()[0] for _ in range(2)]
        # The proxy files a connection once its own to the server is made: after the server accepts it.
        wait_for(lambda: len(proxy.client_ports()) == 2, 5, "the proxy to file both connections")
        proxy.refuse_new()
        assert proxy.cut({cut.getsockname()[1]}) == 1
        assert cut.recv(4) == b""  # closed by the proxy
        kept.sendall(b"ping")
        assert b"ping" in {server.recv(4) for server in servers}
        for sock in (kept, cut, *servers):
            sock.close()
    finally:
        proxy.stop()
