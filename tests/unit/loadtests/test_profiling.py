"""make bench --profile's summary of py-spy's collapsed stacks (loadtests/profiling.py)."""

from __future__ import annotations

from loadtests.profiling import short, summarize

REQUEST = ("Thread.run (threading.py:982);ThreadWorker.handle_request (gunicorn/workers/gthread.py:771);"
           "wrapper (posterr/edge/plugin.py:49)")


def test_a_frame_loses_its_line_number_so_that_a_function_adds_up():
    assert short("Parser.finish_body (gunicorn/http/parser.py:87)") == "Parser.finish_body (gunicorn/http/parser.py)"
    assert short("<module>") == "<module>"


def test_only_request_threads_count_and_shares_are_of_their_samples(tmp_path):
    stacks = tmp_path / "row-1.txt"
    stacks.write_text("\n".join([
        f"{REQUEST};check (posterr/limits.py:103);recv_into (redis/connection.py:10) 6",
        f"{REQUEST};check (posterr/limits.py:104);recv_into (redis/connection.py:12) 2",
        f"{REQUEST};dumps (orjson:1) 2",
        "Thread.run (threading.py:982);_watch (posterr/watchdog.py:50) 90",  # not a request: left out
    ]))
    summary = summarize([stacks, tmp_path / "missing.txt"])
    assert summary["samples"] == 10
    assert summary["self"] == [{"frame": "recv_into (redis/connection.py)", "share": 0.8},
                               {"frame": "dumps (orjson)", "share": 0.2}]
    assert summary["posterr"] == [{"frame": "wrapper (posterr/edge/plugin.py)", "share": 1.0},
                                  {"frame": "check (posterr/limits.py)", "share": 0.8}]


def test_no_request_samples_is_said_as_such(tmp_path):
    assert summarize([tmp_path / "missing.txt"]) == {"samples": 0}
