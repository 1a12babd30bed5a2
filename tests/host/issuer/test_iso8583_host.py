"""`posbridge issuer serve`: the issuer as an ISO 8583 host over TCP. Requests built as
the board builds them, mapped to ISO 8583 as the bridge maps them, answered over a real
socket; and everything a broken or hostile peer can send."""
import hashlib
import socket
import threading

import pytest

from posbridge.link import iso8583_map as m
from posbridge.link.iso8583_framing import frame
from posbridge.link import iso8583_spec as spec
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST, REVERSAL_REQUEST

from tests.host.issuer.request_builder import provisioned_terminal
from tests.iso8583_net import Client, RunningHost


def framing_frame(iso):
    return frame(spec.pack(iso))

LI_WEI = "4761730000000011"


@pytest.fixture
def host(issuer):
    running = RunningHost(issuer, read_timeout=0.5)
    yield running
    running.close()


@pytest.fixture
def client(host):
    c = Client(host.port)
    yield c
    c.close()


def ask(client, terminal, mtype, built):
    """The board's CBOR answer to `built` through the host, checked as the board does."""
    body, pending = built
    iso = m.request_to_iso(mtype, body)
    answer = client.exchange(iso)
    assert answer["t"] == m.RESPONSE_MTI[iso["t"]]
    assert (answer["11"], answer["41"]) == (iso["11"], iso["41"])
    assert m.has_mac(answer), answer.get("39")
    _, response = m.iso_to_response(answer, hashlib.sha256(body).digest())
    return terminal.check(response, pending)


def test_balance_purchase_and_reversal_over_tcp(client, terminal, issuer):
    balance = ask(client, terminal, BALANCE_REQUEST, terminal.request(LI_WEI))
    assert balance[3] == "00" and balance[5] == 1234567
    before = issuer.ledger.card_by_pan(LI_WEI).available
    built = terminal.purchase(LI_WEI, 2500)
    purchase = ask(client, terminal, PURCHASE_REQUEST, built)
    assert purchase[3] == "00" and purchase[5] == before - 2500
    assert issuer.ledger.card_by_pan(LI_WEI).available == before - 2500
    reversal = ask(client, terminal, REVERSAL_REQUEST, terminal.reversal(built[1]))
    assert reversal[3] == "00" and reversal[16] == 1
    assert issuer.ledger.card_by_pan(LI_WEI).available == before


def test_the_same_request_twice_is_charged_once(client, terminal, issuer):
    before = issuer.ledger.card_by_pan(LI_WEI).available
    built = terminal.purchase(LI_WEI, 700)
    first = ask(client, terminal, PURCHASE_REQUEST, built)
    again = ask(client, terminal, PURCHASE_REQUEST, built)
    assert first == again
    assert issuer.ledger.card_by_pan(LI_WEI).available == before - 700


def test_a_wrong_pin_answers_the_tries_left_in_a_private_field(client, terminal):
    body, pending = terminal.request(LI_WEI, pin="9999")
    answer = client.exchange(m.request_to_iso(BALANCE_REQUEST, body))
    assert answer["39"] == "55" and answer["120"] == "2"
    assert "128" in answer and "64" not in answer     # a secondary bitmap: MAC in 128


def test_sign_on_and_echo_are_answered_0810(client):
    for code in (spec.SIGN_ON, spec.ECHO_TEST):
        answer = client.exchange(m.network(code, 42, 1795334400))
        assert answer == {"t": "0810", "7": "1122080000", "11": "000042", "39": "00",
                          "70": code}


# ---- a broken or hostile peer ------------------------------------------------------


def test_garbage_gets_nothing_and_the_host_goes_on(host, client, terminal):
    client.send_raw(b"\x00\x05hello")
    client.send_raw(b"\x00\x03\x99\x99\x99")      # MTI 9999: not ours
    answer = client.exchange(m.network(spec.ECHO_TEST, 1, 1795334400))
    assert answer["t"] == "0810" and answer["11"] == "000001"


@pytest.mark.parametrize("header", [b"\x00\x00", b"\xff\xff", b"\x08\x01"])
def test_a_bad_length_header_closes_that_connection_only(host, client, header):
    other = Client(host.port)
    client.send_raw(header + b"\x01\x00")
    assert client.closed_by_host()
    assert other.exchange(m.network(spec.ECHO_TEST, 7, 1795334400))["39"] == "00"
    other.close()


def test_a_truncated_message_times_out_and_others_are_served(host, client):
    client.send_raw(b"\x00\x40\x02\x00")          # 64 bytes announced, 2 sent
    other = Client(host.port)
    assert other.exchange(m.network(spec.ECHO_TEST, 8, 1795334400))["39"] == "00"
    assert client.closed_by_host()                  # after the read timeout
    other.close()


def test_a_client_gone_mid_message_leaves_the_host_serving(host):
    gone = Client(host.port)
    gone.send_raw(b"\x00\x40\x02\x00\x70")
    gone.close()
    c = Client(host.port)
    assert c.exchange(m.network(spec.SIGN_ON, 9, 1795334400))["39"] == "00"
    c.close()


def test_a_missing_field_is_a_format_error_with_stan_and_terminal(client, terminal, issuer):
    body, _ = terminal.purchase(LI_WEI, 100)
    iso = m.request_to_iso(PURCHASE_REQUEST, body)
    del iso["4"]
    before = issuer.ledger.card_by_pan(LI_WEI).available
    answer = client.exchange(iso)
    assert answer == {"t": "0210", "11": iso["11"], "41": iso["41"], "39": "30",
                      "7": iso["7"]}
    assert issuer.ledger.card_by_pan(LI_WEI).available == before


@pytest.mark.parametrize("change", [
    {"48": "1795334401"},       # the time behind field 7: 7 no longer matches
    {"37": "612208000001"},     # a retrieval reference number not derived
    {"25": "08"},
    {"3": "310000"},
    {"22": "902"},
    {"120": "3"},               # a field of the spec with no place in a 0200
])
def test_an_inconsistent_or_unknown_field_is_a_format_error(client, terminal, change):
    body, _ = terminal.purchase(LI_WEI, 100)
    iso = {**m.request_to_iso(PURCHASE_REQUEST, body), **change}
    answer = client.exchange(iso)
    assert answer["t"] == "0210" and answer["39"] == "30" and not m.has_mac(answer)


def test_an_undecodable_financial_request_is_answered_format_error(client, terminal):
    body, _ = terminal.purchase(LI_WEI, 100)
    data = spec.pack(m.request_to_iso(PURCHASE_REQUEST, body))
    cut = data[:-5]                               # field 64 cut short
    client.send_raw(len(cut).to_bytes(2, "big") + cut)
    answer = client.receive()
    assert answer["t"] == "0210" and answer["39"] == "30" and answer["11"] == "000001"
    assert answer["41"] == "T0000001"


def test_a_request_under_an_unknown_key_set_is_refused_63_without_mac(client, terminal):
    body, _ = terminal.request(LI_WEI)
    iso = m.request_to_iso(BALANCE_REQUEST, body)
    iso["53"] = "FFFFFFFF" + iso["53"][8:]
    answer = client.exchange(iso)
    assert answer["39"] == "63" and not m.has_mac(answer)


def test_many_connections_at_once(host, issuer):
    # a terminal each: a terminal's KSN counters only move forward, and requests on
    # different connections may arrive in any order
    terminals = [provisioned_terminal(issuer.ledger, f"T10000{i:02d}", f"901234{i:02d}")
                 for i in range(12)]
    before = issuer.ledger.card_by_pan(LI_WEI).available
    codes = []

    def one(terminal):
        c = Client(host.port)
        codes.append(ask(c, terminal, PURCHASE_REQUEST, terminal.purchase(LI_WEI, 10))[3])
        c.close()
    threads = [threading.Thread(target=one, args=(t,)) for t in terminals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == ["00"] * 12
    assert issuer.ledger.card_by_pan(LI_WEI).available == before - 120


def test_connections_beyond_the_bound_are_closed_and_the_rest_served(issuer):
    running = RunningHost(issuer, max_connections=2)
    try:
        first, second = Client(running.port), Client(running.port)
        assert first.exchange(m.network(spec.ECHO_TEST, 1, 1795334400))["39"] == "00"
        assert second.exchange(m.network(spec.ECHO_TEST, 2, 1795334400))["39"] == "00"
        third = Client(running.port)
        assert third.closed_by_host()
        assert first.exchange(m.network(spec.ECHO_TEST, 3, 1795334400))["39"] == "00"
        for c in (first, second, third):
            c.close()
    finally:
        running.close()


def test_a_peer_that_never_reads_its_answers_is_let_go(issuer):
    running = RunningHost(issuer, write_timeout=0.5)
    try:
        hog = Client(running.port)
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        echo = framing_frame(m.network(spec.ECHO_TEST, 1, 1795334400))
        try:
            for _ in range(20000):              # until the host stops reading it
                hog.sock.sendall(echo)
        except OSError:
            pass
        other = Client(running.port)
        assert other.exchange(m.network(spec.ECHO_TEST, 5, 1795334400))["39"] == "00"
        other.close()
        hog.close()
    finally:
        running.close()


def test_an_unasked_0810_is_not_answered(client):
    client.send(m.network_response(m.network(spec.ECHO_TEST, 11, 1795334400)))
    # the next answer is to the echo test after it: nothing came back for the 0810
    assert client.exchange(m.network(spec.ECHO_TEST, 12, 1795334400))["11"] == "000012"
