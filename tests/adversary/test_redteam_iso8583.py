"""Attacks on the ISO 8583 link between the bridge (upstream.Upstream) and the issuer
host (`posbridge issuer serve`, issuer/iso8583_server.py): a hostile host the bridge
connects to, a hostile TCP client of the host (no keys, or a stolen terminal's), and a
man in the middle who swaps, replays or forges answers. Requests are built as the board
builds them (tests/host/issuer/request_builder.py) and answers checked as it checks
them."""
import asyncio
import logging
import socket
import threading

import pytest

from posbridge.issuer.errors import IssuerError
from posbridge.issuer.iso8583_server import IsoHost
from posbridge.link import iso8583_framing as framing
from posbridge.link import iso8583_map as m
from posbridge.link import iso8583_spec as spec
from posbridge.link.protocol import PURCHASE_REQUEST, REVERSAL_REQUEST
from posbridge.upstream import Upstream

from tests.host.issuer.conftest import db_path, demo_template, make_issuer, sleeps  # noqa: F401
from tests.host.issuer.request_builder import (SecurityError, TerminalRequestBuilder,
                                               provisioned_terminal)
from tests.iso8583_net import Client, RunningHost, stop_loop

LI_WEI = "4761730000000011"


@pytest.fixture
def issuer(make_issuer):        # the host tests' issuer, on its fixed clock
    return make_issuer()


@pytest.fixture
def terminal():
    return TerminalRequestBuilder()


def _wait(predicate, seconds=30.0):
    pause = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        pause.wait(0.02)
    return False


def _read_frame(sock):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
    header = exactly(2)
    return None if header is None else spec.unpack(exactly(int.from_bytes(header, "big")))


def _send(sock, iso):
    sock.sendall(framing.frame(spec.pack(iso)))


class HostileHost:
    """An ISO 8583 "host" the bridge connects to: it signs the bridge on, then
    `script(sock)` does what it likes with the first connection. Later connections are
    signed on and left open. Small socket buffers, so that what the bridge holds
    unread shows in the bridge rather than in the kernel."""

    def __init__(self, script):
        self.script = script
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.outcome = None          # what the script returned, or the error it met
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        first = True
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(sock)
            sign_on = _read_frame(sock)
            _send(sock, m.network_response(sign_on))
            if first:
                first = False
                threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock):
        try:
            self.outcome = self.script(sock)
        except OSError as exc:
            self.outcome = exc
        self.done.set()

    def close(self):
        self.listener.close()
        for sock in self.conns:
            sock.close()


@pytest.fixture
def hostile():
    made = []

    def start(script, **options):
        host = HostileHost(script)
        options = {"timeout": 0.5, "echo_interval": 3600, **options}
        client = Upstream("127.0.0.1", host.port, **options).start()
        made.append((client, host))
        assert _wait(client.reachable), "no sign-on"
        return client, host
    yield start
    for client, host in made:
        client.close()
        host.close()


ECHO = m.network(spec.ECHO_TEST, 777, 1795334400)


def test_an_echo_storm_from_a_host_that_does_not_read_is_let_go(hostile):
    """The host sends echo tests without end and never reads the 0810s: the bridge must
    not queue answers in memory for ever; it stops reading and lets the host go."""
    storm = framing.frame(spec.pack(ECHO)) * 40_000        # 1.2 MB of 0800s

    def flood(sock):
        sock.sendall(storm)
        return "all sent"
    ready = threading.Event()
    client, host = hostile(lambda sock: ready.wait(30) and flood(sock))
    # the bridge's own socket buffers small too: the backlog shows in its process
    sock = client._writer.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ready.set()
    assert host.done.wait(120)
    assert isinstance(host.outcome, OSError), \
        "the bridge read the whole storm, queueing every 0810 the host did not read"
    assert _wait(lambda: client.connects >= 2 and client.reachable)


def test_a_message_the_decoder_chokes_on_costs_the_connection_not_the_upstream(
        hostile, monkeypatch):
    """Whatever a hostile host's message makes the ISO 8583 library raise (here an
    error no one foresaw, on a marked message), the bridge drops that connection and
    connects again, as the host does with a client's: it does not stop for good."""
    real_unpack = spec.unpack

    def choking_unpack(data):
        if data.endswith(b"\xde\xad"):
            raise RuntimeError("the decoder's own bug")
        return real_unpack(data)
    monkeypatch.setattr(spec, "unpack", choking_unpack)

    def script(sock):
        sock.sendall(framing.frame(spec.pack(ECHO) + b"\xde\xad"))
        return _read_frame(sock)
    client, host = hostile(script)
    assert host.done.wait(30)
    assert _wait(lambda: client.connects >= 2 and client.reachable())


def test_unsolicited_answers_do_not_flood_the_log(hostile, caplog):
    """A host that sends answers nobody asked for: each is dropped, and the log says so
    a bounded number of times rather than a line per message."""
    forged = {"t": "0210", "3": "000000", "11": "000001", "39": "00",
              "41": "T0000001", "53": "00" * 12, "64": "00" * 8}

    def flood(sock):
        for _ in range(2000):
            _send(sock, forged)
        _send(sock, ECHO)               # its 0810 comes after all of them are read
        while True:
            answer = _read_frame(sock)
            if answer is None or answer["t"] == spec.NETWORK_RESPONSE:
                return answer
    with caplog.at_level(logging.INFO, logger="posbridge.upstream"):
        client, host = hostile(flood)
        assert host.done.wait(60)
    assert host.outcome is not None and host.outcome["11"] == "000777"
    lines = [r for r in caplog.records if "matches no request" in r.getMessage()]
    assert len(lines) == 11                # the 1st, 2nd, 4th ... 1024th of 2000
    assert "(1024 so far)" in lines[-1].getMessage()
    assert client.connects == 1 and client.reachable()


def _answer_with(answer_for):
    """A host script: each financial request answered with `answer_for(iso)`."""
    def script(sock):
        while True:
            iso = _read_frame(sock)
            if iso is None:
                return None
            if iso["t"] in m.REQUEST_MTIS:
                _send(sock, answer_for(iso))
    return script


def test_a_forged_approval_from_a_hostile_host_is_refused_by_the_board(hostile, terminal):
    """Every field right, echoes and all, only the MAC guessed: the bridge passes it on
    and the board's check refuses it (it then reverses the purchase)."""
    def approve(iso):
        return {"t": "0210", **{n: iso[n] for n in m.ECHOED}, "11": iso["11"],
                "41": iso["41"], "53": iso["53"], "38": "123456", "39": "00",
                "49": "156", "54": "0001156C000099999999" + "0002156C000099999999",
                "60": "01", "64": "00" * 8}
    client, _ = hostile(_answer_with(approve))
    body, pending = terminal.purchase(LI_WEI, 3000)
    response = client.handle(PURCHASE_REQUEST, body)
    with pytest.raises(SecurityError):
        terminal.check(response, pending)


def test_a_forged_reversal_acknowledgement_is_refused_by_the_board(hostile, terminal):
    """A host that says "reversed" without the issuer's key: the board does not take
    it, keeps the reversal and sends it again, so a purchase is not left charged behind
    a forged acknowledgement."""
    def reversed_(iso):
        return {"t": "0410", **{n: iso[n] for n in m.ECHOED}, "11": iso["11"],
                "41": iso["41"], "53": iso["53"], "39": "00", "90": iso["90"],
                "122": "1", "128": "00" * 8}
    client, _ = hostile(_answer_with(reversed_))
    _, purchase = terminal.purchase(LI_WEI, 3000)
    body, pending = terminal.reversal(purchase)
    response = client.handle(REVERSAL_REQUEST, body)
    with pytest.raises(SecurityError):
        terminal.check(response, pending)


def test_another_terminals_genuine_answer_is_refused(hostile, issuer, terminal):
    """Two terminals with the same STAN: the genuine approval of terminal B, relabelled
    with A's terminal id (a swap on the link, or a host confusing them), is refused by
    A's board: B's answer is MAC'd under B's key over B's request."""
    other = provisioned_terminal(issuer.ledger, "T0000002", "90123457")
    b_body, _ = other.purchase(LI_WEI, 3000, trace=42)
    a_body, a_pending = terminal.purchase(LI_WEI, 3000, trace=42)
    host = RunningHost(issuer, read_timeout=0.5)
    peer = Client(host.port)
    try:
        b_answer = peer.exchange(m.request_to_iso(PURCHASE_REQUEST, b_body))
    finally:
        peer.close()
        host.close()
    assert b_answer["39"] == "00" and m.has_mac(b_answer)

    def swapped(iso):
        return {**b_answer, "41": iso["41"], **{n: iso[n] for n in m.ECHOED}}
    client, _ = hostile(_answer_with(swapped))
    response = client.handle(PURCHASE_REQUEST, a_body)
    with pytest.raises(SecurityError):
        terminal.check(response, a_pending)


def test_a_replayed_answer_to_an_earlier_request_is_refused(hostile, issuer, terminal):
    """The genuine approval of the terminal's previous purchase, replayed (its STAN and
    echoes made to fit) as the answer to the next one: its digest is of other bytes."""
    host = RunningHost(issuer, read_timeout=0.5)
    peer = Client(host.port)
    first_body, _ = terminal.purchase(LI_WEI, 100)
    try:
        old = peer.exchange(m.request_to_iso(PURCHASE_REQUEST, first_body))
    finally:
        peer.close()
        host.close()
    assert old["39"] == "00"

    def replay(iso):
        return {**old, "11": iso["11"], **{n: iso[n] for n in m.ECHOED}}
    client, _ = hostile(_answer_with(replay))
    body, pending = terminal.purchase(LI_WEI, 100)
    with pytest.raises((SecurityError, IssuerError)):
        terminal.check(client.handle(PURCHASE_REQUEST, body), pending)


# ---- a hostile TCP client of the host ---------------------------------------------


def _served(port) -> bool:
    """Whether a new connection to the host gets its echo test answered."""
    peer = Client(port, timeout=5)
    try:
        answer = peer.exchange(m.network(spec.ECHO_TEST, 9, 1795334400))
        return answer is not None and answer["39"] == "00"
    except OSError:
        return False
    finally:
        peer.close()


class SmallBufferHost:
    """The host on a loop of its own thread, its sockets' buffers small (accepted
    sockets take the listening socket's): what a peer leaves unread stays in the host's
    process, where the host must bound it, and what it sends stops when the host stops
    reading."""

    def __init__(self, issuer, **options):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.host = IsoHost(issuer, **options)
        address = asyncio.run_coroutine_threadsafe(
            self.host.start("127.0.0.1", 0), self.loop).result(10)
        self.port = address[1]
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            self.host._server.sockets[0].setsockopt(socket.SOL_SOCKET, option, 4096)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.host.close(), self.loop).result(30)
        stop_loop(self.loop, self.thread)


def test_a_client_that_never_reads_gives_its_connection_back(issuer):
    """A peer with no keys floods echo tests and reads nothing. The host lets it go
    after the write timeout, and its place (here the only one) is free again at once:
    the socket is not kept open waiting for the peer to read what was left for it."""
    running = SmallBufferHost(issuer, write_timeout=0.5, max_connections=1)
    try:
        hog = socket.socket()         # buffers small before connecting: they stay small
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        hog.settimeout(20)
        hog.connect(("127.0.0.1", running.port))
        storm = framing.frame(spec.pack(ECHO)) * 40_000
        try:
            hog.sendall(storm)
            outcome = "all sent"
        except socket.timeout:
            outcome = "the host neither read nor closed"
        except OSError:
            outcome = "closed"
        assert outcome == "closed"
        assert _wait(lambda: _served(running.port))
        hog.close()
    finally:
        running.close()


@pytest.fixture
def iso_host(issuer):
    running = RunningHost(issuer, read_timeout=0.5)
    yield running
    running.close()


def _over_tcp(port, mtype, body):
    peer = Client(port)
    try:
        return peer.exchange(m.request_to_iso(mtype, body))
    finally:
        peer.close()


def test_a_stolen_terminals_keys_cannot_reverse_another_terminals_purchase(
        iso_host, issuer, terminal):
    """A client holding terminal B's keys (a stolen board's flash) asks the host to
    reverse terminal A's purchase, in its own name and in A's: refused, nothing
    credited; A's own reversal then credits it once, and a replay of it credits
    nothing more."""
    stolen = provisioned_terminal(issuer.ledger, "T0000002", "90123457")
    purchase = terminal.purchase(LI_WEI, 4000)
    assert _over_tcp(iso_host.port, PURCHASE_REQUEST, purchase[0])["39"] == "00"
    charged = issuer.ledger.card_by_pan(LI_WEI).available
    as_itself = stolen.reversal(purchase[1])
    answer = _over_tcp(iso_host.port, REVERSAL_REQUEST, as_itself[0])
    assert answer["39"] != "00" or answer.get("122") != "1"
    assert issuer.ledger.card_by_pan(LI_WEI).available == charged
    in_as_name = TerminalRequestBuilder.__new__(TerminalRequestBuilder)
    in_as_name.__dict__.update(stolen.__dict__, terminal_id=terminal.terminal_id)
    answer = _over_tcp(iso_host.port, REVERSAL_REQUEST, in_as_name.reversal(purchase[1])[0])
    assert answer["39"] == "63" and not m.has_mac(answer)
    assert issuer.ledger.card_by_pan(LI_WEI).available == charged
    # the genuine reversal, and the same bytes again (a tap replaying it)
    genuine = terminal.reversal(purchase[1])
    first = _over_tcp(iso_host.port, REVERSAL_REQUEST, genuine[0])
    again = _over_tcp(iso_host.port, REVERSAL_REQUEST, genuine[0])
    assert first["122"] == "1" and again == first
    assert issuer.ledger.card_by_pan(LI_WEI).available == charged + 4000
    # a new reversal of the same purchase (a next try) credits nothing more either
    retry = _over_tcp(iso_host.port, REVERSAL_REQUEST, terminal.reversal(purchase[1])[0])
    assert retry["122"] == "3"
    assert issuer.ledger.card_by_pan(LI_WEI).available == charged + 4000


def _pathological():
    """Messages no bridge sends: every bitmap bit, lengths past the spec, a secondary
    bitmap with nothing in it, numeric fields of letters, a field 90 of a balance
    inquiry; each framed within the 2048-byte bound."""
    yield bytes.fromhex("0200") + b"\xff" * 16 + b"\x00" * 200
    yield bytes.fromhex("0200") + b"\x40" + b"\x00" * 7 + b"\x99" + b"4" * 99
    yield bytes.fromhex("0200") + b"\x00" * 6 + b"\x02\x00" + b"\x09\x99" + b"\x91" * 300
    yield bytes.fromhex("0200") + b"\x80" + b"\x00" * 15
    yield bytes.fromhex("0100") + b"\x20" + b"\x00" * 7 + b"ABC"
    yield bytes.fromhex("0800") + b"\x80" + b"\x00" * 7 + b"\x00" * 7 + b"\xff"
    yield bytes.fromhex("9999") + b"\x00" * 8
    yield bytes.fromhex("0400") + b"\xc0" + b"\x00" * 7 + b"\x40" + b"\x00" * 7 + b"1" * 1500


def test_pathological_messages_are_refused_and_the_host_goes_on(iso_host, terminal):
    peer = Client(iso_host.port)
    try:
        for message in _pathological():
            peer.send_raw(framing.frame(message))
            # an answer, if any, is a refusal without a MAC; then the connection still
            # serves: the echo's 0810 is the next thing to come back or the one after
            answer = peer.exchange(ECHO)
            if answer.get("11") != "000777":
                assert answer["39"] == "30" and not m.has_mac(answer), answer
                answer = peer.receive()
            assert answer["t"] == spec.NETWORK_RESPONSE and answer["11"] == "000777"
    finally:
        peer.close()
    # and a real request is answered afterwards
    assert _over_tcp(iso_host.port, PURCHASE_REQUEST,
                     terminal.purchase(LI_WEI, 10)[0])["39"] == "00"


def test_no_card_data_or_pin_block_in_refusals_or_the_hosts_log(iso_host, terminal,
                                                                   caplog):
    """Requests damaged byte by byte (a seeded run): whatever the host answers and logs,
    it never holds the PAN, the expiry with it, or the PIN block."""
    import random
    body, _ = terminal.purchase(LI_WEI, 3000)
    iso = m.request_to_iso(PURCHASE_REQUEST, body)
    clean = spec.pack(iso)
    secrets = (LI_WEI, LI_WEI[6:], iso["52"].lower(), iso["52"].upper())
    rng = random.Random(8583)
    peer = Client(iso_host.port)
    answers = []
    with caplog.at_level(logging.DEBUG):
        try:
            for _ in range(150):
                damaged = bytearray(clean)
                for _ in range(rng.randint(1, 3)):
                    damaged[rng.randrange(len(damaged))] = rng.randrange(256)
                peer.send_raw(framing.frame(bytes(damaged)))
                answer = peer.exchange(ECHO)
                while answer.get("11") != "000777":
                    answers.append(answer)
                    answer = peer.receive()
        finally:
            peer.close()
    assert answers, "no damaged request was answered at all"
    text = repr(answers) + "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    for secret in secrets:
        assert secret not in text


def test_a_connection_the_host_ends_keeps_nothing_for_a_peer_that_does_not_read(issuer):
    """A peer sends echo tests, reads none of the answers, then a length header of 0
    (the stream cannot be trusted after it). The host ends the connection at once:
    what it still had buffered for the peer is dropped with the socket, not kept until
    the peer reads it, which a peer that never reads would make for ever, one socket
    per connection, past the bound on connections."""
    running = SmallBufferHost(issuer, max_connections=1)
    try:
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.settimeout(20)
        hog.connect(("127.0.0.1", running.port))
        echoes = 1500          # their answers are more than the kernel's buffers hold
        hog.sendall(framing.frame(spec.pack(ECHO)) * echoes + b"\x00\x00")
        assert _wait(lambda: running.host.connections == 0 and _served(running.port))
        received = 0
        try:
            while _read_frame(hog) is not None:
                received += 1
        except OSError:
            pass
        hog.close()
        assert received < echoes
    finally:
        running.close()


@pytest.mark.parametrize("field, value", [("41", "T\n2026 X"), ("41", "\x1b[2J\rABC"),
                                          ("43", "Shop\n" + " " * 35),
                                          ("42", "M\rINFO granted ")])
def test_control_characters_in_a_text_field_are_refused_and_not_logged(
        iso_host, terminal, caplog, field, value):
    """ISO 8583 ans fields hold printable characters. A client that puts a line break
    or a terminal escape in one (the terminal id is logged with every refusal) gets a
    format error, and the host's log gets no line it did not write itself."""
    body, _ = terminal.purchase(LI_WEI, 100)
    iso = m.request_to_iso(PURCHASE_REQUEST, body)
    iso[field] = value
    peer = Client(iso_host.port)
    with caplog.at_level(logging.DEBUG):
        try:
            answer = peer.exchange(iso)
            peer.exchange(ECHO)          # the host is done with the request
        finally:
            peer.close()
    for record in caplog.records:
        text = record.getMessage()
        assert all(c.isprintable() for c in text), text
    assert answer["39"] == "30" and not m.has_mac(answer)
