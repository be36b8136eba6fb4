"""posterr/edge/request_id.py: the client's X-Request-ID when it is sane, else a new one, the same for
the whole request; new ones come from Python's generator, which must differ in every forked worker
(gunicorn forks its workers from one master)."""

from __future__ import annotations

import os

import bottle
import pytest

from posterr.edge.request_id import request_id


def request_id_of(headers: dict[str, str]) -> str:
    """request_id() in a request of its own (bottle.request is per thread: bound here, as Bottle binds it)."""
    bottle.request.bind({"REQUEST_METHOD": "GET", "PATH_INFO": "/", **headers})
    return request_id()


@pytest.mark.parametrize("given", ["abc-123", "a" * 128, "trace:1.2_3"])
def test_a_sane_request_id_is_kept(given):
    assert request_id_of({"HTTP_X_REQUEST_ID": given}) == given


@pytest.mark.parametrize("given", [None, "", "a" * 129, "bad id", "<script>", "a\nb"])
def test_any_other_is_replaced_by_a_new_one(given):
    headers = {} if given is None else {"HTTP_X_REQUEST_ID": given}
    new = request_id_of(headers)
    assert new != given and len(new) == 32 and int(new, 16) >= 0
    assert request_id_of(headers) != new  # each request its own


def test_a_request_keeps_its_id():
    first = request_id_of({})
    assert request_id() == first


def test_a_forked_worker_draws_other_ids_than_its_parent():
    """Both draw after the fork, from the state they share: a generator not seeded afresh in the
    child gives both the same id."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first id, and leave at once
        try:
            os.write(write_end, request_id_of({}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != request_id_of({})
