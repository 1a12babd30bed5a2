"""Where a simulated terminal's requests go. A target answers send(mtype, body) with
the response body, or raises TargetError with the kind of failure, as the board sees
it (no answer, an ERROR in its place, a refused connection):

    InProcessTarget(issuer)      the issuer in this process (Issuer.handle), the way the
                                 bridge holds it by default
    Iso8583Target(urls, n)       ISO 8583 hosts (posbridge issuer serve; several may
                                 serve one PostgreSQL database) over n TCP connections,
                                 connection j to host j mod len(urls), through the
                                 bridge's own upstream client (upstream.py): CBOR ->
                                 ISO 8583 -> CBOR as a bridge does it; terminal i uses
                                 connection i mod n
    boards.BridgeTarget          simulated boards through a bridge (its own module)

A target with a connect(fleet) method has it called once the fleet is provisioned,
before the run (the bridge's boards say HELLO as their terminals).
"""
import time

from ..issuer import IssuerError
from ..upstream import Upstream, parse_url


class TargetError(Exception):
    """No answer: `kind` names why, for the summary's errors by kind."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class InProcessTarget:
    name = "in-process issuer"

    def __init__(self, issuer):
        self.issuer = issuer

    def for_terminal(self, index: int):
        return self

    @property
    def conflicts(self) -> int:
        """Transactions the issuer ran again after a concurrent one's conflict."""
        return self.issuer.ledger.conflicts

    def send(self, mtype: int, body: bytes) -> bytes:
        try:
            return self.issuer.handle(mtype, body)
        except IssuerError as exc:
            # what the bridge would send the board instead: an ERROR, no answer
            raise TargetError(f"issuer: {type(exc).__name__}") from None

    def close(self):
        self.issuer.close()


class Iso8583Target:
    name = "ISO 8583 host"

    def __init__(self, urls, connections: int = 1, *, timeout: float = 10.0,
                 connect_timeout: float = 10.0):
        urls = [urls] if isinstance(urls, str) else list(urls)
        hosts = [parse_url(url) for url in urls]
        url = ", ".join(urls)
        self._upstreams = [Upstream(*hosts[j % len(hosts)], timeout=timeout).start()
                           for j in range(max(connections, len(hosts)))]
        deadline = time.monotonic() + connect_timeout
        while not all(u.reachable() for u in self._upstreams):
            if time.monotonic() > deadline:
                self.close()
                raise TargetError(f"no ISO 8583 host signed on at {url}")
            time.sleep(0.02)

    def for_terminal(self, index: int) -> "_Connection":
        """The sender of the terminal `index`: its connection's."""
        return _Connection(self._upstreams[index % len(self._upstreams)])

    def send(self, mtype: int, body: bytes) -> bytes:
        return _Connection(self._upstreams[0]).send(mtype, body)

    def close(self):
        for upstream in self._upstreams:
            upstream.close()


class _Connection:
    def __init__(self, upstream):
        self._upstream = upstream

    def send(self, mtype: int, body: bytes) -> bytes:
        try:
            return self._upstream.handle(mtype, body)
        except IssuerError as exc:
            raise TargetError(f"host: {type(exc).__name__}") from None
