"""posterr/metrics.py: every label of the request metrics comes from a closed set (issue 37, finding 1)."""

from __future__ import annotations

from posterr import metrics


def method_labels() -> set[str]:
    return {sample.labels["method"] for family in metrics.REQUESTS.collect() for sample in family.samples}


def test_made_up_methods_are_one_label_value():
    for n in range(100):
        metrics.observe_request(f"M{n:017d}", "(unmatched)", 405, 0.001)
    metrics.observe_request("GET", "/healthz", 200, 0.001)
    labels = method_labels()
    assert metrics.OTHER_METHOD in labels and "GET" in labels
    assert not [label for label in labels if label.startswith("M0")]
