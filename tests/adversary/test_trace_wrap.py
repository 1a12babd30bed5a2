"""A terminal goes on after its trace number wraps (999999 -> 1): the KSN is the
transaction's identity, and (terminal id, trace number) names a transaction only within
ledger.IDENTITY_WINDOW_S. Started near the wrap, a terminal whose trace numbers 1, 2, 3
were used long ago runs purchases and a reversal across it."""
from posbridge.issuer import Issuer, Ledger, Policy, codes
from posbridge.issuer.ledger import IDENTITY_WINDOW_S

from ._issuer import (ISSUER_NOW, LI_WEI, OPENING, db_path, demo_template,  # noqa: F401
                      money, send, terminal)


def test_purchases_and_a_reversal_across_the_wrap(db_path, terminal):
    # the terminal's first life: traces 1..3, more than the window ago
    past = Issuer(Ledger.open(db_path), Policy(), clock=lambda: ISSUER_NOW - IDENTITY_WINDOW_S)
    then = terminal.now - IDENTITY_WINDOW_S     # the terminal's clock agreed then, too
    try:
        for _ in range(3):
            built = terminal.purchase(LI_WEI, 100, now=then)
            assert send(past, terminal, built)[3] == codes.APPROVED
    finally:
        past.close()
    issuer = Issuer(Ledger.open(db_path), Policy(), clock=lambda: ISSUER_NOW)
    try:
        answers = {}
        for trace in (999998, 999999, 1, 2):
            built = terminal.purchase(LI_WEI, 1000 + trace % 10, trace=trace)
            answers[trace] = built, send(issuer, terminal, built)
        assert [a[3] for _, a in answers.values()] == [codes.APPROVED] * 4
        # the reversal of the new trace 1 names its KSN: the old trace 1 stays charged
        reversal = terminal.reversal(answers[1][0][1], trace=3)
        assert send(issuer, terminal, reversal)[16] == codes.REVERSED
        rows = [r for r in issuer.ledger.journal() if r["trace_number"] == 1]
        assert [(r["kind"], r["reversed_by"] is None) for r in rows] == \
            [("purchase", True), ("purchase", False)]
        charged = 3 * 100 + 1008 + 1009 + 1002
        assert issuer.ledger.card_by_pan(LI_WEI).available == OPENING - charged
        # within the window a trace still names one transaction: another request with
        # trace 2 (a new KSN) is 94 and charges nothing
        before = money(issuer)[0]
        again = terminal.purchase(LI_WEI, 5000, trace=2)
        assert send(issuer, terminal, again)[3] == codes.DUPLICATE
        assert money(issuer)[0] == before
    finally:
        issuer.close()
