"""The body's deadline bounds the whole read, not each recv (gunicorn's own reader, over a socket pair)."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import IterUnreader, SocketUnreader

from posterr import body_deadline
from posterr.body_deadline import BodyTimeout, DeadlineSocket


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    with server, client:
        yield server, client


def request_on(sock) -> SimpleNamespace:
    """What body_deadline uses of a gunicorn request: its unreader and must_close."""
    return SimpleNamespace(unreader=SocketUnreader(sock), must_close=False)


def test_a_trickled_body_ends_at_the_deadline_though_every_recv_gets_a_byte(pair):
    server, client = pair
    request = request_on(server)
    body_deadline.start(request, 0.3)
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.02):  # a byte every 20 ms: no single recv waits long
            client.send(b" ")

    sender = threading.Thread(target=trickle)
    sender.start()
    started = time.monotonic()
    try:
        with pytest.raises(BodyTimeout, match="did not arrive within 0.3 s"):
            Body(LengthReader(request.unreader, 1000)).read(1000)
    finally:
        stop.set()
        sender.join()
    assert 0.25 < time.monotonic() - started < 1.0
    assert request.must_close
    assert server.gettimeout() is None  # blocking again, for the answer


def test_a_body_that_arrives_in_time_is_read_and_the_socket_given_back(pair):
    server, client = pair
    request = request_on(server)
    body_deadline.start(request, 5)
    body_deadline.start(request, 5)  # once per request: not wrapped twice
    assert isinstance(request.unreader.sock, DeadlineSocket) and request.unreader.sock.sock is server
    client.sendall(b'{"a": 1}')
    assert Body(LengthReader(request.unreader, 8)).read() == b'{"a": 1}'
    assert not request.must_close
    body_deadline.end(request)
    assert request.unreader.sock is server


def test_a_silent_client_gets_no_more_than_the_deadline(pair):
    server, _ = pair
    sock = DeadlineSocket(server, 0.2, SimpleNamespace(must_close=False))
    started = time.monotonic()
    with pytest.raises(BodyTimeout):
        sock.recv(10)
    assert 0.15 < time.monotonic() - started < 1.0
    with pytest.raises(BodyTimeout):
        sock.recv(10)  # past the deadline: at once


def test_requests_not_read_from_a_socket_are_left_alone():
    request = SimpleNamespace(unreader=IterUnreader([b"x"]), must_close=False)
    body_deadline.start(request, 1)
    body_deadline.end(request)
    assert not hasattr(request.unreader, "sock")
    body_deadline.start(SimpleNamespace(), 1)  # an HTTP/2 stream has no unreader
