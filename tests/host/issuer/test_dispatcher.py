"""The dispatcher: queued alerts sent, failures kept with their reason and retried with
backoff (never dropped), quiet hours waited out, security alerts sent at once; and the
issuer answering 9 when its gateway refuses an alert."""
import datetime

import pytest

from posbridge.issuer import Faults, Issuer, Ledger, Policy, codes
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway, GatewayError

from .conftest import ISSUER_NOW
from .test_balance_inquiry import LI_WEI, ZHANG_MIN, ask

# SQLite and PostgreSQL: the same answers and the same ledger
pytestmark = pytest.mark.both_backends

WANG_FANG = "4761730000000037"     # app push, Chinese, quiet hours 22:00-07:00
TZ = datetime.timezone(datetime.timedelta(hours=8))
NIGHT = int(datetime.datetime(2026, 11, 22, 23, 30, tzinfo=TZ).timestamp())
MORNING = int(datetime.datetime(2026, 11, 23, 7, 0, tzinfo=TZ).timestamp())


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


class FlakyGateway(BuiltinGateway):
    """Refuses while `down` is true."""

    def __init__(self):
        super().__init__()
        self.down = True

    def send(self, message):
        if self.down:
            raise GatewayError("SMSC busy")
        return super().send(message)


@pytest.fixture
def at(db_path, terminal):
    """at(t, policy, faults) -> an issuer whose clock says t, the terminal's with it (a
    request's time must be the issuer's, give or take minutes)."""
    made = []

    def make(t, policy=None, faults=None):
        terminal.now = t
        issuer = Issuer(Ledger.open(db_path), policy or Policy(), faults or Faults(),
                        clock=Clock(t), sleep=lambda s: None)
        made.append(issuer)
        return issuer
    yield make
    for issuer in made:
        issuer.close()


def rows(issuer):
    return {r["message_id"]: r for r in issuer.ledger.outbox()}


def test_queued_alerts_are_sent(make_issuer, terminal):
    issuer = make_issuer(Policy(send_immediately=False))
    assert ask(issuer, terminal, LI_WEI)[8][1] == codes.QUEUED
    assert ask(issuer, terminal, WANG_FANG)[8][1] == codes.QUEUED
    assert [r["status"] for r in issuer.ledger.outbox()] == ["queued", "queued"]
    sms, app = BuiltinGateway(), BuiltinGateway()
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, {"sms": sms, "app": app},
                            clock=Clock(ISSUER_NOW + 5))
    report = dispatcher.run_once()
    li, wang = issuer.ledger.outbox()
    assert [(o.message_id, o.status) for o in report.outcomes] == \
        [(li["message_id"], "sent"), (wang["message_id"], "sent")]
    assert (sms.sent, app.sent) == ([li["message_id"]], [wang["message_id"]])
    assert (li["status"], li["attempts"], li["sent_at"], li["gateway_ref"]) == \
        ("sent", 1, ISSUER_NOW + 5, f"builtin-{li['message_id']}")
    assert wang["language"] == "zh" and "可用余额" in wang["text"]
    assert dispatcher.run_once().outcomes == []          # nothing is sent twice


def test_a_failed_send_is_retried_with_backoff_and_never_dropped(make_issuer, terminal):
    issuer = make_issuer(Policy(send_immediately=False))
    ask(issuer, terminal, LI_WEI)
    gateway = FlakyGateway()
    clock = Clock(ISSUER_NOW)
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, gateway, clock=clock)
    expected_delays = [60, 120, 240, 480, 960, 1920, 3600, 3600]
    for attempt, delay in enumerate(expected_delays, start=1):
        report = dispatcher.run_once()
        assert [o.status for o in report.outcomes] == ["failed"]
        [row] = issuer.ledger.outbox()
        assert (row["status"], row["attempts"], row["reason"], row["next_attempt_at"]) == \
            ("failed", attempt, "SMSC busy", clock.t + delay)
        clock.t += delay - 1
        assert dispatcher.run_once().outcomes == []      # not due yet
        clock.t += 1
    gateway.down = False
    assert [o.status for o in dispatcher.run_once().outcomes] == ["sent"]
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["attempts"], row["reason"], row["next_attempt_at"]) == \
        ("sent", len(expected_delays) + 1, None, None)


def test_the_issuer_answers_9_when_its_gateway_fails_and_the_dispatcher_sends_later(
        make_issuer, terminal):
    issuer = make_issuer(faults=Faults(gateway_down=True))
    assert ask(issuer, terminal, LI_WEI)[8] == {1: codes.GATEWAY_FAILED, 2: "sms",
                                               3: "138****5678"}
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["attempts"], row["reason"]) == \
        ("failed", 1, "gateway down (fault)")
    assert row["next_attempt_at"] == ISSUER_NOW + 60
    report = Dispatcher(issuer.ledger, issuer.policy, clock=Clock(ISSUER_NOW + 60)).run_once()
    assert [o.status for o in report.outcomes] == ["sent"]
    assert issuer.ledger.outbox()[0]["status"] == "sent"


def test_security_alert_failed_is_9_and_kept(make_issuer, terminal):
    issuer = make_issuer(faults=Faults(gateway_down=True))
    answers = [ask(issuer, terminal, ZHANG_MIN, pin="5555") for _ in range(3)]
    assert answers[-1][3] == "75" and answers[-1][8][1] == codes.GATEWAY_FAILED
    [row] = issuer.ledger.outbox()
    assert (row["kind"], row["status"]) == ("pin_tries_exceeded", "failed")


def test_quiet_hours_hold_an_alert_until_they_end(at, terminal):
    issuer = at(NIGHT)
    assert ask(issuer, terminal, WANG_FANG)[8] == {1: codes.QUIET_HOURS, 2: "app",
                                                  3: "137****1111", 4: "07:00"}
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["next_attempt_at"], row["language"]) == ("held", MORNING, "zh")
    clock = Clock(MORNING - 1)
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, clock=clock)
    assert dispatcher.run_once().outcomes == []
    clock.t = MORNING
    assert [o.status for o in dispatcher.run_once().outcomes] == ["sent"]


def test_security_alerts_ignore_quiet_hours(at, terminal):
    issuer = at(NIGHT)
    answers = [ask(issuer, terminal, WANG_FANG, pin="5555") for _ in range(3)]
    assert [a[8][1] for a in answers] == [codes.QUIET_HOURS, codes.QUIET_HOURS,
                                          codes.SECURITY_ALERT]
    assert [r["status"] for r in issuer.ledger.outbox()] == ["held", "held", "sent"]


def test_quiet_hours_that_begin_before_the_send_hold_it(make_issuer, terminal):
    issuer = make_issuer(Policy(send_immediately=False))   # queued at 16:02
    ask(issuer, terminal, WANG_FANG)
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, clock=Clock(NIGHT))
    report = dispatcher.run_once()
    assert [(o.status, o.detail) for o in report.outcomes] == [("held", "until 07:00")]
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["next_attempt_at"], row["attempts"]) == ("held", MORNING, 0)


def test_a_failed_security_alert_is_retried_at_night(at, terminal):
    issuer = at(NIGHT, faults=Faults(gateway_down=True))
    for _ in range(3):
        ask(issuer, terminal, WANG_FANG, pin="5555")
    security = [r for r in issuer.ledger.outbox() if r["kind"] == "pin_tries_exceeded"]
    assert [r["status"] for r in security] == ["failed"]
    report = Dispatcher(issuer.ledger, issuer.policy, clock=Clock(NIGHT + 60)).run_once()
    assert [(o.message_id, o.status) for o in report.outcomes] == \
        [(security[0]["message_id"], "sent")]


def test_no_phone_any_more_fails_and_keeps_the_message(make_issuer, terminal):
    from posbridge.issuer import preferences
    issuer = make_issuer(Policy(send_immediately=False))
    ask(issuer, terminal, LI_WEI)
    holder = issuer.ledger.card_on_file(LI_WEI).holder
    preferences.update(issuer.ledger, holder.id, phone=None)
    report = Dispatcher(issuer.ledger, issuer.policy, clock=Clock(ISSUER_NOW)).run_once()
    assert [(o.status, o.detail) for o in report.outcomes] == [("failed", "no phone on file")]
    preferences.update(issuer.ledger, holder.id, phone="13812345678")
    report = Dispatcher(issuer.ledger, issuer.policy, clock=Clock(ISSUER_NOW + 60)).run_once()
    assert [o.status for o in report.outcomes] == ["sent"]


def test_limit_and_order(make_issuer, terminal):
    issuer = make_issuer(Policy(send_immediately=False))
    for _ in range(3):
        ask(issuer, terminal, LI_WEI)
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, clock=Clock(ISSUER_NOW))
    first = dispatcher.run_once(limit=2)
    ids = [r["message_id"] for r in issuer.ledger.outbox()]
    assert [o.message_id for o in first.outcomes] == ids[:2]
    assert [o.message_id for o in dispatcher.run_once().outcomes] == ids[2:]


def test_a_channel_without_a_gateway_fails_with_the_reason(make_issuer, terminal):
    issuer = make_issuer(Policy(send_immediately=False))
    ask(issuer, terminal, WANG_FANG)                        # app push
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, {"sms": BuiltinGateway()},
                            clock=Clock(ISSUER_NOW))
    assert [(o.status, o.detail) for o in dispatcher.run_once().outcomes] == \
        [("failed", "no gateway for channel app")]
