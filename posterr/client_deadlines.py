"""How long a client may take to send its request: the headers within POSTERR_HEADER_TIMEOUT of their
first byte, then the whole body within POSTERR_BODY_TIMEOUT of the end of the headers, however slowly
either is sent.

gunicorn reads a request from the connection's socket one recv at a time, and a socket timeout bounds
each recv, not their sum. A client sending a byte a second held a thread for as long as it liked: a
body past POSTERR_REQUEST_TIMEOUT got the worker replaced by the watchdog (posterr/watchdog.py), with
every request it was serving, and POSTERR_THREADS clients sending their headers slowly held every
thread of a worker, which then answered no one (gunicorn's heartbeat, from the worker's main loop,
kept beating). So each connection's socket is a DeadlineSocket (posterr/gunicorn_worker.py), whose
every recv waits only for what is left of the current deadline. Past the headers' deadline the
connection is closed (gunicorn's NoMoreData: a client gone); past the body's, a recv raises BodyTimeout,
which json_body answers 408, and the request is marked to be answered with `Connection: close` (the
rest of the body is unread, so the connection cannot carry another request).
"""

from __future__ import annotations

import time

from gunicorn.http.errors import NoMoreData


class BodyTimeout(TimeoutError):
    """The request's body did not arrive within its deadline."""

    def __init__(self, seconds: float):
        super().__init__(f"the request body did not arrive within {seconds:g} s")
        self.seconds = seconds


class HeaderTimeout(NoMoreData):
    """The request's headers did not arrive within their deadline: gunicorn closes the connection, as
    for a client that went away (it is an OSError, so a graceful close stops reading at once too)."""

    def __str__(self) -> str:
        return "the request headers did not arrive in time"


class DeadlineSocket:
    """A connection's socket whose reads end by the current phase's deadline, if any; anything else
    goes to the socket. One thread at a time serves a connection, so the phases need no lock."""

    def __init__(self, sock):
        self.sock = sock
        self.deadline: float | None = None
        self.headers_seconds: float | None = None  # the headers' deadline starts at their first read
        self.body_seconds = 0.0
        self.request = None  # the gunicorn request whose body is read (to mark it must_close)

    def expect_headers(self, seconds: float) -> None:
        """The next request's headers: `seconds` from the first read (a kept-alive connection may
        wait in gunicorn's poller for its next request, at no thread's cost, for longer)."""
        self.deadline, self.headers_seconds, self.request = None, seconds, None

    def expect_body(self, seconds: float, request) -> None:
        """The headers are in: the body must be, `seconds` from now."""
        self.deadline, self.headers_seconds = time.monotonic() + seconds, None
        self.body_seconds, self.request = seconds, request

    def done(self) -> None:
        """No deadline: gunicorn bounds what it reads after the answer (the rest of a body) itself."""
        self.deadline, self.headers_seconds, self.request = None, None, None

    def recv(self, size: int) -> bytes:
        if self.headers_seconds is not None:
            self.deadline, self.headers_seconds = time.monotonic() + self.headers_seconds, None
        if self.deadline is None:
            return self.sock.recv(size)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._expired()
        previous = self.sock.gettimeout()
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(size)
        except TimeoutError:
            raise self._expired() from None
        finally:
            self.sock.settimeout(previous)  # gunicorn writes the answer on this socket, blocking

    def _expired(self) -> OSError:
        if self.request is None:
            return HeaderTimeout()
        self.request.must_close = True  # gunicorn then answers `Connection: close`, and closes
        return BodyTimeout(self.body_seconds)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)
