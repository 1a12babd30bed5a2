"""The console's issuer when it is an ISO 8583 host (`posbridge console --upstream
iso8583://HOST:PORT --issuer-db PATH`): the board's requests go to the host through
upstream.Upstream, as `posbridge serve --upstream` sends them; the host's database
(PATH, the one `posbridge issuer serve` runs on) is read for the cards the page lists
and the alerts the phone shows, never written here.

The page's fault switches act on this side of the TCP link, with the effects the
in-process issuer's faults have (issuer/faults.py): unavailable, a host that cannot be
reached (the request is not sent); slow, the host's answer held back after the host
has acted on it; bad MAC, the answer's MAC altered on its way to the board."""
import time

from ..issuer.errors import IssuerUnavailable
from ..issuer.faults import Faults, corrupt_mac
from ..issuer.messages import ROUTES


class UpstreamIssuer:
    def __init__(self, upstream, ledger, sleep=time.sleep):
        self.upstream = upstream
        self.ledger = ledger           # the host's database: read only
        self.keys = ledger.keys        # for the phone's own connection to it
        self.faults = Faults()         # the page's switches (web/terminal.py sets them)
        self._sleep = sleep

    def reachable(self) -> bool:
        return not self.faults.unavailable and self.upstream.reachable()

    def handle(self, mtype: int, body: bytes) -> bytes:
        faults = self.faults           # one reading: the page may switch meanwhile
        if faults.unavailable:
            raise IssuerUnavailable("issuer host unreachable (console fault)")
        response = self.upstream.handle(mtype, body)
        if faults.delay_s:
            self._sleep(faults.delay_s)
        if faults.bad_mac:
            response = corrupt_mac(ROUTES[mtype][0], response)
        return response
