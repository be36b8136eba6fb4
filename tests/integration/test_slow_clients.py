"""Issue 37, finding 2: a client sending its body slowly gets an answer within POSTERR_BODY_TIMEOUT,
and cannot end the worker (before, a trickled body held its thread past POSTERR_REQUEST_TIMEOUT,
and the watchdog replaced the worker with every request it was serving); clients sending their
headers slowly are let go after POSTERR_HEADER_TIMEOUT, so they cannot hold every thread of a worker
(before, POSTERR_THREADS of them kept a worker from answering anyone for as long as they sent).

The slow clients pace their bytes with select() on their own socket: the wait between two bytes is
the scenario, and the same call notices the answer as soon as it comes."""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import DATA, log_records, running_app
from tests.integration.workers import fresh_request

BODY_TIMEOUT = 1.0
HEADER_TIMEOUT = 1.0
SLACK = 1.5  # a shared machine of two cores: time for the answer to be written and read
PACE = 0.1  # seconds between two bytes of a slow body
LOG = "gunicorn-slow-clients.log"
THREADS = 4
HEAD = "POST /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def slow_app(servers):
    # One worker, so that "the same worker" is "the same pid"; a request timeout of 3 s so that,
    # without the body's deadline, the watchdog's verdict comes quickly; a rate limit, to see that
    # the refusal goes through the edge like any other answer.
    with running_app(servers, LOG, WEB_CONCURRENCY="1", POSTERR_THREADS=str(THREADS), POSTERR_RATE_LIMIT="1000/minute",
                     POSTERR_BODY_TIMEOUT=str(BODY_TIMEOUT), POSTERR_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
                     POSTERR_REQUEST_TIMEOUT="3") as base:
        yield base


def trickle(base: str, head: bytes, piece: bytes, started: threading.Event) -> tuple[bytes, float]:
    """Send `head`, then `piece` every PACE seconds until the server answers or closes; the answer
    (read until the server closes the connection, or empty) and the seconds it took to come."""
    port = int(base.rsplit(":", 1)[1])
    give_up = BODY_TIMEOUT + SLACK + 5  # past this, no answer is coming: the test says so below
    with socket.create_connection(("127.0.0.1", port), timeout=give_up) as sock:
        sock.sendall(head)
        sent = time.monotonic()
        started.set()
        while time.monotonic() - sent < give_up:
            readable, _, _ = select.select([sock], [], [], PACE)
            if readable:
                break
            try:
                sock.sendall(piece)
            except OSError:
                break  # closed under us: what was answered, if anything, is read below
        took = time.monotonic() - sent
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass  # a reset, or no close within give_up: the assertions say what is missing
    return answer, took


def worker_pid(base: str) -> int:
    response, pid = fresh_request("GET", f"{base}/healthz", timeout=5)
    assert response.status_code == 200
    return pid


CASES = {
    # (head after the common lines, the piece sent at each step, the answer expected)
    "small body, by length": ("Content-Length: 1000\r\n\r\n{", b" ", 408),
    "chunked body": ("Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n", b"1\r\n \r\n", 408),
    # The finding's own case: over 64 KiB, so refused 413 from its header; the drain before that
    # answer (for the client to read it, not a reset) is bounded by the same deadline, as a whole.
    "oversized body, by length": ("Content-Length: 100000\r\n\r\n{", b" ", 413),
}


@pytest.mark.parametrize("case", CASES)
def test_a_trickled_body_is_answered_within_its_deadline_and_the_worker_lives(slow_app, case):
    rest_of_head, piece, status = CASES[case]
    log_start = (DATA / LOG).stat().st_size
    pid = worker_pid(slow_app)
    started = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        trickling = pool.submit(trickle, slow_app, (HEAD + rest_of_head).encode(), piece, started)
        assert started.wait(10)
        # Meanwhile, another connection is served (by the same, single, worker).
        assert worker_pid(slow_app) == pid
        assert not trickling.done(), "the slow body was answered before the other request"
        answer, took = trickling.result()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), (case, took, answer[:300])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/problem+json" in head
    for edge_header in (rb"^RateLimit: ", rb"^X-Request-ID: "):  # the edge answered it, like any other
        assert re.search(edge_header, head, re.MULTILINE | re.IGNORECASE), head
    # The rest of the body is unread: the connection cannot carry another request.
    assert re.search(rb"^Connection: close\r?$", head, re.MULTILINE | re.IGNORECASE), head
    assert BODY_TIMEOUT - 0.1 <= took <= BODY_TIMEOUT + SLACK, took
    assert f'"status":{status}'.encode() in body
    assert worker_pid(slow_app) == pid, "the worker was replaced"
    assert_worker_never_replaced(log_start)


def assert_worker_never_replaced(log_start: int) -> None:
    log = (DATA / LOG).read_bytes()[log_start:].decode(errors="replace")
    assert not re.search(r"request_timeout|exited|WORKER TIMEOUT", log), log[-2000:]


def test_a_body_timeout_is_logged_and_counted_like_any_answer(slow_app):
    def answered_408() -> float:
        found = re.search(r'^posterr_http_requests_total\{method="POST",route="/api/users",status="408"\} (\S+)$',
                          requests.get(f"{slow_app}/metrics", timeout=5).text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    before = answered_408()
    answer, _ = trickle(slow_app, (HEAD + "Content-Length: 10\r\n\r\n").encode(), b" ", threading.Event())
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert answered_408() == before + 1
    request_id = re.search(rb"X-Request-ID: (\S+)", answer, re.IGNORECASE).group(1).decode()
    [line] = [r for r in log_records(LOG, {request_id}) if r.get("logger") == "posterr.access"]
    assert line["status"] == 408 and line["route"] == "/api/users"


def test_clients_sending_their_headers_slowly_cannot_hold_every_thread(slow_app):
    """As many slow-header clients as the worker has threads (slowloris): each is let go within the
    headers' deadline, and another connection is answered meanwhile."""
    log_start = (DATA / LOG).stat().st_size
    pid = worker_pid(slow_app)
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    starts = [threading.Event() for _ in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        slow = [pool.submit(trickle, slow_app, head, b"X", started) for started in starts]
        assert all(started.wait(10) for started in starts)
        response, other_pid = fresh_request("GET", f"{slow_app}/healthz", timeout=HEADER_TIMEOUT + SLACK)
        assert response.status_code == 200 and other_pid == pid
        for future in slow:
            answer, took = future.result()
            assert answer == b"" and took <= HEADER_TIMEOUT + SLACK, (took, answer[:200])  # closed, unanswered
    assert worker_pid(slow_app) == pid
    assert_worker_never_replaced(log_start)
