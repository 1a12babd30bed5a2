"""Account changes and repayment reminders: the change, its journal row in
account_events and the cardholder's alert in one transaction; a frozen card declined at
the terminal with a security alert."""
import datetime

import pytest

from posbridge.issuer import LedgerError, Policy, account_events, codes, preferences
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway
from posbridge.issuer.quiet_hours import QuietHours

from .conftest import ISSUER_NOW
from .test_balance_inquiry import LI_WEI, UNKNOWN, ZHANG_MIN, ZHAO_LEI, ask

WANG_FANG = "4761730000000037"
SUN_LI = "6225880000000076"
DUE = datetime.date(2026, 12, 10)


@pytest.fixture
def ctx(issuer):
    def make(policy=None, now=ISSUER_NOW, gateway=None):
        return account_events.EventContext(issuer.ledger, policy or issuer.policy,
                                           Dispatcher(issuer.ledger, policy or issuer.policy,
                                                      gateway or BuiltinGateway()), now)
    return make


def events(issuer):
    return [dict(r) for r in issuer.ledger.execute(
        "SELECT account_id, card_id, event, old_value, new_value, created_at "
        "FROM account_events ORDER BY id")]


def test_freeze_alerts_and_the_terminal_declines_with_a_security_alert(issuer, terminal, ctx):
    result = account_events.freeze(ctx(), LI_WEI)
    assert (result.card, result.event, result.summary) == \
        ("476173******0011", "card_frozen", "active -> frozen")
    assert result.decision.status == codes.SENT
    card = issuer.ledger.card_on_file(LI_WEI)
    assert card.status == "frozen"
    [event] = events(issuer)
    assert (event["event"], event["old_value"], event["new_value"], event["created_at"]) == \
        ("card_frozen", "active", "frozen", ISSUER_NOW)
    [row] = issuer.ledger.outbox()
    assert (row["kind"], row["status"], row["channel"], row["destination"]) == \
        ("account_change", "sent", "sms", "138****5678")
    assert row["text"] == ("Card ending 0011 was frozen, 2026-11-22 16:02. Payments with it "
                           "are declined until it is unfrozen.")
    assert row["account_event_id"] is not None and row["transaction_id"] is None

    fields = ask(issuer, terminal, LI_WEI)
    assert fields[3] == codes.RESTRICTED_CARD
    assert fields[8] == {1: codes.SECURITY_ALERT, 2: "sms", 3: "138****5678"}
    security = issuer.ledger.outbox()[-1]
    assert (security["kind"], security["status"]) == ("frozen_card", "sent")
    assert security["text"].startswith("Security alert: card ending 0011 was used at "
                                       "terminal T0000001")

    result = account_events.unfreeze(ctx(), LI_WEI)
    assert (result.event, result.summary) == ("card_unfrozen", "frozen -> active")
    assert ask(issuer, terminal, LI_WEI)[3] == codes.APPROVED


def test_stop_payment(issuer, terminal, ctx):
    result = account_events.freeze(ctx(), LI_WEI, stop_payment=True)
    assert (result.event, result.summary) == ("stop_payment", "active -> stopped (stop-payment)")
    assert issuer.ledger.card_on_file(LI_WEI).status == "blocked"
    assert "stop-payment placed" in issuer.ledger.outbox()[-1]["text"]
    assert ask(issuer, terminal, LI_WEI)[8][1] == codes.SECURITY_ALERT
    with pytest.raises(LedgerError, match="already stopped"):
        account_events.freeze(ctx(), LI_WEI)
    assert account_events.unfreeze(ctx(), LI_WEI).summary == \
        "stopped (stop-payment) -> active"


def test_a_frozen_card_can_be_stopped(issuer, ctx):
    assert account_events.freeze(ctx(), ZHAO_LEI, stop_payment=True).summary == \
        "frozen -> stopped (stop-payment)"


@pytest.mark.parametrize("action,pan,message", [
    (lambda c, pan: account_events.freeze(c, pan), ZHAO_LEI, "is already frozen"),
    (lambda c, pan: account_events.unfreeze(c, pan), LI_WEI, "is not frozen"),
    (lambda c, pan: account_events.freeze(c, pan), UNKNOWN,
     r"card 476173\*\*\*\*\*\*0094 is not on file"),
    (lambda c, pan: account_events.freeze(c, pan), "4761730000000012", "Luhn check digit"),
    (lambda c, pan: account_events.set_limit(c, pan, 2000000), LI_WEI,
     "the credit limit is already CNY 20,000.00"),
    (lambda c, pan: account_events.set_limit(c, pan, -1), LI_WEI, "must not be negative"),
])
def test_refused_changes_change_nothing(issuer, ctx, action, pan, message):
    with pytest.raises(ValueError if "Luhn" in message or "negative" in message
                       else LedgerError, match=message):
        action(ctx(), pan)
    assert events(issuer) == [] and issuer.ledger.outbox() == []


@pytest.mark.parametrize("limit,event,words", [
    (3000000, "limit_raised", "raised from CNY 20,000.00 to CNY 30,000.00"),
    (500000, "limit_lowered", "lowered from CNY 20,000.00 to CNY 5,000.00"),
])
def test_credit_limit_changes(issuer, ctx, limit, event, words):
    result = account_events.set_limit(ctx(), LI_WEI, limit)
    assert result.event == event and result.decision.status == codes.SENT
    credit = issuer.ledger.execute("SELECT credit_limit FROM accounts WHERE id = ?",
                                   (issuer.ledger.card_on_file(LI_WEI).account_id,)).fetchone()[0]
    assert credit == limit
    assert words in issuer.ledger.outbox()[0]["text"]
    assert events(issuer)[0]["old_value"] == "2000000"


def test_account_change_follows_the_rules(issuer, ctx):
    # Zhang Min is not subscribed, Sun Li chose purchases only: the change is made, no alert
    assert account_events.set_limit(ctx(), ZHANG_MIN, 100000).decision.status == \
        codes.NOT_SUBSCRIBED
    assert account_events.freeze(ctx(), SUN_LI).decision.status == codes.KIND_NOT_CHOSEN
    assert account_events.unfreeze(ctx(Policy().without("account_change")),
                                   SUN_LI).decision.status == codes.BANK_DOES_NOT_ALERT
    assert issuer.ledger.outbox() == [] and len(events(issuer)) == 3


def test_account_change_in_quiet_hours_is_held(issuer, ctx):
    tz = datetime.timezone(datetime.timedelta(hours=8))
    night = int(datetime.datetime(2026, 11, 22, 23, 0, tzinfo=tz).timestamp())
    result = account_events.freeze(ctx(now=night), WANG_FANG)
    assert (result.decision.status, result.decision.detail) == (codes.QUIET_HOURS, "07:00")
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["channel"], row["language"]) == ("held", "app", "zh")
    assert row["text"] == "您尾号0037的卡已于2026-11-22 23:00冻结，解冻前交易将被拒绝。"


def test_account_change_with_a_failing_gateway(issuer, ctx):
    result = account_events.freeze(ctx(gateway=BuiltinGateway("SMSC down")), LI_WEI)
    assert result.decision.status == codes.GATEWAY_FAILED
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["reason"]) == ("failed", "SMSC down")


# ---- repayment reminders -----------------------------------------------------------------

def test_reminders_for_the_due_date_once(issuer, ctx):
    results = account_events.remind(ctx(), DUE)
    assert [(r.card, r.decision.status) for r in results] == \
        [("476173******0011", codes.SENT), ("476173******0037", codes.SENT)]
    assert results[0].summary == "statement CNY 2,345.00, minimum CNY 234.50, due 2026-12-10"
    li, wang = issuer.ledger.outbox()
    assert li["text"] == ("Card ending 0011: statement balance CNY 2,345.00, minimum payment "
                          "CNY 234.50, due 2026-12-10.")
    assert (wang["channel"], wang["language"]) == ("app", "zh")
    assert wang["text"] == ("您尾号0037的卡本期账单金额CNY 1,000.00，最低还款额CNY 100.00，"
                            "到期还款日2026-12-10。")
    assert {r["kind"] for r in (li, wang)} == {"repayment_reminder"}
    assert account_events.remind(ctx(), DUE) == []           # not twice
    assert len(issuer.ledger.outbox()) == 2
    assert account_events.remind(ctx(), DUE + datetime.timedelta(days=1)) == []


def test_reminder_after_a_new_statement(issuer, ctx):
    account_events.set_statement(issuer.ledger, ZHANG_MIN, statement_amount=50000,
                                 minimum_payment=5000, due_date=datetime.date(2027, 1, 10))
    [result] = account_events.remind(ctx(), datetime.date(2027, 1, 10))
    assert (result.card, result.decision.status) == ("476173******0029", codes.NOT_SUBSCRIBED)
    assert issuer.ledger.outbox() == []


def test_reminder_for_a_cardholder_who_did_not_choose_them(issuer, ctx):
    holder = issuer.ledger.card_on_file(LI_WEI).holder
    preferences.update(issuer.ledger, holder.id, kinds=("purchase",),
                       quiet_hours=QuietHours.parse("00:00-23:59"))
    statuses = [r.decision.status for r in account_events.remind(ctx(), DUE)]
    assert statuses == [codes.KIND_NOT_CHOSEN, codes.SENT]


@pytest.mark.parametrize("amount,minimum,message", [
    (-1, 0, "must not be negative"), (100, 200, "minimum payment is more than"),
])
def test_bad_statement(issuer, amount, minimum, message):
    with pytest.raises(ValueError, match=message):
        account_events.set_statement(issuer.ledger, LI_WEI, statement_amount=amount,
                                     minimum_payment=minimum, due_date=DUE)
