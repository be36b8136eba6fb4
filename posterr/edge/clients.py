"""Who is asking: the client the rate limit counts, the access log names and read-your-writes
follows (posterr/replicas.py)."""

from __future__ import annotations

from ipaddress import ip_address

import bottle

from posterr.edge import current_context


def client_address() -> str:
    """The socket peer, or the first untrusted hop of X-Forwarded-For when the peer is a trusted proxy."""
    environ = bottle.request.environ
    trusted = current_context().settings.trusted_proxies
    peer = environ.get("REMOTE_ADDR", "")
    if not trusted:
        return peer[:64]  # no proxy to look behind (and no address is that long)
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()] + [peer]
    for hop in reversed(hops):
        try:
            address = ip_address(hop)
        except ValueError:
            return hop[:64]  # not an address: an untrusted hop by definition
        if not any(address in network for network in trusted):
            return hop
    return hops[0]
