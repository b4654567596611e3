"""Who is let in: the client's address as a trusted proxy reports it, and a cap on the
requests one address may have in flight (each listener of a worker keeps its own)."""

from __future__ import annotations

from starlette.types import Scope

from ...config import Settings


def trusted_proxies(settings: Settings) -> frozenset[str]:
    return frozenset(ip.strip() for ip in settings.forwarded_allow_ips.split(",") if ip.strip())


def believe_proxy(scope: Scope, headers: dict[bytes, bytes], trusted: frozenset[str]) -> None:
    """Behind a TLS proxy, the client's scheme and address from the proxy's
    ``X-Forwarded-Proto`` and ``X-Forwarded-For``, but only when the request comes from one
    of ``trusted`` addresses (anyone else could claim any address)."""
    client = scope.get("client")
    if not client or client[0] not in trusted:
        return
    proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
    if proto in ("http", "https"):
        scope["scheme"] = proto
    forwarded_for = headers.get(b"x-forwarded-for", b"").decode("latin-1")
    if nearest := forwarded_for.rsplit(",", 1)[-1].strip():
        scope["client"] = (nearest, 0)


class ClientCap:
    """At most ``most`` requests in flight from one address (0: no cap). Every open request
    holds a connection, memory and maybe an upload slot; without a cap one client (a
    runaway CI job, or a hostile one) could hold them all. Behind a reverse proxy every
    request comes from the proxy: set the limit there and this one to 0."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._in_flight: dict[str, int] = {}  # a plain dict: Counter's methods are Python

    @staticmethod
    def address(scope: Scope) -> str:
        return str((scope.get("client") or ("unknown", 0))[0])

    def enter(self, address: str) -> bool:
        """Count one more request from ``address``; False (and nothing counted) when it
        has ``most`` in flight already."""
        if self.most <= 0:
            return True
        held = self._in_flight.get(address, 0)
        if held >= self.most:
            return False
        self._in_flight[address] = held + 1
        return True

    def leave(self, address: str) -> None:
        if self.most <= 0:
            return
        held = self._in_flight[address] - 1
        if held:
            self._in_flight[address] = held
        else:
            del self._in_flight[address]

    def refusal(self, address: str) -> str:
        return (
            f"too many requests at once from {address} (at most {self.most}); "
            "retry when some have finished"
        )
