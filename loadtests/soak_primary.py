"""The soak's faults of the PostgreSQL primary under Patroni (TOPOLOGY=ha, scripts/ha.sh): how each
is struck and healed, and what the healing measured: how long writes were refused and, where the
fault loses commits, how many."""

from __future__ import annotations

import time

import psycopg

from loadtests.soak_servers import SoakServers
from posterr.wal_positions import lsn

NEW_PRIMARY_SECONDS = 60  # Patroni promotes a standby within about its ttl (10 s) plus a loop (2 s)


class PrimaryFaults:
    def __init__(self, servers: SoakServers) -> None:
        self.servers = servers
        self._struck_at = 0.0  # time.monotonic() of the last strike
        self._member = ""  # the port of the primary the last strike froze or cut off

    def strike(self, kind: str) -> str:
        ha = self.servers.ha_script
        self._struck_at = time.monotonic()
        match kind:
            case "primary-kill":
                return f"SIGKILL to the postmaster of the primary :{ha('kill-primary').strip()}"
            case "primary-switchover":
                before = ha("primary").strip()
                ha("switchover")
                return f"switched over from :{before} to :{ha('primary').strip()}"
            case "primary-partition":
                self._member = ha("freeze-primary").strip()
                return f"SIGSTOP to the Patroni of the primary :{self._member} (its PostgreSQL goes on)"
            case "primary-loses-commits":
                self._member = ha("cut-standbys").strip()
                return (f"SIGSTOP to the WAL senders of the primary :{self._member}: it goes on alone, its "
                        "commits waiting for a standby until the app gives up on them (503)")
        raise ValueError(kind)

    def heal(self, kind: str) -> str:
        """Heal, then measure: seconds from the fault to the first acknowledged write (the write
        unavailability), then wait for every member to run again with a synchronous standby."""
        done = ""
        if kind == "primary-partition":
            self.servers.ha_script("thaw-member", self._member)
            done = f"SIGCONT to the Patroni on :{self._member}; "
        elif kind == "primary-loses-commits":
            done = self._lose_cut_primary()
        unavailable = self.servers.first_write_after(self._struck_at)
        self.servers.ha_script("wait-ready")
        return (f"{done}first write acknowledged {unavailable:.1f} s after the fault; primary now "
                f":{self.servers.ha_script('primary').strip()}, every member running")

    def _lose_cut_primary(self) -> str:
        """The cut-off primary stopped and a standby, which lacks its last commits, promoted; then the
        old primary rejoins, rewound: the commits only it held are gone."""
        ha, old = self.servers.ha_script, self._member
        written = member_wal(old, WRITTEN)
        ha("lose-primary", old)
        standbys = [port for port in ha("members").split() if port != old]
        reached = max(member_wal(port, REPLAYED) for port in standbys)
        new = self._new_primary(old)
        ha("thaw-member", old)
        return (f"the primary :{old} stopped {written - reached:,} bytes of WAL past every standby (the "
                f"commits answered 503 meanwhile); :{new} promoted; the old primary thawed, to rejoin rewound "
                "(those commits gone); ")

    def _new_primary(self, old: str) -> str:
        deadline = time.monotonic() + NEW_PRIMARY_SECONDS
        while time.monotonic() < deadline:
            try:
                port = self.servers.ha_script("primary").strip()
            except RuntimeError:  # none yet
                port = old
            if port != old:
                return port
            time.sleep(0.2)  # polling until Patroni has promoted a standby
        raise RuntimeError(f"no standby was promoted within {NEW_PRIMARY_SECONDS} s of losing the primary :{old}")


WRITTEN = "SELECT pg_current_wal_lsn()::text"  # a primary's
REPLAYED = "SELECT pg_last_wal_replay_lsn()::text"  # a standby's


def member_wal(port: str, query: str) -> int:
    """A WAL position of the member on `port` (WRITTEN or REPLAYED), as a number."""
    with psycopg.connect(f"postgres://posterr@127.0.0.1:{port}/posterr?sslmode=disable", connect_timeout=5,
                         autocommit=True) as conn:
        return lsn(conn.execute(query).fetchone()[0])
