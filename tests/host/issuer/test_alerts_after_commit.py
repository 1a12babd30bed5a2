"""The transactional outbox: an alert is written in the transaction that made it and
handed to the gateway only after that transaction's COMMIT. A transaction that rolls
back (a failed COMMIT, a fault after the outbox write) leaves no message and sends
none; the normal path sends exactly once; an issuer that stops between COMMIT and send
leaves the message to the dispatcher; two dispatchers on one database never send one
message twice."""
import sqlite3
import threading

import pytest

from posbridge.issuer import Faults, Issuer, Ledger, Policy, codes, outbox
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST

from .conftest import ISSUER_NOW
from .test_balance_inquiry import LI_WEI

# SQLite and PostgreSQL: the same answers and the same ledger
pytestmark = pytest.mark.both_backends

SENT_SMS = {1: codes.SENT, 2: "sms", 3: "138****5678"}


def purchase(issuer, terminal, pan=LI_WEI, amount=1250):
    body, pending = terminal.purchase(pan, amount)
    terminal.pending = pending
    return body, terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)


def balance(issuer, open_ledger):
    """Li Wei's available balance as another process reads it: committed data only."""
    other = open_ledger()
    try:
        return other.card_by_pan(LI_WEI).available
    finally:
        other.close()


class WitnessGateway(BuiltinGateway):
    """Looks at the database from another connection at the moment of each send: what
    it sees there is committed."""

    def __init__(self, open_ledger):
        super().__init__()
        self.open_ledger = open_ledger
        self.seen = []

    def send(self, message):
        other = self.open_ledger()
        try:
            self.seen.append([(r["message_id"], r["status"]) for r in other.outbox()])
        finally:
            other.close()
        return super().send(message)


class FailingCommit:
    """The ledger's connection, whose next `fail` COMMITs raise as a full disk would."""

    def __init__(self, conn, fail=1):
        self._conn = conn
        self.fail = fail

    def execute(self, sql, params=()):
        if sql == "COMMIT" and self.fail:
            self.fail -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._conn, name)


# ---- the normal path --------------------------------------------------------------------

def test_the_alert_is_sent_once_after_the_commit(open_ledger, terminal):
    gateway = WitnessGateway(open_ledger)
    issuer = Issuer(open_ledger(), Policy(), clock=lambda: ISSUER_NOW,
                    gateways=gateway)
    try:
        _, fields = purchase(issuer, terminal)
        assert (fields[3], fields[8]) == (codes.APPROVED, SENT_SMS)
        [row] = issuer.ledger.outbox()
        assert gateway.sent == [row["message_id"]]                 # exactly once
        # at the send, another connection already saw the row: it was committed,
        # claimed by the issuer for its own send
        assert gateway.seen == [[(row["message_id"], "sending")]]
        assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 1, ISSUER_NOW)
        # the journaled answer is the one the terminal got: a repeat gets the same bytes
        [tx] = issuer.ledger.transactions()
        journaled = issuer.ledger.find_transaction(tx["terminal_id"], tx["trace_number"])
        assert terminal.check(journaled.response, terminal.pending)[8] == SENT_SMS
        # a dispatcher run afterwards finds nothing to send
        report = Dispatcher(issuer.ledger, issuer.policy, gateway,
                            clock=lambda: ISSUER_NOW + 86400).run_once()
        assert report.outcomes == [] and gateway.sent == [row["message_id"]]
    finally:
        issuer.close()


def test_a_repeated_request_sends_nothing_more(issuer, terminal):
    body, first = purchase(issuer, terminal)
    sent = list(issuer.dispatcher.gateways["sms"].sent)
    again = issuer.handle(PURCHASE_REQUEST, body)
    assert issuer.dispatcher.gateways["sms"].sent == sent and len(sent) == 1
    assert len(issuer.ledger.outbox()) == 1
    assert issuer.ledger.find_transaction("T0000001", 1).response == again


def test_gateway_failure_is_answered_9_and_journaled_so(make_issuer, terminal):
    issuer = make_issuer(faults=Faults(gateway_down=True))
    body, fields = purchase(issuer, terminal)
    assert fields[8] == {1: codes.GATEWAY_FAILED, 2: "sms", 3: "138****5678"}
    assert issuer.handle(PURCHASE_REQUEST, body) == issuer.ledger.find_transaction(
        "T0000001", 1).response
    [row] = issuer.ledger.outbox()
    assert (row["status"], row["attempts"], row["reason"]) == \
        ("failed", 1, "gateway down (fault)")
    assert row["next_attempt_at"] == ISSUER_NOW + 60


# ---- a transaction that rolls back sends nothing ------------------------------------

def test_a_failed_commit_sends_nothing_and_leaves_no_message(issuer, terminal, open_ledger):
    sent = issuer.dispatcher.gateways["sms"].sent
    issuer.ledger._conn = FailingCommit(issuer.ledger._conn)
    _, fields = purchase(issuer, terminal)
    # the purchase's transaction rolled back; the 96 is journaled in a second one
    assert (fields[3], fields[8]) == (codes.SYSTEM_MALFUNCTION, {1: codes.NOTHING_TO_ALERT})
    assert sent == [] and issuer.ledger.outbox() == []
    assert balance(issuer, open_ledger) == 1234567                   # not charged
    assert [t["response_code"] for t in issuer.ledger.transactions()] == ["96"]


def test_every_commit_failing_still_sends_nothing(issuer, terminal, open_ledger):
    sent = issuer.dispatcher.gateways["sms"].sent
    issuer.ledger._conn = FailingCommit(issuer.ledger._conn, fail=2)
    _, fields = purchase(issuer, terminal)
    assert fields[3] == codes.SYSTEM_MALFUNCTION
    assert sent == [] and issuer.ledger.outbox() == [] and issuer.ledger.transactions() == []
    assert balance(issuer, open_ledger) == 1234567


@pytest.mark.parametrize("request_kind", ["purchase", "wrong PIN locks the card"])
def test_a_fault_after_the_outbox_write_rolls_the_alert_back(issuer, terminal, mocker,
                                                              request_kind):
    sent = issuer.dispatcher.gateways["sms"].sent
    real_add = outbox.add

    def add_then_fail(*args, **kw):
        real_add(*args, **kw)
        assert len(issuer.ledger.outbox()) == 1           # written, in the transaction
        raise RuntimeError("fault after the outbox write")
    mocker.patch.object(outbox, "add", side_effect=add_then_fail)
    if request_kind == "purchase":
        _, fields = purchase(issuer, terminal)
    else:
        for _ in range(3):
            body, pending = terminal.request(LI_WEI, pin="9999")
            fields = terminal.check(issuer.handle(BALANCE_REQUEST, body), pending)
    assert (fields[3], fields[8]) == (codes.SYSTEM_MALFUNCTION, {1: codes.NOTHING_TO_ALERT})
    assert sent == [] and issuer.ledger.outbox() == []
    assert issuer.ledger.card_by_pan(LI_WEI).available == 1234567


# ---- the issuer stops between its COMMIT and its send ---------------------------------

def test_an_alert_the_issuer_could_not_send_goes_with_the_dispatcher(issuer, terminal,
                                                                    mocker):
    from posbridge.issuer import alerts
    mocker.patch.object(alerts, "deliver", side_effect=RuntimeError("process killed"))
    _, fields = purchase(issuer, terminal)
    assert (fields[3], fields[8][1]) == (codes.APPROVED, codes.QUEUED)   # what is true
    [row] = issuer.ledger.outbox()
    assert row["status"] == "sending"
    gateway = BuiltinGateway()
    # claimed by the issuer: no dispatcher takes it while the claim holds
    soon = Dispatcher(issuer.ledger, issuer.policy, gateway, clock=lambda: ISSUER_NOW + 60)
    assert soon.run_once().outcomes == [] and gateway.sent == []
    later = Dispatcher(issuer.ledger, issuer.policy, gateway,
                       clock=lambda: ISSUER_NOW + outbox.CLAIM_S)
    assert [o.status for o in later.run_once().outcomes] == ["sent"]
    assert gateway.sent == [row["message_id"]]
    assert later.run_once().outcomes == [] and gateway.sent == [row["message_id"]]


# ---- two dispatchers on one database ---------------------------------------------------

def queue(ledger, count):
    holder = ledger.card_by_pan(LI_WEI).holder
    with ledger.transaction():
        for n in range(count):
            outbox.add(ledger, transaction_id=None, cardholder_id=holder.id,
                       kind="account_change", card_last4="0011", channel="sms",
                       destination="138****5678", text=f"message {n}", status="queued",
                       now=ISSUER_NOW)
    return [r["message_id"] for r in ledger.outbox()]


class SlowGateway(BuiltinGateway):
    """Records every send in a list shared with the other dispatcher's gateway, and
    gives the other dispatcher time to run in between."""

    def __init__(self, log, pause):
        super().__init__()
        self.log = log
        self.pause = pause

    def send(self, message):
        self.log.append(message.message_id)
        self.pause()
        return super().send(message)


def test_two_dispatchers_running_together_send_each_message_once(open_ledger):
    ids = queue(open_ledger(), 40)
    log = []
    ledgers = [open_ledger() for _ in range(2)]
    dispatchers = [Dispatcher(ledger, Policy(),
                              SlowGateway(log, lambda: threading.Event().wait(0.002)),
                              clock=lambda: ISSUER_NOW) for ledger in ledgers]
    start = threading.Barrier(2)
    reports = [None, None]

    def run(i):
        start.wait()
        reports[i] = dispatchers[i].run_once()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert sorted(log) == sorted(ids)                       # each once, none lost
        assert sum(r.count("sent") for r in reports) == 40
        assert all(r["status"] == "sent" and r["attempts"] == 1
                   for r in ledgers[0].outbox())
    finally:
        for ledger in ledgers:
            ledger.close()


def test_a_dispatcher_with_a_stale_list_skips_what_another_has_sent(open_ledger):
    # A reads the due rows, then B runs all the way through while A sends its first
    # message; A's claims of the rows B has sent match nothing, so A skips them
    ids = queue(open_ledger(), 5)
    log = []
    ledger_a, ledger_b = open_ledger(), open_ledger()
    b = Dispatcher(ledger_b, Policy(), SlowGateway(log, lambda: None),
                   clock=lambda: ISSUER_NOW)
    ran = []

    def b_runs_once():
        if not ran:
            ran.append(b.run_once())
    a = Dispatcher(ledger_a, Policy(), SlowGateway(log, b_runs_once),
                   clock=lambda: ISSUER_NOW)
    try:
        report_a = a.run_once()
        assert sorted(log) == sorted(ids) and len(log) == 5
        assert (report_a.count("sent"), ran[0].count("sent")) == (1, 4)
    finally:
        ledger_a.close()
        ledger_b.close()


def test_a_row_is_claimed_once_until_its_claim_lapses(open_ledger):
    ledger = open_ledger()
    try:
        [message_id] = queue(ledger, 1)
        claim = lambda at: ledger.atomically(lambda: outbox.claim_due(ledger, at))  # noqa: E731
        row = claim(ISSUER_NOW)
        assert (row.message_id, row.status) == (message_id, "queued")
        assert claim(ISSUER_NOW) is None                          # taken: nothing due
        assert outbox.due(ledger, ISSUER_NOW) == []
        # a lapsed claim is due again, and can be claimed once more, by one sender
        [lapsed] = outbox.due(ledger, ISSUER_NOW + outbox.CLAIM_S)
        assert (lapsed.message_id, lapsed.status) == (message_id, "sending")
        assert claim(ISSUER_NOW + outbox.CLAIM_S).message_id == message_id
        assert claim(ISSUER_NOW + outbox.CLAIM_S) is None
        assert outbox.waiting_count(ledger) == 1
    finally:
        ledger.close()
