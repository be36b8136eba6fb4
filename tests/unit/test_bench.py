"""make bench's arithmetic: a row's figures over its rounds, and CPU time per request."""

from __future__ import annotations

from loadtests.bench import combine


def run(rps: float, cpu: float | None, p50: int, requests: int = 1000, **extra) -> dict:
    return {"rps": rps, "cpu_ms_per_request": cpu, "p50_us": p50, "p99_us": p50 * 4, "requests": requests,
            "non_2xx_3xx": 0, "connect_errors": 0, "read_errors": 0, "write_errors": 0, "timeouts": 1,
            "worker_restarts": 0, **extra}


def test_a_row_shows_the_medians_of_its_rounds_and_the_sums_of_its_counts():
    combined = combine([run(100, 0.5, 900), run(300, 0.9, 100), run(200, 0.7, 500)])
    assert (combined["rps"], combined["cpu_ms_per_request"], combined["p50_us"], combined["p99_us"]) == \
        (200, 0.7, 500, 2000)
    assert (combined["requests"], combined["timeouts"]) == (3000, 3)
    assert len(combined["runs"]) == 3


def test_rounds_that_failed_do_not_count_but_are_kept():
    failed = {"error": "wrk exited 1"}
    combined = combine([run(100, 0.5, 900), failed, run(300, None, 100, requests=0)])
    assert (combined["rps"], combined["cpu_ms_per_request"], combined["requests"]) == (100, 0.5, 1000)
    assert combined["runs"][1] == failed


def test_a_row_whose_every_round_failed_says_why():
    combined = combine([{"error": "first"}, {"error": "last"}])
    assert combined["error"] == "last" and "rps" not in combined
