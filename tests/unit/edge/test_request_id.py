"""Request ids (posterr/edge/request_id.py) and cache tokens come from Python's generator, which
must differ in every forked worker: gunicorn forks its workers from one master."""

from __future__ import annotations

import os
import random


def test_a_forked_worker_draws_other_numbers_than_its_parent():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first draw, and leave at once
        os.write(write_end, f"{random.getrandbits(128):032x}".encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != f"{random.getrandbits(128):032x}"
