"""The notification rules as one table: bank policy x subscription x kind x amount and
threshold x channel x quiet hours x language x gateway. Each row gives the status the
terminal gets AND the outbox row the issuer keeps (kind, channel, masked destination,
language of the text, status), or no row.

The first table names the cases one by one; the second test runs the whole cross
product of the factors against the rule table of docs/issuer.md, written here
independently of notify.py.
"""
import datetime
import itertools
import re
from dataclasses import replace

import pytest

from posbridge.issuer import Ledger, Policy, alerts, cards, codes, notify
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway
from posbridge.issuer.preferences import Cardholder
from posbridge.issuer.quiet_hours import QuietHours
from posbridge.issuer.templates import default_templates

TZ = datetime.timezone(datetime.timedelta(hours=8))       # the policy's UTC+8


def at(hhmm: str) -> int:
    h, m = map(int, hhmm.split(":"))
    day = 22 if h >= 12 else 23           # 23:30 on the 22nd, 06:59 on the 23rd
    return int(datetime.datetime(2026, 11, day, h, m, tzinfo=TZ).timestamp())


DAY, NIGHT, EARLY, END = at("16:02"), at("23:30"), at("06:59"), at("07:00")
PHONE, MASKED = "13812345678", "138****5678"
ALL = frozenset(codes.ALERT_KINDS)
NIGHT_QUIET = QuietHours.parse("22:00-07:00")

PU, BI, WP = notify.PURCHASE, notify.BALANCE_INQUIRY, notify.WRONG_PIN
LA, AC, RR = notify.LARGE_AMOUNT, notify.ACCOUNT_CHANGE, notify.REPAYMENT_REMINDER
SEC, FROZEN = notify.PIN_TRIES_EXCEEDED, notify.FROZEN_CARD


def h(**kw) -> Cardholder:
    base = dict(id=1, name="Test", phone=PHONE, subscribed=True, channel="sms", kinds=ALL)
    kw = {**base, **kw}
    kw["kinds"] = frozenset(kw["kinds"])
    return Cardholder(**kw)


def p(off=(), **kw) -> Policy:
    return replace(Policy(), **kw).without(*off)


def yuan(text: str) -> int:
    return round(float(text) * 100)


QUEUE = dict(send_immediately=False)
EN_ONLY = {"en": default_templates()["en"]}
# expected row: (kind, channel, destination, language, outbox status)
SENT_SMS = (PU, "sms", MASKED, "en", "sent")


def row(kind=PU, channel="sms", language="en", status="sent"):
    return (kind, channel, MASKED, language, status)


CASES = [
    # id, kind, policy, holder, amount, now, gateway ok, (status, detail), outbox row
    # -- purchase: rules 1..7 in order
    ("purchase sent", PU, p(), h(), yuan("100"), DAY, True, (2, None), SENT_SMS),
    ("purchase queued", PU, p(**QUEUE), h(), yuan("100"), DAY, True, (1, None),
     row(status="queued")),
    ("bank off", PU, p(off=[PU]), h(), yuan("100"), DAY, True, (6, None), None),
    ("bank off beats unsubscribed", PU, p(off=[PU]), h(subscribed=False), yuan("100"), DAY,
     True, (6, None), None),
    ("not subscribed", PU, p(), h(subscribed=False), yuan("100"), DAY, True, (3, None), None),
    ("not subscribed beats no phone", PU, p(), h(subscribed=False, phone=None), yuan("100"),
     DAY, True, (3, None), None),
    ("kind not chosen", PU, p(), h(kinds=ALL - {PU}), yuan("100"), DAY, True, (4, None), None),
    ("not chosen beats below threshold", PU, p(), h(kinds={WP}, threshold=yuan("500")),
     yuan("1"), DAY, True, (4, None), None),
    ("below own threshold", PU, p(), h(threshold=yuan("100")), yuan("99.99"), DAY, True,
     (5, "100.00"), None),
    ("at own threshold", PU, p(), h(threshold=yuan("100")), yuan("100"), DAY, True, (2, None),
     SENT_SMS),
    ("below bank default", PU, p(default_threshold=yuan("50")), h(), yuan("49.99"), DAY,
     True, (5, "50.00"), None),
    ("own threshold 0 beats bank default", PU, p(default_threshold=yuan("50")),
     h(threshold=0), yuan("10"), DAY, True, (2, None), SENT_SMS),
    ("threshold detail with thousands", PU, p(), h(threshold=yuan("1500")), yuan("20"), DAY,
     True, (5, "1,500.00"), None),
    ("below threshold beats no phone", PU, p(), h(threshold=yuan("100"), phone=None),
     yuan("5"), DAY, True, (5, "100.00"), None),
    ("below threshold beats quiet hours", PU, p(), h(threshold=yuan("100"),
     quiet_hours=NIGHT_QUIET), yuan("5"), NIGHT, True, (5, "100.00"), None),
    ("no phone", PU, p(), h(phone=None), yuan("100"), DAY, True, (7, None), None),
    ("no phone beats quiet hours", PU, p(), h(phone=None, quiet_hours=NIGHT_QUIET),
     yuan("100"), NIGHT, True, (7, None), None),
    # -- channel
    ("app by default", PU, p(), h(channel="app"), yuan("100"), DAY, True, (2, None),
     row(channel="app")),
    ("app for purchases only", PU, p(), h(channels={PU: "app"}), yuan("100"), DAY, True,
     (2, None), row(channel="app")),
    ("sms for purchases, app otherwise", PU, p(), h(channel="app", channels={PU: "sms"}),
     yuan("100"), DAY, True, (2, None), SENT_SMS),
    ("another kind's channel does not count", PU, p(), h(channels={WP: "app"}), yuan("100"),
     DAY, True, (2, None), SENT_SMS),
    # -- quiet hours
    ("quiet hours at night", PU, p(), h(quiet_hours=NIGHT_QUIET), yuan("100"), NIGHT, True,
     (8, "07:00"), row(status="held")),
    ("quiet hours early morning", PU, p(), h(quiet_hours=NIGHT_QUIET), yuan("100"), EARLY,
     True, (8, "07:00"), row(status="held")),
    ("quiet hours over at their end", PU, p(), h(quiet_hours=NIGHT_QUIET), yuan("100"), END,
     True, (2, None), SENT_SMS),
    ("outside quiet hours", PU, p(), h(quiet_hours=NIGHT_QUIET), yuan("100"), DAY, True,
     (2, None), SENT_SMS),
    ("daytime quiet hours", PU, p(), h(quiet_hours=QuietHours.parse("12:00-18:30")),
     yuan("100"), DAY, True, (8, "18:30"), row(status="held")),
    ("held beats queued", PU, p(**QUEUE), h(quiet_hours=NIGHT_QUIET), yuan("100"), NIGHT,
     True, (8, "07:00"), row(status="held")),
    ("held on the app channel", PU, p(), h(channel="app", quiet_hours=NIGHT_QUIET),
     yuan("100"), NIGHT, True, (8, "07:00"), row(channel="app", status="held")),
    # -- language
    ("Chinese by choice", PU, p(), h(language="zh"), yuan("100"), DAY, True, (2, None),
     row(language="zh")),
    ("bank language by default", PU, p(language="zh"), h(), yuan("100"), DAY, True,
     (2, None), row(language="zh")),
    ("English by choice in a Chinese bank", PU, p(language="zh"), h(language="en"),
     yuan("100"), DAY, True, (2, None), SENT_SMS),
    ("bank without Chinese templates", PU, p(templates=EN_ONLY), h(language="zh"),
     yuan("100"), DAY, True, (2, None), SENT_SMS),
    # -- gateway
    ("gateway fails", PU, p(), h(), yuan("100"), DAY, False, (9, None),
     row(status="failed")),
    ("queued: the gateway is not tried", PU, p(**QUEUE), h(), yuan("100"), DAY, False,
     (1, None), row(status="queued")),
    ("held: the gateway is not tried", PU, p(), h(quiet_hours=NIGHT_QUIET), yuan("100"),
     NIGHT, False, (8, "07:00"), row(status="held")),
    # -- large amounts: a purchase above the limit
    ("large amount", PU, p(), h(), yuan("60000"), DAY, True, (2, None), row(kind=LA)),
    ("large amount, purchases not chosen", PU, p(), h(kinds={LA}), yuan("60000"), DAY, True,
     (2, None), row(kind=LA)),
    ("large amount below own threshold", PU, p(), h(threshold=yuan("100000")),
     yuan("60000"), DAY, True, (2, None), row(kind=LA)),
    ("large amount, bank does not alert purchases", PU, p(off=[PU]), h(), yuan("60000"),
     DAY, True, (2, None), row(kind=LA)),
    ("large amount not chosen: a purchase", PU, p(), h(kinds=ALL - {LA}), yuan("60000"),
     DAY, True, (2, None), SENT_SMS),
    ("large amount and purchase not chosen", PU, p(), h(kinds={WP}), yuan("60000"), DAY,
     True, (4, None), None),
    ("bank does not alert large amounts: a purchase", PU, p(off=[LA]), h(), yuan("60000"),
     DAY, True, (2, None), SENT_SMS),
    ("bank alerts neither", PU, p(off=[LA, PU]), h(), yuan("60000"), DAY, True, (6, None),
     None),
    ("large amount, not subscribed", PU, p(), h(subscribed=False), yuan("60000"), DAY, True,
     (3, None), None),
    ("large amount, no phone", PU, p(), h(phone=None), yuan("60000"), DAY, True, (7, None),
     None),
    ("large amount in quiet hours", PU, p(), h(quiet_hours=NIGHT_QUIET), yuan("60000"),
     NIGHT, True, (8, "07:00"), row(kind=LA, status="held")),
    ("large amount queued", PU, p(**QUEUE), h(), yuan("60000"), DAY, True, (1, None),
     row(kind=LA, status="queued")),
    ("at the limit is not large", PU, p(), h(), yuan("50000"), DAY, True, (2, None),
     SENT_SMS),
    ("above the cardholder's own lower limit", PU, p(), h(large_amount_limit=yuan("1000")),
     yuan("1000.01"), DAY, True, (2, None), row(kind=LA)),
    ("own limit above the bank's: the bank's counts", PU, p(),
     h(large_amount_limit=yuan("80000")), yuan("60000"), DAY, True, (2, None), row(kind=LA)),
    ("large amount on its own channel", PU, p(), h(channels={LA: "app"}), yuan("60000"),
     DAY, True, (2, None), row(kind=LA, channel="app")),
    ("large amount called directly", LA, p(), h(), yuan("60000"), DAY, True, (2, None),
     row(kind=LA)),
    ("large amount called directly, not chosen", LA, p(), h(kinds={PU}), yuan("60000"), DAY,
     True, (4, None), None),
    # -- the other kinds follow rules 1-3 and 5-7 (no threshold)
    ("balance inquiry", BI, p(), h(), None, DAY, True, (2, None), row(kind=BI)),
    ("balance inquiry, bank off", BI, p(off=[BI]), h(), None, DAY, True, (6, None), None),
    ("balance inquiry not chosen", BI, p(), h(kinds={PU}), None, DAY, True, (4, None), None),
    ("balance inquiry ignores the threshold", BI, p(), h(threshold=yuan("100")), None, DAY,
     True, (2, None), row(kind=BI)),
    ("balance inquiry in quiet hours", BI, p(), h(quiet_hours=NIGHT_QUIET), None, NIGHT,
     True, (8, "07:00"), row(kind=BI, status="held")),
    ("wrong PIN is not a security alert", WP, p(), h(quiet_hours=NIGHT_QUIET), None, NIGHT,
     True, (8, "07:00"), row(kind=WP, status="held")),
    ("wrong PIN by app", WP, p(), h(channels={WP: "app"}), None, DAY, True, (2, None),
     row(kind=WP, channel="app")),
    ("wrong PIN, bank off", WP, p(off=[WP]), h(), None, DAY, True, (6, None), None),
    ("account change", AC, p(), h(), None, DAY, True, (2, None), row(kind=AC)),
    ("account change not chosen", AC, p(), h(kinds={PU}), None, DAY, True, (4, None), None),
    ("account change in quiet hours", AC, p(), h(quiet_hours=NIGHT_QUIET), None, NIGHT, True,
     (8, "07:00"), row(kind=AC, status="held")),
    ("repayment reminder in Chinese", RR, p(), h(language="zh"), None, DAY, True, (2, None),
     row(kind=RR, language="zh")),
    ("repayment reminder, bank off", RR, p(off=[RR]), h(), None, DAY, True, (6, None), None),
    ("repayment reminder queued", RR, p(**QUEUE), h(), None, DAY, True, (1, None),
     row(kind=RR, status="queued")),
    # -- security alerts: only the phone counts; sent at once even when the bank queues
    ("PIN tries exceeded", SEC, p(), h(), None, DAY, True, (11, None), row(kind=SEC)),
    ("security alert whatever else", SEC, p(off=codes.ALERT_KINDS, **QUEUE),
     h(subscribed=False, kinds=(), quiet_hours=NIGHT_QUIET, threshold=yuan("100")), None,
     NIGHT, True, (11, None), row(kind=SEC)),
    ("security alert needs a phone", SEC, p(), h(phone=None), None, DAY, True, (7, None),
     None),
    ("security alert by app", SEC, p(), h(channel="app"), None, DAY, True, (11, None),
     row(kind=SEC, channel="app")),
    ("security alert on its own channel", SEC, p(), h(channels={SEC: "app"}), None, DAY,
     True, (11, None), row(kind=SEC, channel="app")),
    ("security alert in Chinese", SEC, p(), h(language="zh"), None, DAY, True, (11, None),
     row(kind=SEC, language="zh")),
    ("security alert, gateway fails", SEC, p(), h(), None, DAY, False, (9, None),
     row(kind=SEC, status="failed")),
    ("frozen card used", FROZEN, p(), h(subscribed=False), None, NIGHT, True, (11, None),
     row(kind=FROZEN)),
    ("frozen card used, no phone", FROZEN, p(), h(phone=None), None, DAY, True, (7, None),
     None),
]


@pytest.fixture(scope="module")
def table_ledger(tmp_path_factory):
    """One cardholder for the outbox rows of the table (the PIN is never checked)."""
    ledger = Ledger.create(tmp_path_factory.mktemp("table") / "issuer.sqlite")
    cards.add(ledger, pan="4761730000000011", pin="1234", expiry="3012",
              available=100000, currency=156, name="Test", phone=PHONE)
    yield ledger
    ledger.close()


def text_for(lang, kind):
    """A real template of `kind` in `lang` (its wording: test_notify.py, test_policy.py)."""
    fields = dict(last4="0011", when="2026-11-22 16:02", terminal_id="T0000001")
    money = dict(currency=156, available=100000)
    if kind in (PU, LA):
        extra = dict(limit=5000000) if kind == LA else {}
        fn = notify.large_amount_text if kind == LA else notify.purchase_text
        return fn(lang, amount=10000, merchant="Demo Shop", **money, **fields, **extra)
    if kind == BI:
        return notify.balance_inquiry_text(lang, ledger=100000, **money, **fields)
    if kind == WP:
        return notify.wrong_pin_text(lang, tries_left=2, **fields)
    if kind == SEC:
        return notify.pin_tries_exceeded_text(lang, **fields)
    if kind == FROZEN:
        return notify.frozen_card_text(lang, **fields)
    if kind == AC:
        return notify.account_change_text(lang, change="card_frozen", last4="0011",
                                          when=fields["when"])
    return notify.repayment_reminder_text(lang, last4="0011", statement_amount=234500,
                                          minimum_payment=23450, currency=156,
                                          due_date="2026-12-10")


def language_of_text(text: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"


def outbox_row_for(ledger, decision, holder, policy, now, gateway_ok):
    """What the issuer does with `decision`: make the alert, store it, then send it at
    once through a built-in gateway that works or not (nothing is sent before the
    store's transaction ends), read the row back."""
    gateway = BuiltinGateway(None if gateway_ok else "SMSC down")
    dispatcher = Dispatcher(ledger, policy, gateway)
    alert = alerts.make(decision, holder, "0011", text_for)
    if alert is None:
        return decision, None
    with ledger.transaction():
        row_id = alerts.store(ledger, alert, policy, now)
        assert gateway.sent == []
    alert = alerts.send(ledger, alert, dispatcher, policy, now)
    row = dict(ledger.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone())
    assert gateway.sent == ([alert.message_id] if decision.immediate and gateway_ok else [])
    return alert.decision, row


def check_row(row, expected, text_language=None):
    if expected is None:
        assert row is None
        return
    kind, channel, destination, language, status = expected
    assert (row["kind"], row["channel"], row["destination"], row["language"], row["status"]) \
        == expected
    assert language_of_text(row["text"]) == language
    assert PHONE not in row["text"] + row["destination"]
    assert "4761730000000011" not in row["text"] and "0011" in row["text"]
    assert re.fullmatch(r"[0-9a-f]{16}", row["message_id"])
    if status == "failed":
        assert row["attempts"] == 1 and row["reason"] == "SMSC down"
        assert row["next_attempt_at"] > row["created_at"]
    if status == "held":
        assert row["next_attempt_at"] > row["created_at"]
    if status == "sent":
        assert row["sent_at"] == row["created_at"] and row["gateway_ref"]


@pytest.mark.parametrize("kind,policy,holder,amount,now,gateway_ok,expected,outbox_row",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(table_ledger, kind, policy, holder, amount, now, gateway_ok, expected,
                    outbox_row):
    decision = notify.decide(kind, policy, holder, amount=amount, currency=156, now=now)
    final, row = outbox_row_for(table_ledger, decision, holder, policy, now, gateway_ok)
    assert (final.status, final.detail) == expected
    assert final.as_cbor_map()[1] == expected[0]
    check_row(row, outbox_row)
    if row is not None:
        assert (final.channel, final.destination) == (row["channel"], row["destination"])


def test_held_until_the_end_of_quiet_hours():
    d = notify.decide(PU, p(), h(quiet_hours=NIGHT_QUIET), amount=100, now=NIGHT)
    assert d.send_after == at("07:00") and d.as_cbor_map() == \
        {1: 8, 2: "sms", 3: MASKED, 4: "07:00"}


def test_other_currency_is_never_compared():
    # USD 0.01 under a CNY 100.00 threshold, USD 1,000,000 over a CNY 50,000 limit: a
    # plain purchase alert both times
    for amount in (1, 100_000_000):
        d = notify.decide(PU, p(), h(threshold=10000), amount=amount, currency=840, now=DAY)
        assert (d.status, d.kind) == (codes.SENT, PU)


# ---- the whole cross product, against the rule table of docs/issuer.md -----------------

AMOUNTS = {"below": yuan("99.99"), "at": yuan("100"), "large": yuan("60000")}


def rule_table(kind, bank, bank_large, queue, subscribed, chosen, large_chosen, amount,
               phone, quiet_now, gateway_ok):
    """(status, alerted kind) from the table in docs/issuer.md."""
    if kind in (SEC, FROZEN):
        if not phone:
            return 7, kind
        return (11 if gateway_ok else 9), kind
    alerted = kind
    if kind == PU and amount == "large" and bank_large and subscribed and large_chosen:
        alerted = LA
    else:
        if not bank:
            return 6, kind
        if not subscribed:
            return 3, kind
        if not chosen:
            return 4, kind
        if kind == PU and amount == "below":
            return 5, kind
    if not phone:
        return 7, alerted
    if quiet_now:
        return 8, alerted
    if queue:
        return 1, alerted
    return (2 if gateway_ok else 9), alerted


FACTORS = dict(bank=(True, False), bank_large=(True, False), queue=(False, True),
               subscribed=(True, False), chosen=(True, False), large_chosen=(True, False),
               amount=tuple(AMOUNTS), phone=(True, False), quiet=("none", "night", "day"),
               channel=("sms", "app"), own_channel=(None, "sms", "app"),
               language=(None, "zh"), gateway_ok=(True, False))


@pytest.mark.parametrize("kind", [PU, BI, WP, AC, RR, SEC, FROZEN])
def test_every_combination(tmp_path, kind):
    ledger = Ledger.create(tmp_path / "issuer.sqlite")
    cards.add(ledger, pan="4761730000000011", pin="1234", expiry="3012", available=0,
              currency=156, name="Test", phone=PHONE)
    names = list(FACTORS)
    seen = set()
    count = 0
    with ledger.transaction():             # one transaction: thousands of rows, quickly
        for values in itertools.product(*FACTORS.values()):
            f = dict(zip(names, values))
            if kind != PU and (f["amount"] != "at" or not f["bank_large"] or
                               not f["large_chosen"]):
                continue                   # amounts and large amounts: purchases only
            off = [k for k, on in ((kind, f["bank"]), (LA, f["bank_large"])) if not on]
            policy = p(off=[k for k in off if k in codes.ALERT_KINDS],
                       send_immediately=not f["queue"], default_threshold=yuan("100"))
            kinds = set(ALL)
            if not f["chosen"] and kind in ALL:
                kinds.discard(kind)
            if not f["large_chosen"]:
                kinds.discard(LA)
            holder = h(subscribed=f["subscribed"], kinds=kinds,
                       phone=PHONE if f["phone"] else None, channel=f["channel"],
                       channels={} if f["own_channel"] is None else {kind: f["own_channel"],
                                                                      LA: f["own_channel"]},
                       quiet_hours=None if f["quiet"] == "none" else NIGHT_QUIET,
                       language=f["language"])
            now = NIGHT if f["quiet"] == "night" else DAY
            quiet_now = f["quiet"] == "night"
            decision = notify.decide(kind, policy, holder, amount=AMOUNTS[f["amount"]],
                                     currency=156, now=now)
            final, row = outbox_row_for(ledger, decision, holder, policy, now, f["gateway_ok"])
            status, alerted = rule_table(kind, f["bank"], f["bank_large"], f["queue"],
                                         f["subscribed"], f["chosen"], f["large_chosen"],
                                         f["amount"], f["phone"], quiet_now, f["gateway_ok"])
            assert (final.status, final.kind) == (status, alerted), f
            if status in (1, 2, 8, 9, 11):
                channel = f["own_channel"] or f["channel"]
                language = f["language"] or "en"
                outbox_status = {1: "queued", 2: "sent", 8: "held", 9: "failed",
                                 11: "sent"}[status]
                check_row(row, (alerted, channel, MASKED, language, outbox_status))
            else:
                assert row is None, f
            seen.add(status)
            count += 1
    ledger.close()
    expected_statuses = {PU: {1, 2, 3, 4, 5, 6, 7, 8, 9}, SEC: {7, 9, 11},
                         FROZEN: {7, 9, 11}}.get(kind, {1, 2, 3, 4, 6, 7, 8, 9})
    assert seen == expected_statuses
    # 2^10 x 3^3 combinations for a purchase; the others have one amount, no large amount
    assert count == (27648 if kind == PU else 2304)
