"""Notification status for balance inquiries and purchases: the rule table on its own
(notify.decide; test_decision_table.py has the whole table), then through the issuer
with the outbox rows it writes."""
import itertools

import pytest

from posbridge.issuer import Faults, Issuer, Ledger, Policy, codes, notify, preferences
from posbridge.issuer.preferences import Cardholder
from posbridge.link.pan import mask_pans_in_text
from posbridge.link.protocol import PURCHASE_REQUEST, REVERSAL_REQUEST

from .conftest import ISSUER_NOW
from .request_builder import provisioned_terminal
from .test_balance_inquiry import LI_WEI, LIU_YANG, UNKNOWN, ZHANG_MIN, ZHAO_LEI, ask

ALL_KINDS = frozenset(codes.DEFAULT_ALERT_KINDS)


def holder(subscribed=True, kinds=ALL_KINDS, phone="13812345678", channel="sms",
           threshold=None):
    return Cardholder(1, "Test", phone, subscribed, channel, frozenset(kinds),
                      threshold=threshold)


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


PU = notify.PURCHASE
PURCHASES = [
    # policy, cardholder, amount, (status, channel, destination, detail)
    (Policy(), holder(), 1250, (*SENT, None)),
    (Policy(), holder(channel="app"), 1, (codes.SENT, "app", "138****5678", None)),
    (Policy(send_immediately=False), holder(), 1250, (codes.QUEUED, "sms", "138****5678", None)),
    (Policy().without("purchase"), holder(), 1250, (codes.BANK_DOES_NOT_ALERT, None, None, None)),
    (Policy().without("balance_inquiry", "wrong_pin"), holder(), 1250, (*SENT, None)),
    (Policy(), holder(subscribed=False), 1250, (codes.NOT_SUBSCRIBED, None, None, None)),
    (Policy(), holder(kinds={"balance_inquiry"}), 1250, (codes.KIND_NOT_CHOSEN, None, None, None)),
    (Policy(), holder(threshold=10000), 9999, (codes.BELOW_THRESHOLD, None, None, "100.00")),
    (Policy(), holder(threshold=10000), 10000, (*SENT, None)),    # at the threshold: alerted
    (Policy(), holder(threshold=10000, phone=None), 9999, (codes.BELOW_THRESHOLD, None, None, "100.00")),
    (Policy(), holder(threshold=10000, phone=None), 10000, (codes.NO_PHONE, None, None, None)),
    (Policy(), holder(threshold=10000, kinds={"wrong_pin"}), 1, (codes.KIND_NOT_CHOSEN, None, None, None)),
    (Policy().without("purchase"), holder(threshold=10000), 1, (codes.BANK_DOES_NOT_ALERT, None, None, None)),
]


@pytest.mark.parametrize("policy,cardholder,amount,expected", PURCHASES)
def test_purchase_decision(policy, cardholder, amount, expected):
    d = notify.decide(PU, policy, cardholder, amount=amount, currency=156, now=1795305600)
    assert (d.status, d.channel, d.destination, d.detail) == expected


@pytest.mark.parametrize("threshold,currency,detail", [
    (10000, 156, "100.00"), (5, 156, "0.05"), (123456, 840, "1,234.56"), (500, 392, "500"),
])
def test_threshold_detail_in_the_currency(threshold, currency, detail):
    # the threshold is in the policy's currency, and compared with purchases in it only
    d = notify.decide(PU, Policy(currency=currency), holder(threshold=threshold), amount=1,
                      currency=currency)
    assert d.as_cbor_map() == {1: codes.BELOW_THRESHOLD, 4: detail}


def test_purchase_text():
    fields = dict(last4="0011", amount=1250, currency=156, merchant="DEMO SHOP",
                  when="2026-11-22 16:02", available=1233317, terminal_id="T0000001")
    assert notify.purchase_text("en", **fields) == (
        "Card ending 0011: purchase of CNY 12.50 at DEMO SHOP (T0000001), 2026-11-22 16:02. "
        "Available CNY 12,333.17.")
    assert notify.purchase_text("zh", **fields) == (
        "您尾号0011的卡于2026-11-22 16:02在DEMO SHOP（终端T0000001）消费CNY 12.50，"
        "可用余额CNY 12,333.17。")


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


# ---- purchases through the issuer, on the demo cardholders ----------------------------

WANG_FANG = "4761730000000037"     # app push, Chinese, threshold 100.00, quiet 22:00-07:00
SUN_LI = "6225880000000076"        # purchase alerts only, threshold 500.00

PURCHASE_DEMO = [
    # pan, amount, policy, notification map, outbox kinds
    (LI_WEI, 1250, Policy(), {1: 2, 2: "sms", 3: "138****5678"}, ["purchase"]),
    (LI_WEI, 1250, Policy(send_immediately=False), {1: 1, 2: "sms", 3: "138****5678"},
     ["purchase"]),
    (LI_WEI, 1250, Policy().without("purchase"), {1: 6}, []),
    (LI_WEI, 150000, Policy(large_amount_limit=100000), {1: 2, 2: "sms", 3: "138****5678"},
     ["large_amount"]),
    (ZHANG_MIN, 1250, Policy(), {1: 3}, []),
    (WANG_FANG, 9999, Policy(), {1: 5, 4: "100.00"}, []),              # threshold 100.00
    (WANG_FANG, 10000, Policy(), {1: 2, 2: "app", 3: "137****1111"}, ["purchase"]),
    ("4761730000000045", 1250, Policy(), {1: 7}, []),
    (SUN_LI, 1250, Policy(), {1: 5, 4: "500.00"}, []),                 # threshold 500.00
    (SUN_LI, 50000, Policy(), {1: 2, 2: "sms", 3: "134****4444"}, ["purchase"]),
    # frozen: declined 62 with a security alert, whatever the purchase alert rules say
    (ZHAO_LEI, 1250, Policy().without("purchase"), {1: 11, 2: "sms", 3: "135****3333"},
     ["frozen_card"]),
    (UNKNOWN, 1250, Policy(), {1: 10}, []),
]


def purchase(issuer, terminal, pan, amount, **kw):
    body, pending = terminal.purchase(pan, amount, **kw)
    return terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)


@pytest.mark.parametrize("pan,amount,policy,notification,kinds", PURCHASE_DEMO)
def test_demo_cardholders_purchase(make_issuer, terminal, pan, amount, policy, notification,
                                   kinds):
    issuer = make_issuer(policy)
    fields = purchase(issuer, terminal, pan, amount)
    assert fields[8] == notification
    assert [r["kind"] for r in issuer.ledger.outbox()] == kinds


def shop(issuer, name):
    """A second terminal, of the merchant `name` in the registry (the alert's merchant
    is the registry's, never the request's)."""
    return provisioned_terminal(issuer.ledger, "T0000002", "90123457", merchant_name=name)


def test_approved_purchase_alert_in_english(issuer):
    fields = purchase(issuer, shop(issuer, "CAFE LUMIERE"), LI_WEI, 1250)
    assert (fields[3], fields[5]) == (codes.APPROVED, 1233317)
    [row] = issuer.ledger.outbox()
    [tx] = issuer.ledger.journal()
    assert row["transaction_id"] == tx["id"]
    assert (row["kind"], row["card_last4"], row["channel"], row["destination"],
            row["language"], row["status"]) == \
        ("purchase", "0011", "sms", "138****5678", "en", "sent")
    assert len(row["message_id"]) == 16 and row["attempts"] == 1
    # the merchant, the amount with its currency, the issuer's local time and the
    # available balance after the purchase; the card as its last 4 digits only
    assert row["text"] == ("Card ending 0011: purchase of CNY 12.50 at CAFE LUMIERE "
                           "(T0000002), 2026-11-22 16:02. Available CNY 12,333.17.")
    assert LI_WEI not in row["text"] and LI_WEI[:6] not in row["text"]


def test_approved_purchase_alert_in_chinese(issuer):
    fields = purchase(issuer, shop(issuer, "CAFE LUMIERE"), WANG_FANG, 12880)
    assert (fields[3], fields[5], fields[8]) == \
        (codes.APPROVED, 487120, {1: codes.SENT, 2: "app", 3: "137****1111"})
    [row] = issuer.ledger.outbox()
    assert (row["kind"], row["card_last4"], row["channel"], row["language"], row["status"]) \
        == ("purchase", "0037", "app", "zh", "sent")
    assert row["text"] == ("您尾号0037的卡于2026-11-22 16:02在CAFE LUMIERE（终端T0000002）"
                           "消费CNY 128.80，可用余额CNY 4,871.20。")
    assert WANG_FANG not in row["text"] and WANG_FANG[:6] not in row["text"]


def test_purchase_below_the_cardholders_threshold(make_issuer, terminal):
    # Wang Fang's own threshold is 100.00: a purchase under it is charged, not alerted
    issuer = make_issuer()
    fields = purchase(issuer, terminal, WANG_FANG, 9999)
    assert (fields[3], fields[5]) == (codes.APPROVED, 500000 - 9999)
    assert fields[8] == {1: codes.BELOW_THRESHOLD, 4: "100.00"}
    assert issuer.ledger.outbox() == []
    # the threshold is the cardholder's preference: changed there, the next one follows
    holder = issuer.ledger.card_by_pan(LI_WEI).holder
    preferences.update(issuer.ledger, holder.id, threshold=5000)
    assert purchase(issuer, terminal, LI_WEI, 4999)[8] == {1: codes.BELOW_THRESHOLD, 4: "50.00"}
    assert purchase(issuer, terminal, LI_WEI, 5000)[8][1] == codes.SENT
    # none of their own: the bank's default threshold
    preferences.update(issuer.ledger, holder.id, threshold=None)
    bank = make_issuer(Policy(default_threshold=2000))
    assert purchase(bank, terminal, LI_WEI, 1999)[8] == {1: codes.BELOW_THRESHOLD, 4: "20.00"}


def test_large_amount_purchase_alert(make_issuer):
    issuer = make_issuer(Policy(large_amount_limit=100000))
    purchase(issuer, shop(issuer, "JEWELLERS"), LI_WEI, 150000)
    [row] = issuer.ledger.outbox()
    assert row["kind"] == "large_amount"
    assert row["text"] == ("Large amount alert: card ending 0011: purchase of CNY 1,500.00 at "
                           "JEWELLERS (T0000002), 2026-11-22 16:02, above your limit of "
                           "CNY 1,000.00. Available CNY 10,845.67.")


def test_purchase_in_quiet_hours_is_held(make_issuer, db_path, terminal):
    night = Issuer(Ledger.open(db_path), Policy(), clock=lambda: ISSUER_NOW + 7 * 3600)
    terminal.now = ISSUER_NOW + 7 * 3600
    try:
        fields = purchase(night, terminal, WANG_FANG, 20000)       # 23:02 local
        assert fields[3] == codes.APPROVED
        assert fields[8] == {1: codes.QUIET_HOURS, 2: "app", 3: "137****1111", 4: "07:00"}
        [row] = night.ledger.outbox()
        assert (row["kind"], row["status"], row["language"]) == ("purchase", "held", "zh")
        assert "2026-11-22 23:02" in row["text"] and "可用余额CNY 4,800.00" in row["text"]
    finally:
        night.close()


def test_gateway_failure_is_reported_and_the_purchase_stands(make_issuer, terminal):
    issuer = make_issuer(faults=Faults(gateway_down=True))
    fields = purchase(issuer, terminal, LI_WEI, 1250)
    assert (fields[3], fields[8][1]) == (codes.APPROVED, codes.GATEWAY_FAILED)
    assert issuer.ledger.card_by_pan(LI_WEI).available == 1234567 - 1250
    [row] = issuer.ledger.outbox()
    assert (row["kind"], row["status"], row["reason"]) == \
        ("purchase", "failed", "gateway down (fault)")


def test_no_alert_when_the_debit_fails(issuer, terminal, mocker):
    sent = issuer.dispatcher.gateways["sms"].sent
    mocker.patch.object(Ledger, "post", side_effect=RuntimeError("disk on fire"))
    fields = purchase(issuer, terminal, LI_WEI, 1250)
    assert (fields[3], fields[8]) == (codes.SYSTEM_MALFUNCTION, {1: codes.NOTHING_TO_ALERT})
    assert sent == [] and issuer.ledger.outbox() == []


def test_reversal_alerts_the_credit_after_the_charge(issuer, terminal):
    # test_reversal_alerts.py has the reversal rules; here the purchase's row stays
    body, pending = terminal.purchase(LI_WEI, 1250)
    issuer.handle(PURCHASE_REQUEST, body)
    [alert] = issuer.ledger.outbox()
    reversal, rpending = terminal.reversal(pending)
    answer = terminal.check(issuer.handle(REVERSAL_REQUEST, reversal), rpending)
    assert (answer[3], answer[16], answer[8][1]) == (codes.APPROVED, codes.REVERSED, codes.SENT)
    first, credit = issuer.ledger.outbox()
    assert first == alert and credit["kind"] == "reversal"
