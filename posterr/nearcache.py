"""Copies of cached documents inside this process, dropped the moment Redis says their key changed.

This is Redis client-side caching done by hand (redis-py's own needs Redis 7.4): one connection of
our own asks for `CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX …` and subscribes to
`__redis__:invalidate`, so every change to a document key, by any client, arrives on it as a
message naming the key. A copy is served only after every message already on that connection has
been applied, and only while the connection is healthy: Redis queues the message while it runs
the writer's DEL, before the writer can answer its client, so a write answered anywhere is never
hidden by a copy here. Lost connection, flush or partial message: no copies until it is sorted.
"""

from __future__ import annotations

import select
import socket
import threading
import time


class _Incomplete(Exception):
    pass


def _command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _parse(buf: bytes, pos: int = 0):
    """One RESP2 value from buf[pos:] → (value, next position); _Incomplete if it is not all there."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, rest, pos = buf[pos:pos + 1], buf[pos + 1:end], end + 2
    if kind in (b"+", b":"):
        return (int(rest) if kind == b":" else rest), pos
    if kind == b"-":
        raise ConnectionError(rest.decode(errors="replace"))
    size = int(rest)
    if kind == b"$":
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return buf[pos:pos + size], pos + size + 2
    if kind == b"*":
        if size < 0:
            return None, pos
        items = []
        for _ in range(size):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    raise ConnectionError(f"unexpected reply from Redis: {kind!r}")


class _Listener:
    def __init__(self, address: tuple[str, int], password: str | None, username: str | None,
                 prefixes: list[str], timeout: float):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buf = b""
        try:
            if password:
                self._call(*(["AUTH", username, password] if username else ["AUTH", password]))
            client_id = self._call("CLIENT", "ID")
            tracking = ["CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST"]
            for prefix in prefixes:
                tracking += ["PREFIX", prefix]
            self._call(*tracking)
            self._call("SUBSCRIBE", "__redis__:invalidate")
        except BaseException:
            self.sock.close()
            raise
        self.sock.setblocking(False)

    def _call(self, *args):
        self.sock.sendall(_command(*args))
        while True:
            try:
                value, pos = _parse(self.buf)
            except _Incomplete:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("Redis closed the connection") from None
                self.buf += chunk
                continue
            self.buf = self.buf[pos:]
            return value

    def drain(self) -> list[list[bytes] | None]:
        """Every invalidation already received (None = everything). _Incomplete while a message
        is only partly here; ConnectionError when the connection is gone."""
        while select.select([self.sock], [], [], 0)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self.buf += chunk
        batches = []
        while self.buf:
            message, pos = _parse(self.buf)
            self.buf = self.buf[pos:]
            if isinstance(message, list) and message[:1] == [b"message"]:
                batches.append(message[2])
        return batches

    def close(self) -> None:
        self.sock.close()


class NearCache:
    MAX_KEYS = 10_000

    def __init__(self, connection_kwargs: dict, prefixes: list[str], *, timeout: float, retry_after: float):
        self._address = (connection_kwargs.get("host", "localhost"), int(connection_kwargs.get("port", 6379)))
        self._password = connection_kwargs.get("password")
        self._username = connection_kwargs.get("username")
        self._prefixes = prefixes
        self._timeout = timeout
        self._retry_after = retry_after
        self._entries: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()
        self._listener: _Listener | None = None
        self._retry_at = 0.0
        self._generation = 0  # bumped by every invalidation applied: a read older than it is not kept

    def lookup(self, key: str, field: str) -> tuple[bytes | None, int | None]:
        """(the copy or None, the generation to hand back to `keep`; None when copies are off)."""
        with self._lock:
            if not self._sync():
                return None, None
            entry = self._entries.get(key)
            return (entry.get(field) if entry else None), self._generation

    def keep(self, key: str, field: str, value: bytes, generation: int | None) -> None:
        """Keep a value just read from Redis, unless anything was invalidated since the lookup."""
        if generation is None:
            return
        with self._lock:
            if not self._sync() or generation != self._generation:
                return
            if len(self._entries) >= self.MAX_KEYS:
                self._entries.clear()
            self._entries.setdefault(key, {})[field] = value

    def _sync(self) -> bool:
        """Apply what the listener received; False when copies may not be trusted now (lock held)."""
        if self._listener is None and not self._connect():
            return False
        try:
            for keys in self._listener.drain():
                self._generation += 1
                if keys is None:
                    self._entries.clear()
                else:
                    for key in keys:
                        self._entries.pop(key.decode(), None)
            return True
        except _Incomplete:
            return False
        except (OSError, ConnectionError, ValueError):
            self._drop()
            return False

    def _connect(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            self._listener = _Listener(self._address, self._password, self._username, self._prefixes,
                                       self._timeout)
        except (OSError, ConnectionError, ValueError):
            self._drop()
            return False
        self._entries.clear()
        self._generation += 1
        return True

    def _drop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._listener = None
        self._entries.clear()
        self._generation += 1
        self._retry_at = time.monotonic() + self._retry_after
