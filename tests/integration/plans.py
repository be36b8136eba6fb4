"""Reading PostgreSQL's JSON plans."""

from __future__ import annotations


def sequential_scans(plan: dict) -> list[str]:
    """The tables a plan reads whole, at any depth."""
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" else []
    for child in plan.get("Plans", []):
        found += sequential_scans(child)
    return found


def nodes(plan: dict):
    """Every node of a plan, the root first."""
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)
