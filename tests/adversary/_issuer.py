"""What the attacks on the issuer share: the issuer on the demo data (the fixtures of
tests/host/issuer), a second provisioned terminal, and a snapshot of everything that
moves money or tells the cardholder."""
import pytest

from posbridge.issuer import IssuerSecurityError
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST, REVERSAL_REQUEST

from tests.host.issuer.conftest import (ISSUER_NOW, db_path, demo_template,  # noqa: F401
                                        issuer, make_issuer, sleeps, terminal)
from tests.host.issuer.request_builder import provisioned_terminal

LI_WEI = "4761730000000011"        # CNY 12,345.67, SMS alerts
ZHANG_MIN = "4761730000000029"
OPENING = 1234567
ISSUER_LOG = "posbridge.issuer"

SEND = {"balance": BALANCE_REQUEST, "purchase": PURCHASE_REQUEST, "reversal": REVERSAL_REQUEST}


def second_terminal(issuer, terminal_id="T0000002", derivation_id="90123457",
                    merchant_name="OTHER SHOP"):
    """A terminal provisioned as posbridge provision does, beside the demo's T0000001."""
    return provisioned_terminal(issuer.ledger, terminal_id, derivation_id,
                                merchant_name=merchant_name)


def money(issuer):
    """Balances, postings, journal and outbox: what an attack must leave as it was."""
    cards = sorted((c.pan, c.available, c.ledger) for c in issuer.ledger.cards())
    return (cards, issuer.ledger.ledger_entries(), issuer.ledger.journal(),
            issuer.ledger.outbox())


def _mtype(pending):
    kind = getattr(pending, "kind", None)      # the board's own Pending has its type
    return SEND[kind] if kind else pending.mtype


def send(issuer, terminal, built):
    body, pending = built
    return terminal.check(issuer.handle(_mtype(pending), body), pending)


def refused(issuer, built, caplog, *why):
    """The request is refused as a security error, with each of `why` in the log."""
    body, pending = built
    caplog.clear()
    with pytest.raises(IssuerSecurityError):
        issuer.handle(_mtype(pending), body)
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == ISSUER_LOG)
    for fragment in why:
        assert fragment in logged, logged
