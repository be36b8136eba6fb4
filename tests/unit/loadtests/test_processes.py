"""loadtests/processes.py: a process group is not taken for gone while a thread of it still runs and
holds its listening socket (as happens while a killed multi-threaded server's threads exit after its
main thread)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from loadtests.processes import group_alive, live_children

# A server whose main thread ends (pthread_exit: a zombie in /proc/PID/stat) while another thread
# lives on with the process's files, its listening socket among them.
SERVER = """
import ctypes, socket, threading, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
threading.Thread(target=time.sleep, args=(60,)).start()
print(listener.getsockname()[1], flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def main_thread_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def listens(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def until(condition, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # polling /proc


def test_a_group_whose_main_thread_is_a_zombie_is_alive_while_another_thread_runs():
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        port = int(server.stdout.readline())
        until(lambda: main_thread_state(server.pid) == "Z", "the main thread to end")
        assert listens(port) and group_alive(server.pid)
        os.killpg(server.pid, signal.SIGKILL)
        until(lambda: not group_alive(server.pid), "the killed group to be gone")
        assert not listens(port)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.stdout.close()
        server.wait(timeout=10)


def test_the_children_of_a_process_are_those_with_a_live_thread():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert child.pid in live_children(os.getpid())
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.pid not in live_children(os.getpid())
