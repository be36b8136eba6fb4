"""A client's deadlines bound the whole read of the headers, and of the body, not each recv
(gunicorn's own parser and body reader, over a socket pair)."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.errors import NoMoreData
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader

from posterr.client_deadlines import BodyTimeout, DeadlineSocket, HeaderTimeout


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    with server, client:
        yield DeadlineSocket(server), client


@pytest.fixture
def trickle():
    """trickle(sock, piece): send `piece` every 20 ms (no single recv waits long) until the test ends."""
    stop, senders = threading.Event(), []

    def start(sock, piece: bytes):
        def send():
            while not stop.wait(0.02):
                try:
                    sock.send(piece)
                except OSError:
                    return
        senders.append(threading.Thread(target=send))
        senders[-1].start()

    yield start
    stop.set()
    for sender in senders:
        sender.join()


def timed(call) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_a_trickled_body_ends_at_the_deadline_and_the_request_must_close(pair, trickle):
    sock, client = pair
    request = SimpleNamespace(must_close=False)
    sock.expect_body(0.3, request)
    trickle(client, b" ")

    def read():
        with pytest.raises(BodyTimeout, match="did not arrive within 0.3 s"):
            Body(LengthReader(SocketUnreader(sock), 1000)).read(1000)

    assert 0.25 < timed(read) < 1.0
    assert request.must_close
    assert sock.sock.gettimeout() is None  # blocking again, for the answer


def test_trickled_headers_end_at_their_deadline_as_a_client_gone(pair, trickle):
    sock, client = pair
    sock.expect_headers(0.3)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    trickle(client, b"X")

    def parse():
        with pytest.raises(HeaderTimeout) as caught:
            next(RequestParser(Config(), sock, ("127.0.0.1", 1)))
        assert isinstance(caught.value, NoMoreData) and isinstance(caught.value, OSError)

    assert 0.25 < timed(parse) < 1.0


def test_the_headers_clock_starts_at_their_first_read(pair):
    sock, client = pair
    sock.expect_headers(0.2)
    time.sleep(0.3)  # a kept-alive connection waiting for its next request (the scenario, not a wait)
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert next(RequestParser(Config(), sock, ("127.0.0.1", 1))).path == "/"


def test_in_time_the_reads_are_the_sockets_and_after_done_there_is_no_deadline(pair):
    sock, client = pair
    request = SimpleNamespace(must_close=False)
    sock.expect_body(5, request)
    client.sendall(b'{"a": 1}')
    assert Body(LengthReader(SocketUnreader(sock), 8)).read() == b'{"a": 1}'
    sock.done()
    sock.settimeout(0.1)  # gunicorn's own bounded drain after the answer sets its timeouts itself
    with pytest.raises(TimeoutError) as caught:
        sock.recv(10)
    assert not isinstance(caught.value, BodyTimeout) and not request.must_close


def test_a_silent_client_gets_no_more_than_the_deadline_and_then_fails_at_once(pair):
    sock, _ = pair
    sock.expect_body(0.2, SimpleNamespace(must_close=False))
    assert 0.15 < timed(lambda: pytest.raises(BodyTimeout, sock.recv, 10)) < 1.0
    assert timed(lambda: pytest.raises(BodyTimeout, sock.recv, 10)) < 0.05
