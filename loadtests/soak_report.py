"""The soak's report: one JSON document (loadtests/results/soak-<timestamp>-seed<seed>.json) and the
tables printed on stdout: faults by kind, requests and statuses by route, each invariant's checks and
violations, then the violations themselves."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from loadtests.soak_state import INVARIANTS, Verdict

SHOWN_PER_INVARIANT = 10


def build(*, seed: int, minutes: float, users: int, servers: str, faults: list[dict], verdict: Verdict,
          seconds: float, error: str | None, topology: str = "single", reads_by_target: dict | None = None) -> dict:
    return {
        "seed": seed,
        "minutes": minutes,
        "topology": topology,
        "reads_by_target": reads_by_target or {},
        "load_users": users,
        "seconds": round(seconds, 1),
        "servers": servers,
        "faults": faults,
        "routes": {route: {str(status): count for status, count in sorted(statuses.items())}
                   for route, statuses in sorted(verdict.routes.items())},
        "invariants": {name: {"meaning": meaning, "checks": verdict.checks[name],
                              "violations": verdict.violation_counts[name], "details": verdict.violations[name]}
                       for name, meaning in INVARIANTS.items()},
        "error": error,
        "passed": error is None and verdict.total_violations == 0,
    }


def write(report: dict, results: Path, stamp: str) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"soak-{stamp}-seed{report['seed']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def table(report: dict) -> str:
    title = (f"soak: seed {report['seed']}, {report['minutes']:g} min of load ({report['seconds']:.0f} s in all), "
             f"{report['load_users']} load users")
    lines = [title, f"servers: {report['servers']}", ""]
    by_kind = Counter(fault["kind"] for fault in report["faults"])
    lines += [f"{'fault':<20} {'count':>5}", *(f"{kind:<20} {count:>5}" for kind, count in sorted(by_kind.items())), ""]
    lines += [f"{'#':>3} {'injected':>9} {'healed':>7}  fault", *(
        f"{fault['number']:>3} {fault['t_injected']:>8.1f}s {fault['t_healed']:>6.1f}s  {fault['kind']}: "
        f"{fault['injected']}; {fault['healed']}" for fault in report["faults"]), ""]
    width = max((len(route) for route in report["routes"]), default=10)
    lines.append(f"{'route':<{width}} {'requests':>8}  statuses")
    for route, statuses in report["routes"].items():
        shown = " ".join(f"{'none' if status == '0' else status}×{count}" for status, count in statuses.items())
        lines.append(f"{route:<{width}} {sum(statuses.values()):>8}  {shown}")
    lines += ["", f"{'invariant':<18} {'checks':>8} {'violations':>10}"]
    lines += [f"{name:<18} {found['checks']:>8} {found['violations']:>10}" for name, found in report["invariants"].items()]
    for name, found in report["invariants"].items():
        if found["violations"]:
            lines += ["", f"{name}: {found['violations']} violations ({INVARIANTS[name]}); the first ones:"]
            lines += [f"  t={detail['t']:.1f}s{' during ' + ', '.join(detail['during']) if detail['during'] else ''}: "
                      f"{detail['detail']}" for detail in found["details"][:SHOWN_PER_INVARIANT]]
    if report["error"]:
        lines += ["", f"the soak itself failed: {report['error']}"]
    verdict = "passed" if report["passed"] else "FAILED"
    topology = f" TOPOLOGY={report['topology']}" if report.get("topology", "single") != "single" else ""
    replay = f"make soak MINUTES={report['minutes']:g}{topology} SEED={report['seed']} replays its schedule"
    lines += ["", f"soak {verdict} (seed {report['seed']}: {replay})"]
    return "\n".join(lines)
