"""`make soak` for one minute with a fixed seed, as part of the suite. The soak starts servers of its
own (PostgreSQL, Redis, three gunicorn instances, nginx) on free ports with their files under the
test data folder, so it needs nothing from the other tests and runs beside them. It runs as a process
of its own: Locust's gevent monkey-patches the standard library.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import DATA, ROOT

# Its schedule (loadtests/soak_faults.py): workers killed between a creation's commit and its answer,
# PostgreSQL restarted, one instance SIGKILLed and restarted, Redis refusing behind its proxy for
# 4.6 s, random keys evicted for 4.2 s, then workers started while Redis is down if the minute
# leaves time for it (a fault is started only while the run has time for it).
SEED = 384
SOAK_SECONDS = 360  # the minute of load, starting and stopping the servers, the checks: ~2 min


@pytest.mark.timeout(SOAK_SECONDS + 120)
def test_a_one_minute_soak_with_a_fixed_seed_finds_no_violation():
    data = DATA / "soak"
    data.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "loadtests.soak", "--minutes", "1", "--seed", str(SEED),
               "--data-dir", str(data), "--results", str(data / "results")]
    with open(data / "progress.log", "w") as progress:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=progress, text=True)
        try:
            table, _ = process.communicate(timeout=SOAK_SECONDS)
        except subprocess.TimeoutExpired:
            process.terminate()  # SIGTERM: the soak stops its servers before it exits
            table, _ = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    progress_tail = "".join((data / "progress.log").read_text().splitlines(keepends=True)[-30:])
    assert process.returncode == 0, (f"the soak failed (exit {process.returncode}); its report:\n{table}\n"
                                     f"its last progress lines ({data / 'progress.log'}):\n{progress_tail}")
