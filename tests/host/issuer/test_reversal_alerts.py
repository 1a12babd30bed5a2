"""A reversal is alerted when the purchase was: the cardholder told of a charge is told
of its cancellation and credit, in the same language and on the same channel, after the
charge; one who was not told of the charge (below the threshold, not subscribed, kind
not chosen, no phone) is not told of this either; a reversal that credits nothing
(declined or unknown purchase, reversed before) alerts nothing. First decide() on its
own, the texts, then through the issuer and the dispatcher."""
import datetime

import pytest

from posbridge.issuer import Faults, Issuer, Ledger, Policy, codes, notify, preferences
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway
from posbridge.issuer.outbox import PurchaseAlert
from posbridge.issuer.preferences import Cardholder
from posbridge.issuer.quiet_hours import QuietHours
from posbridge.link.protocol import PURCHASE_REQUEST, REVERSAL_REQUEST

from .conftest import ISSUER_NOW
from .test_reversal import cddl_check

# SQLite and PostgreSQL: the same answers and the same ledger
pytestmark = pytest.mark.both_backends

LI_WEI = "4761730000000011"        # SMS, English, every kind, no threshold
ZHANG_MIN = "4761730000000029"     # not subscribed
WANG_FANG = "4761730000000037"     # app push, Chinese, threshold 100.00, quiet 22:00-07:00
CHEN_JIE = "4761730000000045"      # subscribed, no phone
SUN_LI = "4761730000000076"        # purchases only, threshold 500.00

TZ = datetime.timezone(datetime.timedelta(hours=8))
DAY = int(datetime.datetime(2026, 11, 22, 16, 2, tzinfo=TZ).timestamp())
NIGHT = int(datetime.datetime(2026, 11, 22, 23, 30, tzinfo=TZ).timestamp())
MORNING = int(datetime.datetime(2026, 11, 23, 7, 0, tzinfo=TZ).timestamp())
MASKED = "138****5678"
RV = notify.REVERSAL


# ---- the rule: decide(REVERSAL, ...) ---------------------------------------------------

def h(**kw):
    base = dict(id=1, name="Test", phone="13812345678", subscribed=True, channel="sms",
                kinds=frozenset(codes.ALERT_KINDS))
    return Cardholder(**{**base, **kw})


SMS_EN = PurchaseAlert("purchase", "sms", "en", None)
APP_ZH = PurchaseAlert("purchase", "app", "zh", None)

RULES = [
    # id, policy, holder, purchase alert, now, (status, channel, language, detail)
    ("alerted purchase: sent", Policy(), h(), SMS_EN, DAY, (2, "sms", "en", None)),
    ("alerted purchase, bank queues", Policy(send_immediately=False), h(), SMS_EN, DAY,
     (1, "sms", "en", None)),
    ("the purchase alert's channel and language, not today's", Policy(),
     h(channel="sms", language="en"), APP_ZH, DAY, (2, "app", "zh", None)),
    ("a large-amount purchase alert counts", Policy(), h(),
     PurchaseAlert("large_amount", "sms", "en", None), DAY, (2, "sms", "en", None)),
    ("R1 bank does not alert reversals", Policy().without(RV), h(), SMS_EN, DAY,
     (6, None, None, None)),
    ("R2 purchase not alerted: not subscribed", Policy(), h(subscribed=False), None, DAY,
     (3, None, None, None)),
    ("R2 purchase not alerted: purchases not chosen", Policy(),
     h(kinds=frozenset({"balance_inquiry"})), None, DAY, (4, None, None, None)),
    ("R2 purchase not alerted: below the threshold", Policy(), h(threshold=10000), None,
     DAY, (5, None, None, "100.00")),
    ("R2 purchase not alerted: bank does not alert purchases", Policy().without("purchase"),
     h(), None, DAY, (6, None, None, None)),
    ("R2 purchase not alerted: no phone", Policy(), h(phone=None), None, DAY,
     (7, None, None, None)),
    ("R2 purchase not alerted, though it would be now", Policy(), h(), None, DAY,
     (10, None, None, None)),
    ("alerted purchase, unsubscribed since: still told", Policy(), h(subscribed=False),
     SMS_EN, DAY, (2, "sms", "en", None)),
    ("alerted purchase, threshold raised since: still told", Policy(),
     h(threshold=10_000_000), SMS_EN, DAY, (2, "sms", "en", None)),
    ("R3 no phone any more", Policy(), h(phone=None), SMS_EN, DAY, (7, None, None, None)),
    ("R4 quiet hours", Policy(), h(quiet_hours=QuietHours.parse("22:00-07:00")), SMS_EN,
     NIGHT, (8, "sms", "en", "07:00")),
    ("R5 the purchase alert not sent yet", Policy(), h(),
     PurchaseAlert("purchase", "sms", "en", DAY + 60), DAY, (1, "sms", "en", None)),
]


@pytest.mark.parametrize("policy,holder,purchase_alert,now,expected",
                         [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_decide_reversal(policy, holder, purchase_alert, now, expected):
    d = notify.decide(RV, policy, holder, amount=880, currency=156, now=now,
                      purchase_alert=purchase_alert)
    assert (d.status, d.channel, d.language, d.detail) == expected
    assert d.kind == RV
    assert d.alerts == (expected[1] is not None)
    if d.alerts:
        assert d.destination == MASKED


def test_decide_reversal_timing():
    held = notify.decide(RV, Policy(), h(quiet_hours=QuietHours.parse("22:00-07:00")),
                         amount=880, now=NIGHT, purchase_alert=SMS_EN)
    assert held.send_after == MORNING and not held.immediate
    behind = notify.decide(RV, Policy(), h(), amount=880, now=DAY,
                           purchase_alert=PurchaseAlert("purchase", "sms", "en", DAY + 60))
    assert behind.send_after == DAY + 60 and not behind.immediate
    assert notify.decide(RV, Policy(), h(), amount=880, now=DAY,
                         purchase_alert=SMS_EN).immediate
    with pytest.raises(ValueError):
        notify.decide(RV, Policy(), h(), now=DAY, purchase_alert=SMS_EN)


def test_reversal_is_a_bank_kind_not_a_cardholders_choice():
    assert RV in Policy().kinds and RV not in codes.ALERT_KINDS
    with pytest.raises(Exception):
        preferences.parse_kinds("reversal")


# ---- the texts --------------------------------------------------------------------------

FIELDS = dict(last4="0011", amount=880, currency=156, merchant="DEMO SHOP",
              when="2026-11-22 16:02", available=1234567, terminal_id="T0000001")


def test_reversal_text_in_english():
    assert notify.reversal_text("en", **FIELDS) == (
        "Card ending 0011: purchase of CNY 8.80 at DEMO SHOP (T0000001) cancelled, "
        "credited back, 2026-11-22 16:02. Available CNY 12,345.67.")


def test_reversal_text_in_chinese():
    assert notify.reversal_text("zh", **FIELDS) == (
        "您尾号0011的卡在DEMO SHOP（终端T0000001）的消费CNY 8.80已于2026-11-22 16:02撤销，"
        "款项已退回，可用余额CNY 12,345.67。")


def test_reversal_text_in_a_language_without_templates_falls_back():
    policy = Policy(language="zh")
    assert notify.reversal_text("fr", policy=policy, **FIELDS).startswith("您尾号0011")


# ---- through the issuer -----------------------------------------------------------------

def purchase(issuer, terminal, pan, amount, **kw):
    body, pending = terminal.purchase(pan, amount, **kw)
    return pending, terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)


def reverse(issuer, terminal, original, **kw):
    body, pending = terminal.reversal(original, **kw)
    response = issuer.handle(REVERSAL_REQUEST, body)
    cddl_check("reversal-response", response)
    return terminal.check(response, pending)


def texts(issuer):
    return [(r["kind"], r["status"], r["text"]) for r in issuer.ledger.outbox()]


def test_a_reversed_purchase_leaves_two_messages_charge_then_credit(issuer, terminal):
    sent = issuer.dispatcher.gateways["sms"].sent
    original, answer = purchase(issuer, terminal, LI_WEI, 880)
    assert answer[8][1] == codes.SENT
    fields = reverse(issuer, terminal, original)
    assert (fields[3], fields[16]) == (codes.APPROVED, codes.REVERSED)
    assert fields[8] == {1: codes.SENT, 2: "sms", 3: MASKED}
    assert texts(issuer) == [
        ("purchase", "sent", "Card ending 0011: purchase of CNY 8.80 at DEMO SHOP (T0000001), "
                             "2026-11-22 16:02. Available CNY 12,336.87."),
        ("reversal", "sent", "Card ending 0011: purchase of CNY 8.80 at DEMO SHOP (T0000001) "
                             "cancelled, credited back, 2026-11-22 16:02. Available "
                             "CNY 12,345.67."),
    ]
    rows = issuer.ledger.outbox()
    assert sent == [r["message_id"] for r in rows]                # in that order, once each
    journal = {t["kind"]: t["id"] for t in issuer.ledger.transactions()}
    assert [r["transaction_id"] for r in rows] == [journal["purchase"], journal["reversal"]]
    assert all(LI_WEI not in r["text"] and "13812345678" not in r["text"] for r in rows)


def test_a_repeated_reversal_alerts_nothing_more(issuer, terminal):
    original, _ = purchase(issuer, terminal, LI_WEI, 880)
    body, pending = terminal.reversal(original)
    first = issuer.handle(REVERSAL_REQUEST, body)
    assert issuer.handle(REVERSAL_REQUEST, body) == first        # the same bytes, no send
    again = reverse(issuer, terminal, original)                 # a new reversal of it
    assert (again[16], again[8]) == (codes.ALREADY_REVERSED, {1: codes.NOTHING_TO_ALERT})
    assert [r["kind"] for r in issuer.ledger.outbox()] == ["purchase", "reversal"]
    assert len(issuer.dispatcher.gateways["sms"].sent) == 2


def test_reversal_of_a_declined_purchase_alerts_nothing(issuer, terminal):
    original, answer = purchase(issuer, terminal, ZHANG_MIN, 100000)      # 51
    assert answer[3] == codes.INSUFFICIENT_FUNDS
    fields = reverse(issuer, terminal, original)
    assert (fields[16], fields[8]) == (codes.NOTHING_CHARGED, {1: codes.NOTHING_TO_ALERT})
    assert issuer.ledger.outbox() == []


def test_reversal_of_a_purchase_never_seen_alerts_nothing(issuer, terminal):
    body, original = terminal.purchase(LI_WEI, 880)              # lost on the way
    fields = reverse(issuer, terminal, original)
    assert (fields[16], fields[8]) == (codes.NOTHING_CHARGED, {1: codes.NOTHING_TO_ALERT})
    assert issuer.ledger.outbox() == []
    issuer.handle(PURCHASE_REQUEST, body)                         # late: declined 94
    assert issuer.ledger.outbox() == []


@pytest.mark.parametrize("pan,amount,status", [
    (WANG_FANG, 9999, {1: codes.BELOW_THRESHOLD, 4: "100.00"}),
    (ZHANG_MIN, 880, {1: codes.NOT_SUBSCRIBED}),
    (CHEN_JIE, 880, {1: codes.NO_PHONE}),
])
def test_a_purchase_not_alerted_is_not_alerted_when_reversed(issuer, terminal, pan, amount,
                                                             status):
    original, answer = purchase(issuer, terminal, pan, amount)
    assert answer[8] == status
    fields = reverse(issuer, terminal, original)
    assert (fields[16], fields[8]) == (codes.REVERSED, status)   # the same reason
    assert issuer.ledger.outbox() == []


def test_alerted_purchase_is_alerted_when_reversed_though_unsubscribed_since(issuer,
                                                                            terminal):
    original, _ = purchase(issuer, terminal, LI_WEI, 880)
    holder = issuer.ledger.card_by_pan(LI_WEI).holder
    preferences.update(issuer.ledger, holder.id, subscribed=False)
    fields = reverse(issuer, terminal, original)
    assert fields[8][1] == codes.SENT
    assert [r["kind"] for r in issuer.ledger.outbox()] == ["purchase", "reversal"]


def test_chinese_app_cardholder_gets_the_credit_in_chinese(issuer, terminal):
    original, _ = purchase(issuer, terminal, WANG_FANG, 12880)
    fields = reverse(issuer, terminal, original)
    assert fields[8] == {1: codes.SENT, 2: "app", 3: "137****1111"}
    purchase_row, reversal_row = issuer.ledger.outbox()
    assert (reversal_row["channel"], reversal_row["language"]) == ("app", "zh")
    assert reversal_row["text"] == (
        "您尾号0037的卡在DEMO SHOP（终端T0000001）的消费CNY 128.80已于2026-11-22 16:02"
        "撤销，款项已退回，可用余额CNY 5,000.00。")


def test_bank_that_does_not_alert_reversals(make_issuer, terminal):
    issuer = make_issuer(Policy().without(RV))
    original, _ = purchase(issuer, terminal, LI_WEI, 880)
    fields = reverse(issuer, terminal, original)
    assert fields[8] == {1: codes.BANK_DOES_NOT_ALERT}
    assert [r["kind"] for r in issuer.ledger.outbox()] == ["purchase"]


def test_quiet_hours_hold_both_and_they_go_in_order(db_path, terminal):
    night = Issuer(Ledger.open(db_path), Policy(), clock=lambda: NIGHT)
    terminal.now = NIGHT                   # the issuer refuses requests far from its time
    try:
        original, answer = purchase(night, terminal, WANG_FANG, 20000)
        assert answer[8][1] == codes.QUIET_HOURS
        fields = reverse(night, terminal, original)
        assert fields[8] == {1: codes.QUIET_HOURS, 2: "app", 3: "137****1111", 4: "07:00"}
        assert [(r["kind"], r["status"], r["next_attempt_at"])
                for r in night.ledger.outbox()] == [("purchase", "held", MORNING),
                                                    ("reversal", "held", MORNING)]
        gateway = BuiltinGateway()
        Dispatcher(night.ledger, night.policy, gateway, clock=lambda: MORNING).run_once()
        assert gateway.sent == [r["message_id"] for r in night.ledger.outbox()]
    finally:
        night.close()


def test_a_credit_never_overtakes_a_charge_still_waiting(make_issuer, terminal):
    down = make_issuer(faults=Faults(gateway_down=True))
    original, answer = purchase(down, terminal, LI_WEI, 880)
    assert answer[8][1] == codes.GATEWAY_FAILED
    up = make_issuer()                       # the gateway is back for the reversal
    fields = reverse(up, terminal, original)
    assert fields[8] == {1: codes.QUEUED, 2: "sms", 3: MASKED}    # not sent ahead of it
    charge, credit = up.ledger.outbox()
    assert (charge["status"], credit["status"]) == ("failed", "queued")
    assert credit["next_attempt_at"] == charge["next_attempt_at"] == ISSUER_NOW + 60
    assert up.dispatcher.gateways["sms"].sent == []
    gateway = BuiltinGateway()
    Dispatcher(up.ledger, up.policy, gateway, clock=lambda: ISSUER_NOW + 60).run_once()
    assert gateway.sent == [charge["message_id"], credit["message_id"]]


def test_queue_policy_queues_the_credit_behind_the_charge(make_issuer, terminal):
    issuer = make_issuer(Policy(send_immediately=False))
    original, _ = purchase(issuer, terminal, LI_WEI, 880)
    fields = reverse(issuer, terminal, original)
    assert fields[8] == {1: codes.QUEUED, 2: "sms", 3: MASKED}
    gateway = BuiltinGateway()
    Dispatcher(issuer.ledger, issuer.policy, gateway, clock=lambda: ISSUER_NOW).run_once()
    assert gateway.sent == [r["message_id"] for r in issuer.ledger.outbox()]
    assert [r["kind"] for r in issuer.ledger.outbox()] == ["purchase", "reversal"]


def test_a_reversal_whose_alert_fails_is_still_acknowledged(make_issuer, terminal):
    issuer = make_issuer()
    original, _ = purchase(issuer, terminal, LI_WEI, 880)
    issuer.dispatcher.gateways["sms"].fail_reason = "SMSC down"
    fields = reverse(issuer, terminal, original)
    assert (fields[3], fields[16], fields[8][1]) == \
        (codes.APPROVED, codes.REVERSED, codes.GATEWAY_FAILED)
    assert issuer.ledger.card_by_pan(LI_WEI).available == 1234567
    assert issuer.ledger.outbox()[-1]["status"] == "failed"
