"""Reversals: a purchase credited back once, a repeated reversal acknowledged again
without a second credit, a reversal that comes before its purchase recorded so the late
purchase is declined, reversals of declined purchases, MACs, malformed requests, and
every request and response checked against docs/protocol.cddl."""
import pytest

from posbridge.link import cbor_profile
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST, REVERSAL_REQUEST
from posbridge.issuer import Faults, IssuerRequestError, Ledger, codes

from .request_builder import SecurityError, refused_unauthenticated
from .request_builder import TerminalRequestBuilder as Terminal
from .test_purchase import CHEN_JIE, LI_WEI, ZHANG_MIN, available, cddl_check, entries

# SQLite and PostgreSQL: the same answers and the same ledger
pytestmark = pytest.mark.both_backends

REVERSED, NOTHING, ALREADY = codes.REVERSED, codes.NOTHING_CHARGED, codes.ALREADY_REVERSED


def send_purchase(issuer, terminal, pan=LI_WEI, amount=1250, **kw):
    """(pending, fields of the answer) of a purchase that reached the issuer."""
    body, pending = terminal.purchase(pan, amount, **kw)
    return pending, terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)


def reverse(issuer, terminal, original, reason=1, **kw):
    """The board's view of the answer to a new reversal of `original`."""
    body, pending = terminal.reversal(original, reason, **kw)
    cddl_check("reversal-request", body)
    response = issuer.handle(REVERSAL_REQUEST, body)
    cddl_check("reversal-response", response)
    return terminal.check(response, pending)


def journal(issuer):
    return {(r["kind"], r["trace_number"]): r for r in issuer.ledger.journal()}


# ---- reversing a purchase -------------------------------------------------------------

def test_reversal_credits_the_purchase_back(issuer, terminal):
    purchase, answer = send_purchase(issuer, terminal)
    assert answer[3] == codes.APPROVED
    fields = reverse(issuer, terminal, purchase, reason=2)
    assert (fields[1], fields[2], fields[3], fields[12], fields[16]) == \
        (terminal.terminal_id, terminal.trace, codes.APPROVED, purchase.trace, REVERSED)
    assert set(fields) == {1, 2, 3, 8, 9, 12, 16, 17}
    assert fields[8] == {1: codes.SENT, 2: "sms", 3: "138****5678"}   # the credit alerted
    assert available(issuer, LI_WEI) == 1234567
    assert issuer.ledger.card_by_pan(LI_WEI).ledger == 1234567
    assert entries(issuer) == [("purchase", 1, -1250), ("reversal", 2, 1250)]
    rows = journal(issuer)
    p, r = rows["purchase", 1], rows["reversal", 2]
    assert p["reversed_by"] == r["id"] and r["original_id"] == p["id"]
    assert (r["original_trace"], bytes.fromhex(r["original_ksn"]), r["reversal_reason"],
            r["reversal_outcome"], r["posted"], r["card"]) == \
        (1, purchase.ksn, 2, REVERSED, 1250, "476173******0011")


def test_repeated_reversal_is_acknowledged_again_without_a_second_credit(issuer, terminal):
    purchase, _ = send_purchase(issuer, terminal)
    body, pending = terminal.reversal(purchase)
    first = issuer.handle(REVERSAL_REQUEST, body)
    for _ in range(3):
        assert issuer.handle(REVERSAL_REQUEST, body) == first     # byte for byte
    assert terminal.check(first, pending)[16] == REVERSED
    assert available(issuer, LI_WEI) == 1234567
    assert len(issuer.ledger.ledger_entries()) == 2


def test_a_second_reversal_of_the_same_purchase_is_already_reversed(issuer, terminal):
    purchase, _ = send_purchase(issuer, terminal)
    assert reverse(issuer, terminal, purchase)[16] == REVERSED
    assert reverse(issuer, terminal, purchase, reason=3)[16] == ALREADY
    assert available(issuer, LI_WEI) == 1234567
    assert [e[0] for e in entries(issuer)] == ["purchase", "reversal"]
    assert journal(issuer)["purchase", 1]["reversed_by"] == journal(issuer)["reversal", 2]["id"]


def test_purchase_repeated_after_its_reversal_gets_its_answer_but_no_debit(issuer, terminal):
    body, purchase = terminal.purchase(LI_WEI, 1250)
    answer = issuer.handle(PURCHASE_REQUEST, body)
    reverse(issuer, terminal, purchase)
    assert issuer.handle(PURCHASE_REQUEST, body) == answer      # the stored answer
    assert available(issuer, LI_WEI) == 1234567
    assert len(issuer.ledger.ledger_entries()) == 2


def test_reversal_credits_a_card_frozen_since(issuer, terminal):
    purchase, _ = send_purchase(issuer, terminal)
    issuer.ledger._conn.execute("UPDATE cards SET status = 'frozen'")
    assert reverse(issuer, terminal, purchase)[16] == REVERSED
    assert available(issuer, LI_WEI) == 1234567


def test_reversal_credits_what_was_charged_whatever_amount_it_states(issuer, terminal, caplog):
    purchase, _ = send_purchase(issuer, terminal)
    with caplog.at_level("WARNING", logger="posbridge"):
        assert reverse(issuer, terminal, purchase, amount=99999)[16] == REVERSED
    assert available(issuer, LI_WEI) == 1234567
    assert "differs from the purchase's" in caplog.text


# ---- nothing to credit ----------------------------------------------------------------

def test_reversal_before_its_purchase_is_recorded_and_the_purchase_declined(issuer, terminal):
    body, purchase = terminal.purchase(LI_WEI, 1250)            # built, not yet delivered
    fields = reverse(issuer, terminal, purchase)
    assert (fields[3], fields[16]) == (codes.APPROVED, NOTHING)
    # the purchase's frame arrives late: declined, not charged, nothing alerted
    late = issuer.handle(PURCHASE_REQUEST, body)
    cddl_check("purchase-response", late)
    answer = terminal.check(late, purchase)
    assert (answer[3], answer[8]) == (codes.DUPLICATE, {1: codes.NOTHING_TO_ALERT})
    assert 4 not in answer and 5 not in answer
    assert issuer.handle(PURCHASE_REQUEST, body) == late         # and again: the same 94
    assert available(issuer, LI_WEI) == 1234567
    assert issuer.ledger.ledger_entries() == [] and issuer.ledger.outbox() == []
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == 3   # no PIN was checked
    rows = journal(issuer)
    assert rows["purchase", 1]["reversed_by"] == rows["reversal", 2]["id"]
    assert rows["purchase", 1]["card"] == "476173******0011"
    # a later reversal of it has nothing to credit either
    assert reverse(issuer, terminal, purchase)[16] == NOTHING


def test_late_purchase_is_declined_even_with_a_wrong_pin(issuer, terminal):
    body, purchase = terminal.purchase(LI_WEI, 1250, pin="9999")
    reverse(issuer, terminal, purchase)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), purchase)[3] == codes.DUPLICATE
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == 3


@pytest.mark.parametrize("pan,amount,code", [
    (CHEN_JIE, 40000, codes.INSUFFICIENT_FUNDS),
    (LI_WEI, 600000, codes.EXCEEDS_LIMIT),
    ("4761730000000094", 1250, codes.INVALID_CARD),
])
def test_reversal_of_a_declined_purchase_credits_nothing(issuer, terminal, pan, amount, code):
    purchase, answer = send_purchase(issuer, terminal, pan, amount)
    assert answer[3] == code
    assert reverse(issuer, terminal, purchase)[16] == NOTHING
    assert issuer.ledger.ledger_entries() == []
    assert journal(issuer)["purchase", 1]["reversed_by"] is not None


def test_reversal_of_a_purchase_under_another_ksn_leaves_that_purchase_alone(issuer, terminal):
    # trace 5 was taken by purchase A; the board's purchase B reused it (94, not charged)
    # and its reversal names B's KSN: A must stay charged
    a, _ = send_purchase(issuer, terminal, trace=5)
    b, answer_b = send_purchase(issuer, terminal, trace=5)
    assert answer_b[3] == codes.DUPLICATE
    assert reverse(issuer, terminal, b)[16] == NOTHING
    assert available(issuer, LI_WEI) == 1234567 - 1250
    first = next(r for r in issuer.ledger.journal() if r["kind"] == "purchase")
    assert (first["trace_number"], first["response_code"], first["reversed_by"]) == \
        (5, codes.APPROVED, None)


def test_reversal_naming_a_balance_inquiry_credits_nothing(issuer, terminal):
    inquiry, pending = terminal.request(LI_WEI)
    issuer.handle(BALANCE_REQUEST, inquiry)
    fake = type("P", (), {"trace": pending.trace, "ksn": pending.ksn, "amount": 1000,
                          "currency": 156})
    assert reverse(issuer, terminal, fake)[16] == NOTHING
    assert issuer.ledger.ledger_entries() == []


def test_reversal_identity_reused_by_another_request_is_94_unacknowledged(issuer, terminal):
    purchase, _ = send_purchase(issuer, terminal)
    other, _ = send_purchase(issuer, terminal, ZHANG_MIN, 100)       # trace 2
    body, pending = terminal.reversal(purchase, trace=2)
    response = issuer.handle(REVERSAL_REQUEST, body)
    cddl_check("reversal-response", response)
    fields = terminal.check(response, pending)
    assert fields[3] == codes.DUPLICATE and 16 not in fields
    assert available(issuer, LI_WEI) == 1234567 - 1250
    # the board sends it again under a new trace and KSN
    assert reverse(issuer, terminal, purchase)[16] == REVERSED


@pytest.mark.parametrize("reason", [1, 2, 3])
def test_every_reason_is_recorded(issuer, terminal, reason):
    purchase, _ = send_purchase(issuer, terminal)
    reverse(issuer, terminal, purchase, reason=reason)
    assert journal(issuer)["reversal", 2]["reversal_reason"] == reason


# ---- MACs, malformed, failures --------------------------------------------------------

@pytest.mark.parametrize("key,value", [(8, 1), (12, 7), (13, bytes(12)), (14, 3), (2, 99)])
def test_tampered_reversal_is_refused_by_the_mac_check(issuer, terminal, key, value):
    purchase, _ = send_purchase(issuer, terminal)
    body, pending = terminal.reversal(purchase)
    fields = cbor_profile.decode(body)
    fields[key] = value
    tampered = cbor_profile.encode(fields)
    response = issuer.handle(REVERSAL_REQUEST, tampered)
    cddl_check("reversal-response", response)
    assert 16 not in refused_unauthenticated(response, tampered, terminal, pending)
    assert [r["kind"] for r in issuer.ledger.journal()] == ["purchase"]
    assert available(issuer, LI_WEI) == 1234567 - 1250


def test_reversal_from_a_rogue_terminal_is_refused(issuer, terminal):
    purchase, _ = send_purchase(issuer, terminal)
    rogue = Terminal(initial_key=bytes(16))
    body, pending = rogue.reversal(purchase)
    response = issuer.handle(REVERSAL_REQUEST, body)
    assert cbor_profile.decode(response)[3] == codes.SECURITY_VIOLATION
    with pytest.raises(SecurityError, match="MAC"):
        rogue.check(response, pending)
    assert available(issuer, LI_WEI) == 1234567 - 1250


MALFORMED = [
    ("reason 0", lambda f: {**f, 14: 0}, r"field 14 \(reason\) is out of range"),
    ("reason 5", lambda f: {**f, 14: 5}, r"field 14 \(reason\) is out of range"),
    ("no original trace", lambda f: {k: v for k, v in f.items() if k != 12},
     r"field 12 \(original trace number\) is missing"),
    ("original trace 0", lambda f: {**f, 12: 0}, r"field 12 \(original trace number\) is out"),
    ("short original KSN", lambda f: {**f, 13: bytes(10)}, r"field 13 \(original KSN\) is out"),
    ("amount 0", lambda f: {**f, 8: 0}, r"field 8 \(amount\) is out of range"),
    ("card", lambda f: {**f, 4: {1: "4761730000000011", 2: "3012", 3: "201"}}, "unknown field 4"),
    ("PIN block", lambda f: {**f, 5: bytes(16)}, "unknown field 5"),
]


@pytest.mark.parametrize("name,change,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_reversal_is_a_request_error(issuer, terminal, name, change, message):
    purchase, _ = send_purchase(issuer, terminal)
    fields = cbor_profile.decode(terminal.reversal(purchase)[0])
    with pytest.raises(IssuerRequestError, match="reversal-request: .*" + message) as err:
        issuer.handle(REVERSAL_REQUEST, cbor_profile.encode(change(fields)))
    assert LI_WEI not in str(err.value)


def test_failed_reversal_is_96_unjournaled_and_processed_when_sent_again(issuer, terminal,
                                                                         mocker):
    purchase, _ = send_purchase(issuer, terminal)
    body, pending = terminal.reversal(purchase)
    mocker.patch.object(Ledger, "post", side_effect=RuntimeError("disk on fire"))
    response = issuer.handle(REVERSAL_REQUEST, body)
    cddl_check("reversal-response", response)
    fields = terminal.check(response, pending)
    assert fields[3] == codes.SYSTEM_MALFUNCTION and 16 not in fields
    assert [r["kind"] for r in issuer.ledger.journal()] == ["purchase"]      # rolled back
    assert journal(issuer)["purchase", 1]["reversed_by"] is None
    mocker.stopall()
    assert terminal.check(issuer.handle(REVERSAL_REQUEST, body), pending)[16] == REVERSED
    assert available(issuer, LI_WEI) == 1234567


def test_bad_mac_fault_applies_to_reversals(make_issuer, terminal):
    purchase, _ = send_purchase(make_issuer(), terminal)
    body, pending = terminal.reversal(purchase)
    bad = make_issuer(faults=Faults(bad_mac=True)).handle(REVERSAL_REQUEST, body)
    with pytest.raises(SecurityError, match="MAC"):
        terminal.check(bad, pending)
    assert terminal.check(make_issuer().handle(REVERSAL_REQUEST, body), pending)[16] == REVERSED


def test_reversal_sizes(issuer, terminal):
    purchase, _ = send_purchase(issuer, terminal)
    body, _ = terminal.reversal(purchase)
    assert len(body) == 68                    # docs/protocol.md
    # 45, the request digest, and the notification
    assert len(issuer.handle(REVERSAL_REQUEST, body)) == 102  # credited back, SMS sent
    body, _ = terminal.reversal(purchase)
    assert len(issuer.handle(REVERSAL_REQUEST, body)) == 84   # reversed before: no alert
    worst = Terminal("T" * 16)
    fake = type("P", (), {"trace": 999999, "ksn": bytes(12), "amount": 999_999_999_999,
                          "currency": 999})
    body, _ = worst.reversal(fake, trace=999999, now=2 ** 63 - 1)
    cddl_check("reversal-request", body)
    assert len(body) == 95 <= 256 - 4
