"""Notification status for balance inquiries: the rule table on its own (notify.decide),
then through the issuer with the outbox rows it writes."""
import itertools

import pytest

from posbridge.issuer import Policy, codes, notify
from posbridge.issuer.ledger import Cardholder
from posbridge.masking import mask_pans_in_text

from .test_balance_inquiry import LI_WEI, LIU_YANG, UNKNOWN, ZHANG_MIN, ZHAO_LEI, ask

ALL_KINDS = frozenset(codes.DEFAULT_ALERT_KINDS)


def holder(subscribed=True, kinds=ALL_KINDS, phone="13812345678", channel="sms"):
    return Cardholder(1, "Test", phone, subscribed, channel, frozenset(kinds))


BI = notify.BALANCE_INQUIRY
WP = notify.WRONG_PIN
SEC = notify.PIN_TRIES_EXCEEDED
SENT = (codes.SENT, "sms", "138****5678")

DECISIONS = [
    # kind, policy, cardholder, (status, channel, destination)
    (BI, Policy(), holder(), SENT),
    (BI, Policy(), holder(channel="app"), (codes.SENT, "app", "138****5678")),
    (BI, Policy(send_immediately=False), holder(), (codes.QUEUED, "sms", "138****5678")),
    (BI, Policy().without("balance_inquiry"), holder(), (codes.BANK_DOES_NOT_ALERT, None, None)),
    (BI, Policy().without("balance_inquiry"), holder(subscribed=False), (codes.BANK_DOES_NOT_ALERT, None, None)),
    (BI, Policy(), holder(subscribed=False), (codes.NOT_SUBSCRIBED, None, None)),
    (BI, Policy(), holder(subscribed=False, phone=None), (codes.NOT_SUBSCRIBED, None, None)),
    (BI, Policy(), holder(kinds={"purchase"}), (codes.KIND_NOT_CHOSEN, None, None)),
    (BI, Policy(), holder(kinds={"purchase"}, phone=None), (codes.KIND_NOT_CHOSEN, None, None)),
    (BI, Policy(), holder(phone=None), (codes.NO_PHONE, None, None)),
    (BI, Policy(), holder(phone="+8613812345678"), (codes.SENT, "sms", "+861******5678")),
    (BI, Policy().without("wrong_pin"), holder(), SENT),
    (WP, Policy(), holder(), SENT),
    (WP, Policy().without("wrong_pin"), holder(), (codes.BANK_DOES_NOT_ALERT, None, None)),
    (WP, Policy().without("balance_inquiry"), holder(), SENT),
    (WP, Policy(), holder(kinds={"balance_inquiry"}), (codes.KIND_NOT_CHOSEN, None, None)),
    (WP, Policy(), holder(subscribed=False), (codes.NOT_SUBSCRIBED, None, None)),
    (WP, Policy(), holder(phone=None), (codes.NO_PHONE, None, None)),
    # security alerts ignore the subscription and the kinds, not the phone
    (SEC, Policy(), holder(), (codes.SECURITY_ALERT, "sms", "138****5678")),
    (SEC, Policy(), holder(subscribed=False, kinds=()), (codes.SECURITY_ALERT, "sms", "138****5678")),
    (SEC, Policy(send_immediately=False).without("wrong_pin"), holder(channel="app"),
     (codes.SECURITY_ALERT, "app", "138****5678")),
    (SEC, Policy(), holder(phone=None), (codes.NO_PHONE, None, None)),
]


@pytest.mark.parametrize("kind,policy,cardholder,expected", DECISIONS)
def test_decision(kind, policy, cardholder, expected):
    d = notify.decide(kind, policy, cardholder)
    assert (d.status, d.channel, d.destination) == expected
    assert d.alerts == (expected[1] is not None)


@pytest.mark.parametrize("decision,cbor_map", [
    (notify.Decision(codes.SENT, "sms", "138****5678"), {1: 2, 2: "sms", 3: "138****5678"}),
    (notify.Decision(codes.NO_PHONE), {1: 7}),
    (notify.NOTHING, {1: 10}),
])
def test_decision_as_response_map(decision, cbor_map):
    assert decision.as_cbor_map() == cbor_map


def test_unknown_kind_and_purchase_without_amount_are_refused():
    with pytest.raises(ValueError, match="alert kind 'gossip'"):
        notify.decide("gossip", Policy(), holder())
    with pytest.raises(ValueError, match="needs the amount"):
        notify.decide("purchase", Policy(), holder())


# ---- through the issuer, on the demo cardholders --------------------------------------

DEMO = [
    # pan, policy, notification map, outbox rows
    (LI_WEI, Policy(), {1: 2, 2: "sms", 3: "138****5678"}, 1),
    (LI_WEI, Policy(send_immediately=False), {1: 1, 2: "sms", 3: "138****5678"}, 1),
    (LI_WEI, Policy().without("balance_inquiry"), {1: 6}, 0),
    (ZHANG_MIN, Policy(), {1: 3}, 0),
    ("4761730000000037", Policy(), {1: 2, 2: "app", 3: "137****1111"}, 1),
    ("4761730000000045", Policy(), {1: 7}, 0),
    ("6225880000000076", Policy(), {1: 4}, 0),
    (UNKNOWN, Policy(), {1: 10}, 0),
    (ZHAO_LEI, Policy(), {1: 11, 2: "sms", 3: "135****3333"}, 1),   # frozen: security alert
    (LIU_YANG, Policy(), {1: 10}, 0),
]


@pytest.mark.parametrize("pan,policy,notification,rows", DEMO)
def test_demo_cardholders(make_issuer, terminal, pan, policy, notification, rows):
    issuer = make_issuer(policy)
    fields = ask(issuer, terminal, pan, expiry="2101" if pan == LIU_YANG else "3012")
    assert fields[8] == notification
    outbox = issuer.ledger.outbox()
    assert len(outbox) == rows
    if rows:
        assert outbox[0]["status"] == ("queued" if notification[1] == codes.QUEUED else "sent")


def test_outbox_row_of_a_balance_inquiry(issuer, terminal):
    ask(issuer, terminal, LI_WEI)
    [row] = issuer.ledger.outbox()
    [tx] = issuer.ledger.transactions()
    assert row["transaction_id"] == tx["id"]
    assert (row["kind"], row["card_last4"], row["channel"], row["destination"], row["status"]) \
        == ("balance_inquiry", "0011", "sms", "138****5678", "sent")
    # the issuer's clock in local time (UTC+8), balances with their currency, terminal id
    assert row["text"] == ("Card ending 0011: balance inquiry at terminal T0000001, "
                           "2026-11-22 16:02. Available CNY 12,345.67, "
                           "ledger CNY 12,345.67.")


def test_local_time_follows_the_policy(make_issuer, terminal):
    ask(make_issuer(Policy(utc_offset_min=0)), terminal, LI_WEI)
    issuer = make_issuer()
    assert "2026-11-22 08:02" in issuer.ledger.outbox()[0]["text"]


def test_wrong_pin_and_security_alert_texts(issuer, terminal):
    for _ in range(3):
        ask(issuer, terminal, LI_WEI, pin="5555")
    texts = [r["text"] for r in issuer.ledger.outbox()]
    assert "wrong PIN" in texts[0] and texts[0].endswith("PIN is locked: 2.")
    assert texts[1].endswith("PIN is locked: 1.")
    assert texts[2].startswith("Security alert: card ending 0011: PIN tries exceeded")


def test_security_alert_goes_out_without_a_subscription(issuer, terminal):
    answers = [ask(issuer, terminal, ZHANG_MIN, pin="5555") for _ in range(3)]
    assert [a[8] for a in answers] == [{1: 3}, {1: 3},
                                       {1: codes.SECURITY_ALERT, 2: "sms", 3: "139****4321"}]
    [row] = issuer.ledger.outbox()
    assert (row["kind"], row["destination"]) == ("pin_tries_exceeded", "139****4321")


def test_security_alert_needs_a_phone(issuer, terminal):
    answers = [ask(issuer, terminal, "4761730000000045", pin="5555") for _ in range(3)]
    assert [a[8] for a in answers] == [{1: 7}, {1: 7}, {1: 7}]
    assert issuer.ledger.outbox() == []


@pytest.mark.parametrize("pan", [LI_WEI, "4761730000000037"])
def test_alert_texts_hold_last_4_only(issuer, terminal, pan):
    ask(issuer, terminal, pan)
    for _ in range(3):
        ask(issuer, terminal, pan, pin="5555")
    for row in issuer.ledger.outbox():
        text = row["text"] + row["destination"]
        assert pan not in text and pan[:6] not in text
        assert mask_pans_in_text(text) == text
        assert pan[-4:] in row["text"]
        assert "1234" not in row["text"]      # the PIN


def test_every_status_has_a_name():
    assert sorted(codes.NOTIFY_STATUSES) == list(range(1, 12))
    assert all(a != b for a, b in itertools.combinations(codes.NOTIFY_STATUSES.values(), 2))
