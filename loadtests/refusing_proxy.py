"""A TCP proxy that can refuse: what a Redis behind a proxy, a Kubernetes Service with no ready
endpoint, or a firewall looks like to the app. While refusing, new connections are refused and the
open ones are cut, or (refuse_new) kept, as a Service whose endpoint went away keeps the flows it
had; the server behind it keeps every key (make soak's `redis-refuse` and `redis-refuse-new`, and
the tests of posterr/redis_client.py's mechanism 3)."""

from __future__ import annotations

import socket
import threading


class RefusingProxy:
    def __init__(self, port: int, target: tuple[str, int]):
        self.port = port
        self.target = target
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._client_ports: dict[socket.socket, int] = {}  # an accepted socket -> the client's port

    @property
    def refusing(self) -> bool:
        return self._listener is None

    def resume(self) -> None:
        """Accept connections (again)."""
        listener = socket.create_server(("127.0.0.1", self.port))
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="proxy-accept", daemon=True).start()

    def refuse(self) -> None:
        """Refuse new connections and cut the open ones; the server behind is left as it is."""
        self.refuse_new()
        with self._lock:
            cut, self._open = self._open, set()
        for sock in cut:
            _close(sock)

    stop = refuse

    def refuse_new(self) -> None:
        """Refuse new connections; the open ones go on."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown first: a bare close() leaves the socket listening while the accept thread is
            # blocked in accept() on it, and a resume() then finds the port taken.
            _close(listener)

    def client_ports(self) -> list[int]:
        """The client's ports of the open connections."""
        with self._lock:
            return list(self._client_ports.values())

    def cut(self, client_ports: set[int]) -> int:
        """Cut the open connections that came from these ports of the client's; how many."""
        with self._lock:
            chosen = [sock for sock, port in self._client_ports.items() if port in client_ports]
        for sock in chosen:
            _close(sock)  # its pipe then closes the server's side
        return len(chosen)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, (_, client_port) = listener.accept()
            except OSError:  # closed by refuse()
                return
            try:
                server = socket.create_connection(self.target, timeout=2)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # refused meanwhile
                    _close(client)
                    _close(server)
                    return
                self._open.update((client, server))
                self._client_ports[client] = client_port
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), name="proxy-pipe", daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((source, sink))
                for sock in (source, sink):
                    self._client_ports.pop(sock, None)
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def main(argv: list[str] | None = None) -> None:
    """python -m loadtests.refusing_proxy PORT HOST:PORT: proxies until SIGTERM; SIGUSR1 refuses,
    SIGHUP refuses new connections and cuts every other open one (one worker's connections killed,
    the others' kept), SIGUSR2 accepts again (make soak runs it as a process of its own, out of
    Locust's gevent)."""
    import signal
    import sys

    port, target = (argv or sys.argv[1:])[:2]
    host, _, target_port = target.rpartition(":")
    proxy = RefusingProxy(int(port), (host, int(target_port)))
    signal.signal(signal.SIGUSR1, lambda *_: proxy.refuse())
    signal.signal(signal.SIGHUP, lambda *_: (proxy.refuse_new(), proxy.cut(set(sorted(proxy.client_ports())[::2]))))
    signal.signal(signal.SIGUSR2, lambda *_: proxy.resume() if proxy.refusing else None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    proxy.resume()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
