"""Which gunicorn worker answered, read from the kernel rather than from what the app says.

A keep-alive connection is served by the one worker process that accepted it, so a test that claims
something about "every worker" must spread its requests over fresh connections and check that more
than one worker answered. The app's log lines carry the worker's pid, but a test of the logs cannot
take its witness from them (test_observability checks that the two agree), so the worker is found
the way `ss -p` finds it: the server side of the test's TCP connection (sock_diag, or /proc/net/tcp)
is a socket inode that exactly one process (the accepting worker) has among its open files.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests


def _hex_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def _inode_by_netlink(local: tuple, remote: tuple) -> int | None:
    """The inode of the TCP socket local -> remote, asked of the kernel (sock_diag, as `ss` does):
    one exact lookup, where /proc/net/tcp lists every socket, TIME_WAIT ones included."""
    sockid = (struct.pack("!HH", local[1], remote[1]) + socket.inet_aton(local[0]) + bytes(12)
              + socket.inet_aton(remote[0]) + bytes(12) + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF))
    request = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), 20, 1, 1, 0)  # SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4) as netlink:  # NETLINK_SOCK_DIAG
        netlink.settimeout(5)
        netlink.sendto(header + request, (0, 0))
        answer = netlink.recv(65536)
    if struct.unpack_from("=H", answer, 4)[0] == 2:  # NLMSG_ERROR: no such socket, or no sock_diag
        return None
    return struct.unpack_from("=I", answer, 16 + 68)[0] or None  # inet_diag_msg.idiag_inode


def _inode_by_proc(local: tuple, remote: tuple) -> int | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if _hex_port(fields[1]) == local[1] and _hex_port(fields[2]) == remote[1] and int(fields[9]):
            return int(fields[9])
    return None


def _server_socket_inode(server: tuple, client: tuple) -> int | None:
    """The inode of the server's end of the loopback connection client -> server."""
    try:
        found = _inode_by_netlink(server, client)
    except OSError:
        found = None
    return found or _inode_by_proc(server, client)


# Processes that held a connection to a port before: looked at first (a full scan of /proc is slow).
_KNOWN_OWNERS: dict[int, set[int]] = {}


def _owners(inode: int, pids) -> set[int]:
    target = f"socket:[{inode}]"
    owners = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                if os.readlink(fd) == target:
                    owners.add(pid)
                    break
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return owners


def _all_pids() -> list[int]:
    return [int(proc.name) for proc in Path("/proc").iterdir() if proc.name.isdigit() and int(proc.name) != os.getpid()]


def serving_process(response: requests.Response) -> int:
    """The pid of the process holding the server end of the (still open) connection that carried
    `response`, which must have been sent with stream=True and not yet read."""
    sock = response.raw.connection.sock
    client, server = sock.getsockname()[:2], sock.getpeername()[:2]
    inode = _server_socket_inode(server, client)
    assert inode is not None, f"no server socket for the connection {client} -> {server}"
    known = _KNOWN_OWNERS.setdefault(server[1], set())
    owners = _owners(inode, known) or _owners(inode, _all_pids())
    assert len(owners) == 1, f"the connection's server socket is held by {owners or 'no process'}"
    known |= owners
    return next(iter(owners))


def fresh_request(method: str, url: str, **kwargs) -> tuple[requests.Response, int]:
    """One request on a connection of its own; the response (body read) and the pid that served it."""
    with requests.Session() as session:
        response = session.request(method, url, stream=True, timeout=kwargs.pop("timeout", 15), **kwargs)
        try:
            pid = serving_process(response)
        finally:
            response.content  # noqa: B018 (reads the body, then the connection is closed)
    return response, pid


def until_several_workers(send, at_least: int = 2, attempts: int = 200, at_once: int = 4
                         ) -> list[tuple[requests.Response, int]]:
    """Calls send() (which returns fresh_request's pair) until `at_least` distinct processes have
    answered, `at_once` calls at a time (see sessions_on_several_workers: one by one, the worker just
    awake wins every accept); fails if `attempts` fresh connections all went to fewer. Every answer
    is returned, so the caller knows how many requests were sent."""
    answers: list[tuple[requests.Response, int]] = []
    with ThreadPoolExecutor(at_once) as pool:
        while len(answers) < attempts:
            answers += pool.map(lambda _: send(), range(at_once))
            if len(distinct(answers)) >= at_least:
                return answers
    raise AssertionError(f"{len(answers)} fresh connections were all served by {distinct(answers)}")


def distinct(answers: Iterable[tuple[requests.Response, int]]) -> set[int]:
    return {pid for _, pid in answers}


def sessions_on_several_workers(base: str, count: int, at_most_per_worker: int | None = None,
                                attempts: int = 400) -> list[requests.Session]:
    """`count` sessions, each holding an open keep-alive connection to the app (so a later request
    goes out at once, with no connect), together served by at least two worker processes, and by
    each at most `at_most_per_worker` (say, its thread count, when all requests must run at once).
    The connections are opened `count` at a time: one by one, the worker that has just accepted and
    is awake wins every race to accept the next (seen: 400 in a row), so a worker asleep in its
    poll may never get one. The caller closes them."""
    cap = at_most_per_worker or count - 1
    kept: list[tuple[requests.Session, int]] = []
    with ThreadPoolExecutor(count) as pool:
        for _ in range(0, attempts, count):
            for session, pid in pool.map(lambda _: _session_and_worker(base), range(count)):
                if len(kept) < count and sum(1 for _, p in kept if p == pid) < cap:
                    kept.append((session, pid))
                else:
                    session.close()
            if len(kept) == count:
                return [s for s, _ in kept]
    for session, _ in kept:
        session.close()
    raise AssertionError(f"{attempts} connections to {base} did not give {count} spread over several workers "
                         f"(at most {cap} each): {sorted(p for _, p in kept)}")


def _session_and_worker(base: str) -> tuple[requests.Session, int]:
    session = requests.Session()
    response = session.get(f"{base}/healthz", stream=True, timeout=15)
    pid = serving_process(response)
    assert response.content and response.status_code == 200
    return session, pid
