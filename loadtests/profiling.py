"""`make bench BENCH_ARGS=--profile`: where each row's CPU goes, by py-spy.

After the measured rounds, each row runs once more under wrk while py-spy samples every gunicorn
worker (the sampling costs CPU, so these runs are never measured). A row's summary is the frames its
request threads were found in most often (self samples, by function), as a share of their samples:
what docs/performance.md's profile tables show. py-spy samples threads that are running, or blocked
in a call that py-spy does not recognise as idle, so time spent waiting for PostgreSQL or Redis in
a socket call shows up too: read a `recv_into` or `wait` line as "round trips", not as Python work.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from loadtests import harness

SAMPLES_PER_SECOND = 200


def ensure_py_spy(log_path: Path) -> str:
    """py-spy's path, installed from PyPI into this environment when missing (log: log_path)."""
    found = shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy")
    if Path(found).exists():
        return str(found)
    harness.say(f"installing py-spy with pip (log: {log_path})")
    with open(log_path, "a") as log:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "py-spy"],
                              check=False, stdout=log, stderr=subprocess.STDOUT, timeout=600)
    installed = Path(sys.executable).parent / "py-spy"
    if done.returncode or not installed.exists():
        harness.fail(f"py-spy could not be installed; see {log_path}")
    return str(installed)


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn master's children: its workers."""
    pids = []
    for task in Path(f"/proc/{master_pid}/task").glob("*/children"):
        pids += [int(pid) for pid in task.read_text().split()]
    return pids


def record(py_spy: str, pids: list[int], seconds: int, out_dir: Path, name: str) -> list[subprocess.Popen]:
    """py-spy on each worker for `seconds`, into out_dir/<name>-<pid>.txt (collapsed stacks)."""
    return [subprocess.Popen([py_spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(SAMPLES_PER_SECOND),
                              "-f", "raw", "--nonblocking", "-o", str(out_dir / f"{name}-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


def short(frame: str) -> str:
    """A py-spy frame without its line number: `function (module/file.py)`, so that a function's
    samples add up."""
    name, colon, _line = frame.rpartition(":")
    return f"{name})" if colon else frame


def summarize(files: list[Path], top: int = 8) -> dict:
    """The request threads' samples; their `top` frames by self samples, and the app's own frames
    (posterr/) by inclusive samples (the phases of a request), as shares."""
    own: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if not count.isdigit() or not any("handle_request" in frame for frame in frames):
                continue  # not a request thread: gunicorn's main loop, the pool's, the watchdog
            total += int(count)
            own[short(frames[-1])] += int(count)
            for frame in {short(frame) for frame in frames if "(posterr/" in frame}:
                phases[frame] += int(count)

    def shares(counter: Counter[str]) -> list[dict]:
        return [{"frame": frame, "share": round(count / total, 3)} for frame, count in counter.most_common(top)]

    return {"samples": total, "self": shares(own), "posterr": shares(phases)} if total else {"samples": 0}
