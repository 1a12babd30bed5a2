"""The issuer's answers to balance requests built by the board's own code: every
response code, duplicates, the PIN-try counter, MACs both ways, and every response
checked against docs/protocol.cddl."""
import datetime

import pytest

from posbridge.link import cbor_profile
from posbridge.link.protocol import BALANCE_REQUEST
from posbridge.issuer import dukpt
from posbridge.issuer import IssuerRequestError, IssuerSecurityError, Ledger
from posbridge.issuer import codes, outbox
from posbridge.issuer.cards import MAX_PIN_TRIES
from tests.schema import schema_for

from .request_builder import (BDK, NOW, provisioned_terminal, rebound,
                              refused_unauthenticated, resign)
from .request_builder import TerminalRequestBuilder as Terminal

# SQLite and PostgreSQL: the same answers and the same ledger
pytestmark = pytest.mark.both_backends

LI_WEI = "4761730000000011"       # subscribed, SMS, 138****5678
ZHANG_MIN = "4761730000000029"    # not subscribed
LIU_YANG = "6225880000000050"     # expired 2101
ZHAO_LEI = "6225880000000068"     # frozen
UNKNOWN = "4761730000000094"      # valid Luhn, not on file


def cddl_check(body):
    schema_for("balance-response").validate_cbor(bytes(body))


def ask(issuer, terminal, pan, **kw):
    body, pending = terminal.request(pan, **kw)
    response = issuer.handle(BALANCE_REQUEST, body)
    cddl_check(response)
    return terminal.check(response, pending)


def tries_of(issuer, pan):
    return issuer.ledger.card_by_pan(pan).pin_tries_left


# ---- response codes -------------------------------------------------------------------

CASES = [
    # pan, pin, card expiry sent, expected code
    (LI_WEI, "1234", "3012", codes.APPROVED),
    (ZHANG_MIN, "1234", "3012", codes.APPROVED),
    (UNKNOWN, "1234", "3012", codes.INVALID_CARD),
    (ZHAO_LEI, "1234", "3012", codes.RESTRICTED_CARD),
    (LIU_YANG, "1234", "2101", codes.EXPIRED_CARD),
    (LIU_YANG, "1234", "3012", codes.EXPIRED_CARD),     # expired on file, not on the card
    (LI_WEI, "1234", "2610", codes.EXPIRED_CARD),       # expired on the card, not on file
    (LI_WEI, "1234", "2613", codes.EXPIRED_CARD),       # impossible month
    (LI_WEI, "4321", "3012", codes.INCORRECT_PIN),
    (LI_WEI, "12345", "3012", codes.INCORRECT_PIN),
]


@pytest.mark.parametrize("pan,pin,expiry,code", CASES)
def test_response_code(issuer, terminal, pan, pin, expiry, code):
    fields = ask(issuer, terminal, pan, pin=pin, expiry=expiry)
    assert fields[3] == code
    assert fields[1] == terminal.terminal_id and fields[2] == terminal.trace
    approved = code == codes.APPROVED
    for key in (4, 5, 6, 7):
        assert (key in fields) == approved
    assert (10 in fields) == (code == codes.INCORRECT_PIN)


def test_approval_carries_balances_and_a_six_digit_code(issuer, terminal):
    fields = ask(issuer, terminal, LI_WEI)
    assert fields[4].isdigit() and len(fields[4]) == 6
    assert (fields[5], fields[6], fields[7]) == (1234567, 1234567, 156)


def test_expiry_month_is_valid_to_its_last_day(issuer, terminal):
    # 2026-11-30 23:59 at UTC+8 is still November: a card expiring 2611 is good
    tz = datetime.timezone(datetime.timedelta(hours=8))
    # (the issuer's clock decides, whatever time the terminal says)
    last_minute = int(datetime.datetime(2026, 11, 30, 23, 59, tzinfo=tz).timestamp())
    issuer._clock = lambda: last_minute
    # the terminal's clock a minute fast (December), within the skew the issuer allows
    assert ask(issuer, terminal, LI_WEI, expiry="2611", now=last_minute + 60)[3] == \
        codes.APPROVED
    issuer._clock = lambda: last_minute + 60
    assert ask(issuer, terminal, LI_WEI, expiry="2611", now=last_minute)[3] == \
        codes.EXPIRED_CARD


def test_every_answer_is_journaled(issuer, terminal):
    for pan, pin, expiry, _ in CASES:
        ask(issuer, terminal, pan, pin=pin, expiry=expiry)
    rows = issuer.ledger.transactions()
    assert [r["response_code"] for r in rows] == [c for *_, c in CASES]
    assert all(r["kind"] == "balance_inquiry" and r["request_time"] == NOW for r in rows)


# ---- PIN tries ------------------------------------------------------------------------

def test_three_wrong_pins_lock_the_pin_with_a_security_alert(issuer, terminal):
    answers = [ask(issuer, terminal, LI_WEI, pin="9999") for _ in range(MAX_PIN_TRIES)]
    assert [(a[3], a[10]) for a in answers] == [("55", 2), ("55", 1), ("75", 0)]
    assert [a[8][1] for a in answers] == [codes.SENT, codes.SENT, codes.SECURITY_ALERT]
    assert answers[-1][8] == {1: codes.SECURITY_ALERT, 2: "sms", 3: "138****5678"}
    assert tries_of(issuer, LI_WEI) == 0
    kinds = [r["kind"] for r in issuer.ledger.outbox()]
    assert kinds == ["wrong_pin", "wrong_pin", "pin_tries_exceeded"]
    # locked: even the right PIN is refused, and nothing more is alerted
    locked = ask(issuer, terminal, LI_WEI)
    assert (locked[3], locked[10], locked[8]) == ("75", 0, {1: codes.NOTHING_TO_ALERT})
    assert 5 not in locked
    assert len(issuer.ledger.outbox()) == 3


def test_right_pin_resets_the_tries(issuer, terminal):
    assert ask(issuer, terminal, LI_WEI, pin="0000")[10] == 2
    assert ask(issuer, terminal, LI_WEI, pin="0000")[10] == 1
    assert ask(issuer, terminal, LI_WEI)[3] == codes.APPROVED
    assert tries_of(issuer, LI_WEI) == MAX_PIN_TRIES


@pytest.mark.parametrize("pan", [UNKNOWN, ZHAO_LEI, LIU_YANG])
def test_declines_before_the_pin_leave_the_tries_alone(issuer, terminal, pan):
    ask(issuer, terminal, pan, pin="9999", expiry="2101" if pan == LIU_YANG else "3012")
    if pan != UNKNOWN:
        assert tries_of(issuer, pan) == MAX_PIN_TRIES


def test_undecipherable_pin_block_is_96_and_costs_no_try(issuer, terminal):
    body, pending = terminal.request(LI_WEI)
    fields = cbor_profile.decode(body)
    fields[5] = bytes(16)                     # MAC'd again, so only the block is wrong
    body = resign(fields)
    response = issuer.handle(BALANCE_REQUEST, body)
    cddl_check(response)
    assert terminal.check(response, rebound(pending, body))[3] == codes.SYSTEM_MALFUNCTION
    assert tries_of(issuer, LI_WEI) == MAX_PIN_TRIES


def test_pin_block_bound_to_another_pan_is_not_a_wrong_pin(issuer, terminal):
    body, pending = terminal.request(ZHANG_MIN)   # block made for Zhang Min's PAN
    fields = cbor_profile.decode(body)
    fields[4] = {**fields[4], 1: LI_WEI}
    body = resign(fields)
    response = issuer.handle(BALANCE_REQUEST, body)
    assert terminal.check(response, rebound(pending, body))[3] == codes.SYSTEM_MALFUNCTION
    assert tries_of(issuer, LI_WEI) == MAX_PIN_TRIES


# ---- duplicates -----------------------------------------------------------------------

def test_repeated_request_gets_the_original_answer(issuer, terminal):
    body, pending = terminal.request(LI_WEI)
    first = issuer.handle(BALANCE_REQUEST, body)
    again = issuer.handle(BALANCE_REQUEST, body)
    assert again == first                      # same approval code, same MAC
    assert len(issuer.ledger.transactions()) == 1
    assert len(issuer.ledger.outbox()) == 1    # alerted once


def test_repeated_wrong_pin_costs_one_try(issuer, terminal):
    body, pending = terminal.request(LI_WEI, pin="9999")
    for _ in range(3):
        assert terminal.check(issuer.handle(BALANCE_REQUEST, body), pending)[10] == 2
    assert tries_of(issuer, LI_WEI) == 2


def test_identity_reused_by_another_request_is_94(issuer, terminal):
    terminal.request(LI_WEI, trace=42)
    body, _ = terminal.request(LI_WEI, trace=42)
    issuer.handle(BALANCE_REQUEST, body)
    other, pending = terminal.request(ZHANG_MIN, trace=42)     # new KSN, other card
    response = issuer.handle(BALANCE_REQUEST, other)
    cddl_check(response)
    fields = terminal.check(response, pending)                  # MAC'd under the new KSN
    assert (fields[3], fields[8]) == (codes.DUPLICATE, {1: codes.NOTHING_TO_ALERT})
    # the 94 is journaled under its own KSN (no card, nothing changed), so that the
    # same bytes again get the same 94
    assert [r["response_code"] for r in issuer.ledger.transactions()] == ["00", "94"]
    assert issuer.handle(BALANCE_REQUEST, other) == response
    assert len(issuer.ledger.outbox()) == 1


def test_same_trace_on_another_terminal_is_not_a_duplicate(issuer):
    a = Terminal("T0000001")
    b = provisioned_terminal(issuer.ledger, "T0000002", "90123457")
    assert ask(issuer, a, LI_WEI, trace=7)[3] == codes.APPROVED
    assert ask(issuer, b, LI_WEI, trace=7)[3] == codes.APPROVED


def test_duplicate_survives_a_restart(make_issuer, terminal):
    body, _ = terminal.request(LI_WEI)
    first = make_issuer().handle(BALANCE_REQUEST, body)
    assert make_issuer().handle(BALANCE_REQUEST, body) == first


# ---- MACs -----------------------------------------------------------------------------

def test_response_mac_recomputed_with_the_issuer_keys(issuer, terminal):
    body, _ = terminal.request(LI_WEI)
    request = cbor_profile.decode(body)
    fields = cbor_profile.decode(issuer.handle(BALANCE_REQUEST, body))
    mac = fields.pop(15)
    assert fields[9] == request[6]
    assert mac == dukpt.response_mac(BDK, request[6], cbor_profile.encode(fields), 8)
    # the response key (2001) is not the request key (2000)
    assert mac != dukpt.aes_cmac(
        dukpt.derive_working_key(BDK, request[6], dukpt.KeyUsage.MAC_GENERATION),
        cbor_profile.encode(fields), 8)


def _flip(body, offset):
    tampered = bytearray(body)
    tampered[offset] ^= 0x01
    return bytes(tampered)


@pytest.mark.parametrize("what", ["pan", "expiry", "trace", "time", "pin block", "mac"])
def test_tampered_request_is_refused_63_bound_to_the_altered_bytes(issuer, terminal, what,
                                                                 caplog):
    body, pending = terminal.request(LI_WEI)
    fields = cbor_profile.decode(body)
    if what == "pan":
        fields[4] = {**fields[4], 1: ZHANG_MIN}
    elif what == "expiry":
        fields[4] = {**fields[4], 2: "3101"}
    elif what == "trace":
        fields[2] += 1
    elif what == "time":
        fields[3] += 1
    elif what == "pin block":
        fields[5] = _flip(fields[5], 3)
    else:
        fields[7] = _flip(fields[7], 7)
    tampered = cbor_profile.encode(fields)
    response = issuer.handle(BALANCE_REQUEST, tampered)
    cddl_check(response)
    refused_unauthenticated(response, tampered, terminal, pending)
    assert issuer.ledger.transactions() == []
    assert tries_of(issuer, LI_WEI) == MAX_PIN_TRIES
    assert "request MAC does not match" in caplog.text


def test_request_under_an_unknown_key_set_is_refused(issuer):
    other = Terminal(initial_key_id=bytes.fromhex("ABCDEF0190123456"))
    body, _ = other.request(LI_WEI)
    with pytest.raises(IssuerSecurityError, match="no key set for BDK id ABCDEF01"):
        issuer.handle(BALANCE_REQUEST, body)


def test_request_from_a_terminal_with_a_wrong_initial_key_is_refused(issuer):
    rogue = Terminal(initial_key=bytes(16))
    body, pending = rogue.request(LI_WEI)
    response = issuer.handle(BALANCE_REQUEST, body)
    # 63 under the key set's keys, which are not the rogue's: it cannot read it either
    assert cbor_profile.decode(response)[3] == codes.SECURITY_VIOLATION
    with pytest.raises(Exception, match="MAC"):
        rogue.check(response, pending)
    assert issuer.ledger.transactions() == []


@pytest.mark.parametrize("counter", [0, 0x0001FFFF])
def test_ksn_counter_the_standard_forbids_is_refused(issuer, terminal, counter):
    body, _ = terminal.request(LI_WEI)
    fields = cbor_profile.decode(body)
    fields[6] = fields[6][:8] + counter.to_bytes(4, "big")
    with pytest.raises(IssuerSecurityError, match="transaction counter"):
        issuer.handle(BALANCE_REQUEST, cbor_profile.encode(fields))


# ---- malformed requests ---------------------------------------------------------------

def _request_fields(terminal):
    return cbor_profile.decode(terminal.request(LI_WEI)[0])


MALFORMED = [
    ("not CBOR", lambda f: b"\xff\x00", "not CBOR"),
    ("trailing bytes", lambda f: cbor_profile.encode(f) + b"\x00", "deterministic"),
    ("not a map", lambda f: cbor_profile.encode([1, 2]), "not a map"),
    ("no terminal", lambda f: {k: v for k, v in f.items() if k != 1}, r"field 1 \(terminal id\) is missing"),
    ("long terminal", lambda f: {**f, 1: "T" * 17}, r"field 1 \(terminal id\) is out of range"),
    ("trace 0", lambda f: {**f, 2: 0}, r"field 2 \(trace number\) is out of range"),
    ("trace text", lambda f: {**f, 2: "1"}, r"field 2 \(trace number\) is not int"),
    ("time negative", lambda f: {**f, 3: -1}, r"field 3 \(time\)"),
    ("card not map", lambda f: {**f, 4: "x"}, r"field 4 \(card\) is not dict"),
    ("card extra key", lambda f: {**f, 4: {**f[4], 4: "x"}}, r"field 4 \(card\) needs"),
    ("short PAN", lambda f: {**f, 4: {**f[4], 1: "12345"}}, r"card PAN\) is out of range"),
    ("expiry letters", lambda f: {**f, 4: {**f[4], 2: "30AB"}}, r"card expiry"),
    ("pin block short", lambda f: {**f, 5: bytes(8)}, r"field 5 \(PIN block\)"),
    ("ksn text", lambda f: {**f, 6: "x" * 12}, r"field 6 \(KSN\) is not bytes"),
    ("mac long", lambda f: {**f, 7: bytes(16)}, r"field 7 \(MAC\) is out of range"),
    ("unknown key", lambda f: {**f, 8: 1}, "unknown field 8"),
    ("bool trace", lambda f: {**f, 2: True}, r"field 2 \(trace number\) is not int"),
]


@pytest.mark.parametrize("name,change,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request_is_a_request_error(issuer, terminal, name, change, message):
    changed = change(_request_fields(terminal))
    body = changed if isinstance(changed, bytes) else cbor_profile.encode(changed)
    with pytest.raises(IssuerRequestError, match=message) as err:
        issuer.handle(BALANCE_REQUEST, body)
    assert LI_WEI not in str(err.value)
    assert issuer.ledger.transactions() == []


# ---- failures inside the issuer -------------------------------------------------------

def test_unexpected_failure_is_a_macd_96_and_changes_nothing(issuer, terminal, mocker):
    ask(issuer, terminal, LI_WEI, pin="0000")                   # tries 2
    mocker.patch.object(outbox, "add", side_effect=RuntimeError("disk on fire"))
    body, pending = terminal.request(LI_WEI, pin="0000")        # would make it 1 + alert
    response = issuer.handle(BALANCE_REQUEST, body)
    cddl_check(response)
    fields = terminal.check(response, pending)
    assert (fields[3], fields[8]) == (codes.SYSTEM_MALFUNCTION, {1: codes.NOTHING_TO_ALERT})
    assert tries_of(issuer, LI_WEI) == 2                        # rolled back
    assert [r["response_code"] for r in issuer.ledger.transactions()] == ["55", "96"]
    assert issuer.handle(BALANCE_REQUEST, body) == response      # the 96 is journaled


def test_96_is_answered_even_when_the_journal_fails(issuer, terminal, mocker):
    mocker.patch.object(Ledger, "record_transaction", side_effect=RuntimeError("locked"))
    body, pending = terminal.request(LI_WEI)
    fields = terminal.check(issuer.handle(BALANCE_REQUEST, body), pending)
    assert fields[3] == codes.SYSTEM_MALFUNCTION
    assert issuer.ledger.outbox() == []


def test_unexpected_failure_log_holds_no_pan(issuer, terminal, mocker, caplog):
    mocker.patch.object(Ledger, "card_by_pan", side_effect=RuntimeError(f"bad {LI_WEI}"))
    body, _ = terminal.request(LI_WEI)
    with caplog.at_level("DEBUG", logger="posbridge"):
        issuer.handle(BALANCE_REQUEST, body)
    assert "96" in caplog.text and LI_WEI not in caplog.text


def test_issuer_log_masks_the_pan(issuer, terminal, caplog):
    with caplog.at_level("INFO", logger="posbridge"):
        ask(issuer, terminal, LI_WEI)
    assert "476173******0011" in caplog.text and LI_WEI not in caplog.text


def test_board_requests_match_the_cddl(terminal):
    body, _ = terminal.request(LI_WEI)
    schema_for("balance-request").validate_cbor(body)
