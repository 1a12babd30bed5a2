"""Two issuer processes on one database, hit at the same moment: the same request sent
to both is charged once and both answer it with the same bytes; different purchases on
one account from many terminals never overdraw it, and every approval is charged once.
On SQLite (one writer at a time) and on PostgreSQL (SERIALIZABLE transactions, run again
on a conflict). Several dispatchers on one outbox send each message once."""
import multiprocessing
import threading
from collections import Counter

import pytest

from posbridge.issuer import Ledger, Policy, codes
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway
from posbridge.link.protocol import PURCHASE_REQUEST

from . import issuer_process
from .conftest import ISSUER_NOW
from .request_builder import provisioned_terminal
from .test_alerts_after_commit import queue

pytestmark = pytest.mark.both_backends

LI_WEI = "4761730000000011"          # demo card: CNY 12,345.67 and a credit limit
ZHANG_MIN = "4761730000000029"       # CNY 880.00, no credit limit


def run_issuers(location, batches):
    """Each batch of (mtype, body) answered by an issuer process of its own, all
    started together; their answers, batch by batch."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(batches)), ctx.Queue()
    processes = [ctx.Process(target=issuer_process.answer_all,
                             args=(str(location[0]), str(location[1]), ISSUER_NOW, batch,
                                   barrier, results))
                 for batch in batches]
    for p in processes:
        p.start()
    answers = [results.get(timeout=90) for _ in processes]
    for p in processes:
        p.join(30)
        assert p.exitcode == 0
    # which process answered first is unknown: match the answers to the batches by size
    return answers


def test_the_same_purchases_sent_to_two_issuers_at_once_are_charged_once(open_ledger):
    ledger = open_ledger()
    try:
        terminal = provisioned_terminal(ledger, "T0000100", "00000100")
        opening = ledger.card_by_pan(LI_WEI).available
    finally:
        ledger.close()
    purchases = [terminal.purchase(LI_WEI, 1000 + i) for i in range(12)]
    batch = [(PURCHASE_REQUEST, body) for body, _ in purchases]
    first, second = run_issuers(open_ledger.location, [batch, batch])
    for a, b, (_, pending) in zip(first, second, purchases):
        fields_a, fields_b = terminal.check(a, pending), terminal.check(b, pending)
        assert fields_a[3] == codes.APPROVED
        # the same approval (code, balances); only the alert's status may differ: an
        # answer read from the journal while the other issuer sends the alert says
        # "queued" where the sender's says "sent" (service.py, alerts after COMMIT)
        for fields in (fields_a, fields_b):
            del fields[8]
        assert fields_a == fields_b
    ledger = open_ledger()
    try:
        entries = ledger.ledger_entries()
        assert len(entries) == len(purchases)          # one posting each
        assert Counter(e["trace_number"] for e in entries) == \
            Counter(p.trace for _, p in purchases)
        assert ledger.card_by_pan(LI_WEI).available == \
            opening - sum(p.amount for _, p in purchases)
        assert len(ledger.transactions()) == len(purchases)
    finally:
        ledger.close()


def test_purchases_on_one_account_from_two_issuers_never_overdraw_it(open_ledger):
    ledger = open_ledger()
    try:
        opening = ledger.card_by_pan(ZHANG_MIN).available
        terminals = [provisioned_terminal(ledger, f"T{100 + i:07d}", f"{0x100 + i:08X}")
                     for i in range(16)]
    finally:
        ledger.close()
    # 16 purchases of a fifth of the balance and a cent: four can be approved, whatever
    # the order
    amount = opening // 5 + 1
    purchases = [t.purchase(ZHANG_MIN, amount) for t in terminals]
    batches = [[(PURCHASE_REQUEST, body) for body, _ in purchases[i::2]] for i in range(2)]
    answers = run_issuers(open_ledger.location, batches)
    by_body = {}
    for batch_answers in answers:
        # a process's answers are in its batch's order; find its batch by the first answer
        for i, batch in enumerate(batches):
            pendings = [p for _, p in purchases[i::2]]
            try:
                fields = [terminal_for(terminals, p).check(r, p)
                          for r, p in zip(batch_answers, pendings)]
            except Exception:                          # noqa: BLE001 - the other batch
                continue
            for f, p in zip(fields, pendings):
                by_body[p.terminal_id] = f[3]
            break
    assert len(by_body) == len(purchases)
    outcome = Counter(by_body.values())
    assert outcome == {codes.APPROVED: 4, codes.INSUFFICIENT_FUNDS: 12}
    ledger = open_ledger()
    try:
        card = ledger.card_by_pan(ZHANG_MIN)
        assert card.available == card.ledger == opening - 4 * amount >= 0
        charged = {e["terminal_id"] for e in ledger.ledger_entries()}
        assert charged == {t for t, code in by_body.items() if code == codes.APPROVED}
    finally:
        ledger.close()


def terminal_for(terminals, pending):
    return next(t for t in terminals if t.terminal_id == pending.terminal_id)


def test_four_dispatchers_on_one_outbox_send_each_message_once(open_ledger):
    ids = queue(open_ledger(), 60)
    sent, lock = [], threading.Lock()

    class Recording(BuiltinGateway):
        def send(self, message):
            with lock:
                sent.append(message.message_id)
            return super().send(message)
    ledgers = [open_ledger() for _ in range(4)]
    start = threading.Barrier(4)
    reports = []

    def work(ledger):
        start.wait()
        reports.append(Dispatcher(ledger, Policy(), Recording(),
                                  clock=lambda: ISSUER_NOW).run_once())
    threads = [threading.Thread(target=work, args=(ledger,)) for ledger in ledgers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(sent) == sorted(ids)              # each once, none lost
        assert sum(r.count("sent") for r in reports) == 60
        assert all(r["status"] == "sent" and r["attempts"] == 1
                   for r in ledgers[0].outbox())
    finally:
        for ledger in ledgers:
            ledger.close()
