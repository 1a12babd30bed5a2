"""The bridge's side of the ISO 8583 link (upstream.Upstream) against the real host
(`posbridge issuer serve` in this process), through a TCP proxy that records and can
alter every message: what the bridge sends, field by field; that changing any field the
MACs cover is refused by the issuer or by the board's check; echo tests, a host that
drops the connection, a host that does not answer."""
import asyncio
import hashlib
import threading

import iso8583
import pytest

from posbridge.issuer.errors import (IssuerError, IssuerInternalError, IssuerRequestError,
                                     IssuerUnavailable)
from posbridge.link import cbor_profile
from posbridge.link import iso8583_framing as framing
from posbridge.link import iso8583_map as m
from posbridge.link import iso8583_spec as spec
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST, REVERSAL_REQUEST
from posbridge.upstream import Upstream, parse_url

from tests.host.issuer.request_builder import SecurityError
from tests.iso8583_net import RunningHost, TamperProxy, stop_loop

LI_WEI = "4761730000000011"


@pytest.fixture
def host(issuer):
    running = RunningHost(issuer)
    yield running
    running.close()


@pytest.fixture
def proxy(host):
    p = TamperProxy(host.port)
    yield p
    p.close()


def _wait(predicate, seconds=10.0):
    done = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        done.wait(0.02)
    return False


@pytest.fixture
def upstream(proxy):
    client = Upstream("127.0.0.1", proxy.port, timeout=1.0, echo_interval=60).start()
    assert _wait(client.reachable), "no sign-on"
    yield client
    client.close()


def balance(issuer):
    return issuer.ledger.card_by_pan(LI_WEI).available


def test_parse_url():
    assert parse_url("iso8583://10.0.0.5:8583") == ("10.0.0.5", 8583)
    for bad in ("tcp://h:1", "iso8583://h", "iso8583://:80"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_balance_purchase_and_reversal_through_the_upstream(upstream, terminal, issuer):
    body, pending = terminal.request(LI_WEI)
    assert terminal.check(upstream.handle(BALANCE_REQUEST, body), pending)[3] == "00"
    before = balance(issuer)
    body, purchase = terminal.purchase(LI_WEI, 4200)
    assert terminal.check(upstream.handle(PURCHASE_REQUEST, body), purchase)[3] == "00"
    assert balance(issuer) == before - 4200
    body, pending = terminal.reversal(purchase)
    answer = terminal.check(upstream.handle(REVERSAL_REQUEST, body), pending)
    assert (answer[3], answer[16]) == ("00", 1) and balance(issuer) == before


def _cbor(body):
    return cbor_profile.decode(body)


def test_every_message_the_bridge_sends_decodes_against_the_spec(upstream, proxy, terminal):
    sent = []
    for mtype, (body, pending) in [
            (BALANCE_REQUEST, terminal.request(LI_WEI)),
            (PURCHASE_REQUEST, terminal.purchase(LI_WEI, 1999))]:
        upstream.handle(mtype, body)
        sent.append((mtype, _cbor(body)))
        if mtype == PURCHASE_REQUEST:
            purchase = pending
    body, _ = terminal.reversal(purchase, reason=2)
    upstream.handle(REVERSAL_REQUEST, body)
    sent.append((REVERSAL_REQUEST, _cbor(body)))
    financial = [r for r in proxy.requests if r["t"] != spec.NETWORK]
    assert [r["t"] for r in financial] == ["0100", "0200", "0400"]
    assert proxy.requests[0]["t"] == spec.NETWORK and proxy.requests[0]["70"] == "001"
    for (mtype, cbor), iso in zip(sent, financial):
        # decoded again from its bytes, by pyiso8583 against the documented spec
        fields, _ = iso8583.decode(spec.pack(iso), spec.SPEC)
        _expect_fields(mtype, cbor, fields)
    for iso in proxy.requests:
        if iso["t"] == spec.NETWORK:            # the sign-on: 7, 11 and 70 only
            fields, _ = iso8583.decode(spec.pack(iso), spec.SPEC)
            assert sorted(k for k in fields if k not in ("p", "1", "h")) == ["11", "7", "70", "t"]
            assert fields["70"] == spec.SIGN_ON and fields["11"].isdigit()


def _expect_fields(mtype, c, f):
    """Each field of the request as docs/iso8583.md, "Fields", says it is made."""
    import time
    t = time.gmtime(c[3])
    common = {
        "11": f"{c[2]:06d}",
        "41": c[1].ljust(8),
        "48": str(c[3]),
        "53": c[6].hex().upper(),
        "7": time.strftime("%m%d%H%M%S", t),
        "12": time.strftime("%H%M%S", t),
        "13": time.strftime("%m%d", t),
        "25": "00",
        "37": f"{t.tm_year % 10}{t.tm_yday:03d}{t.tm_hour:02d}{c[2]:06d}",
    }
    if mtype in (BALANCE_REQUEST, PURCHASE_REQUEST):
        common.update({"2": c[4][1], "14": c[4][2], "40": c[4][3],
                       "52": c[5].hex().upper(), "64": c[7].hex().upper()})
    if mtype == BALANCE_REQUEST:
        want = {"t": "0100", "3": "310000", **common}
    elif mtype == PURCHASE_REQUEST:
        want = {"t": "0200", "3": "000000", "4": f"{c[8]:012d}", "49": f"{c[9]:03d}",
                "42": c[10].ljust(15), "43": c[11].ljust(40), **common}
    else:
        want = {"t": "0400", "3": "000000", "4": f"{c[8]:012d}", "49": f"{c[9]:03d}",
                "90": "0200" + f"{c[12]:06d}" + "0" * 32, "121": str(c[14]),
                "123": c[13].hex().upper(), "128": c[7].hex().upper(), **common}
    assert {k: v for k, v in f.items() if k not in ("p", "1", "h")} == want


# ---- MAC coverage: a tap on the TCP link -------------------------------------------


def _altered(value: str) -> str:
    """The field's value with its last character changed, still of the field's kind."""
    last = value[-1]
    if last.isdigit():
        return value[:-1] + str((int(last) + 1) % 10)
    if last in "ABCDEF":
        return value[:-1] + ("0" if last != "0" else "1")
    return value[:-1] + ("X" if last != "X" else "Y")


# request fields covered by the terminal's MAC, or checked against covered ones
PURCHASE_FIELDS = ["2", "3", "4", "7", "11", "12", "13", "14", "25", "37", "40", "41", "42",
                   "43", "48", "49", "52", "53", "64"]
REVERSAL_FIELDS = ["4", "11", "41", "48", "49", "53", "90", "121", "123", "128"]


def _no_approval_reaches_the_board(upstream, terminal, mtype, built):
    body, pending = built
    try:
        response = upstream.handle(mtype, body)
    except IssuerError:
        return                                      # the board gets an ERROR
    try:
        fields = terminal.check(response, pending)
    except SecurityError:
        return                                      # the board refuses the answer
    assert fields[3] != "00", "an altered request was approved"


@pytest.mark.parametrize("field", PURCHASE_FIELDS)
def test_a_changed_purchase_field_charges_nothing(upstream, proxy, terminal, issuer, field):
    before = balance(issuer)
    proxy.alter_request = lambda f: f.__setitem__(field, _altered(f[field]))
    _no_approval_reaches_the_board(upstream, terminal, PURCHASE_REQUEST,
                                   terminal.purchase(LI_WEI, 3000))
    assert balance(issuer) == before


@pytest.mark.parametrize("field", REVERSAL_FIELDS)
def test_a_changed_reversal_field_credits_nothing(upstream, proxy, terminal, issuer, field):
    body, purchase = terminal.purchase(LI_WEI, 3000)
    upstream.handle(PURCHASE_REQUEST, body)
    charged = balance(issuer)
    proxy.alter_request = lambda f: f.__setitem__(field, _altered(f[field]))
    _no_approval_reaches_the_board(upstream, terminal, REVERSAL_REQUEST,
                                   terminal.reversal(purchase))
    assert balance(issuer) == charged


# response fields the issuer's MAC covers (39 code, 38 approval, 49/54 balances,
# 60 notification status, 53 KSN, 11/41 the request's identity, 64 the MAC) and the
# echoes the bridge checks (3, 7, 37)
RESPONSE_FIELDS = ["3", "7", "11", "37", "38", "39", "41", "49", "53", "54", "60", "64"]


@pytest.mark.parametrize("field", RESPONSE_FIELDS)
def test_a_changed_approval_is_refused_by_the_board(upstream, proxy, terminal, field):
    proxy.alter_response = lambda f: f.__setitem__(field, _altered(f[field]))
    body, pending = terminal.purchase(LI_WEI, 3000)
    with pytest.raises((SecurityError, IssuerError)):
        terminal.check(upstream.handle(PURCHASE_REQUEST, body), pending)


def test_a_changed_notification_status_of_a_decline_is_refused(upstream, proxy, terminal):
    proxy.alter_response = lambda f: f.__setitem__("60", "02")
    body, pending = terminal.purchase(LI_WEI, 10 ** 11)       # declined 51 or 61
    with pytest.raises(SecurityError):
        terminal.check(upstream.handle(PURCHASE_REQUEST, body), pending)


def test_an_unaltered_run_passes_the_same_checks(upstream, proxy, terminal):
    proxy.alter_response = lambda f: None
    body, pending = terminal.purchase(LI_WEI, 3000)
    assert terminal.check(upstream.handle(PURCHASE_REQUEST, body), pending)[3] == "00"


# ---- the connection ----------------------------------------------------------------


def test_host_silent_is_issuer_unavailable(upstream, proxy, terminal, issuer):
    proxy.silent = True
    body, _ = terminal.purchase(LI_WEI, 3000)
    with pytest.raises(IssuerUnavailable):
        upstream.handle(PURCHASE_REQUEST, body)


def test_a_connection_lost_with_requests_waiting_fails_them_at_once(proxy, terminal):
    client = Upstream("127.0.0.1", proxy.port, timeout=30.0, echo_interval=60).start()
    try:
        assert _wait(client.reachable)
        proxy.silent = True
        body, _ = terminal.purchase(LI_WEI, 3000)
        failed = []

        def ask():
            try:
                client.handle(PURCHASE_REQUEST, body)
            except IssuerUnavailable as exc:
                failed.append(str(exc))
        asking = threading.Thread(target=ask)
        asking.start()
        assert _wait(lambda: any(r["t"] == "0200" for r in proxy.requests))
        proxy.drop_connections()
        asking.join(20)
        assert failed == ["issuer host connection lost"]
    finally:
        client.close()


def test_host_dropped_is_reconnected(upstream, proxy, terminal):
    proxy.drop_connections()
    assert _wait(lambda: upstream.connects >= 2 and upstream.reachable())
    body, pending = terminal.purchase(LI_WEI, 3000)
    assert terminal.check(upstream.handle(PURCHASE_REQUEST, body), pending)[3] == "00"


def test_no_host_is_issuer_unavailable_at_once(terminal):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]            # nobody listens there once closed
    client = Upstream("127.0.0.1", port, timeout=0.5).start()
    try:
        body, _ = terminal.purchase(LI_WEI, 3000)
        with pytest.raises(IssuerUnavailable):
            client.handle(PURCHASE_REQUEST, body)
        assert not client.reachable()
    finally:
        client.close()


def test_echo_test_when_idle(proxy):
    client = Upstream("127.0.0.1", proxy.port, timeout=1.0, echo_interval=0.1).start()
    try:
        assert _wait(lambda: client.echoes_sent >= 2)
        echoes = [r for r in proxy.requests if r.get("70") == spec.ECHO_TEST]
        assert echoes and all(r["t"] == "0800" for r in echoes)
        assert _wait(lambda: sum(r.get("70") == spec.ECHO_TEST
                                 for r in proxy.responses) >= 2)
        assert client.reachable() and client.connects == 1
    finally:
        client.close()


def test_a_request_the_bridge_cannot_carry_is_refused_before_sending(upstream, proxy,
                                                                     terminal):
    from tests.host.issuer.request_builder import TerminalRequestBuilder
    long_id = TerminalRequestBuilder(terminal_id="TERMINAL00000001")
    body, _ = long_id.purchase(LI_WEI, 3000)
    with pytest.raises(IssuerRequestError):
        upstream.handle(PURCHASE_REQUEST, body)
    assert all(r["t"] == spec.NETWORK for r in proxy.requests)


class _ScriptedHost:
    """A host that signs the bridge on, then sends its own echo test and records what
    comes back; `refuse` answers financial requests with that code and no MAC."""

    def __init__(self, refuse=None):
        self.refuse = refuse
        self.received = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        while True:
            data = await framing.read_message(reader, 10)
            if data is None:
                break
            iso = spec.unpack(data)
            self.received.append(iso)
            if iso["t"] == spec.NETWORK:
                answer = m.network_response(iso)
            elif iso["t"] == spec.NETWORK_RESPONSE:
                continue
            else:
                answer = m.refusal(iso, self.refuse)
            writer.write(framing.frame(spec.pack(answer)))
            if iso.get("70") == spec.SIGN_ON:
                echo = m.network(spec.ECHO_TEST, 777, 1795334400)
                writer.write(framing.frame(spec.pack(echo)))
            await writer.drain()

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        stop_loop(self.loop, self.thread)


def test_the_hosts_echo_is_answered_0810_never_0800():
    host = _ScriptedHost()
    client = Upstream("127.0.0.1", host.port, timeout=1.0, echo_interval=60).start()
    try:
        assert _wait(lambda: any(r["t"] == spec.NETWORK_RESPONSE for r in host.received))
        answer = next(r for r in host.received if r["t"] == spec.NETWORK_RESPONSE)
        assert answer == {"t": "0810", "7": "1122080000", "11": "000777", "39": "00",
                          "70": "301"}
        assert [r["70"] for r in host.received if r["t"] == spec.NETWORK] == ["001"]
    finally:
        client.close()
        host.close()


@pytest.mark.parametrize("code, error", [("30", IssuerRequestError),
                                         ("91", IssuerUnavailable),
                                         ("96", IssuerInternalError)])
def test_a_refusal_without_mac_is_the_matching_issuer_error(terminal, code, error):
    host = _ScriptedHost(refuse=code)
    client = Upstream("127.0.0.1", host.port, timeout=1.0, echo_interval=60).start()
    try:
        assert _wait(client.reachable)
        body, _ = terminal.purchase(LI_WEI, 3000)
        with pytest.raises(error):
            client.handle(PURCHASE_REQUEST, body)
    finally:
        client.close()
        host.close()


def test_request_digest_is_not_on_the_link_but_bound(upstream, proxy, terminal):
    body, pending = terminal.purchase(LI_WEI, 3000)
    response = upstream.handle(PURCHASE_REQUEST, body)
    assert _cbor(response)[17] == hashlib.sha256(body).digest()
    digest_hex = hashlib.sha256(body).hexdigest().upper()
    assert not any(digest_hex in str(v) for r in proxy.responses for v in r.values())
