"""The deadline on a request's body (POSTERR_BODY_TIMEOUT): the whole body must arrive within it,
counted from the end of the request's headers, however slowly the client sends.

gunicorn reads a body from the connection's socket one recv at a time, and a socket timeout bounds
each recv, not their sum: a client sending a byte a second kept a thread for as long as it liked,
and past POSTERR_REQUEST_TIMEOUT the watchdog (posterr/watchdog.py) replaced the worker, with every
other request it was serving. So while a request is served (gunicorn's pre_request and post_request
hooks, posterr/gunicorn_conf.py), gunicorn's reader sees the socket through a DeadlineSocket, whose
every recv waits only for what is left of the deadline. Past it, a recv raises BodyTimeout (json_body
answers 408) and marks the request to be answered with `Connection: close`: the rest of the body is
unread, so the connection cannot carry another request.
"""

from __future__ import annotations

import time

from gunicorn.http.unreader import SocketUnreader


class BodyTimeout(TimeoutError):
    """The request's body did not arrive within its deadline."""

    def __init__(self, seconds: float):
        super().__init__(f"the request body did not arrive within {seconds:g} s")
        self.seconds = seconds


class DeadlineSocket:
    """A connection's socket whose every recv ends by one deadline; anything else goes to the socket."""

    def __init__(self, sock, seconds: float, request):
        self.sock, self.seconds, self.request = sock, seconds, request
        self.deadline = time.monotonic() + seconds

    def recv(self, size: int) -> bytes:
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

    def _expired(self) -> BodyTimeout:
        self.request.must_close = True  # gunicorn then answers `Connection: close`, and closes
        return BodyTimeout(self.seconds)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def start(request, seconds: float) -> None:
    """Bound the body of this gunicorn request (an HTTP/1 request read from a socket; others are left
    as they are)."""
    unreader = getattr(request, "unreader", None)
    if isinstance(unreader, SocketUnreader) and not isinstance(unreader.sock, DeadlineSocket):
        unreader.sock = DeadlineSocket(unreader.sock, seconds, request)


def end(request) -> None:
    """The socket as it was: what gunicorn reads next (the next request's headers) is not a body."""
    unreader = getattr(request, "unreader", None)
    if isinstance(getattr(unreader, "sock", None), DeadlineSocket):
        unreader.sock = unreader.sock.sock
