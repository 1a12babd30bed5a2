"""A second terminal of the same key set poses as another: the issuer's registry binds
each terminal id to its initial key ID and merchant, so a request whose KSN is not the
named terminal's is refused as a security error, visibly in the issuer's log, and
nothing in the ledger, the journal or the outbox moves.

The attacker is a real provisioned terminal (T0000002, its own derivation ID): its
MACs are right under its own KSN, and the wire shows the terminal id it claims."""
import logging

import pytest

from posbridge.issuer import codes

from ._issuer import (LI_WEI, OPENING, ZHANG_MIN, db_path, demo_template,  # noqa: F401
                      issuer, make_issuer, money, refused, second_terminal, send, sleeps,
                      terminal)

pytestmark = pytest.mark.usefixtures("logs")


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO, logger="posbridge.issuer")


def posing_as(attacker, terminal_id):
    """The attacker's builder, claiming `terminal_id` in key 1 (its own keys)."""
    attacker.terminal_id = terminal_id
    return attacker


def test_a_reversal_in_another_terminals_name_is_refused(issuer, terminal, caplog):
    # T0000001 sells; T0000002 reverses that sale as T0000001, naming its trace and KSN
    purchase = terminal.purchase(LI_WEI, 1250, trace=5)
    assert send(issuer, terminal, purchase)[3] == codes.APPROVED
    attacker = posing_as(second_terminal(issuer), "T0000001")
    before = money(issuer)
    refused(issuer, attacker.reversal(purchase[1], trace=6), caplog,
            "reversal-request T0000001/6 refused",
            "initial key ID 1234567890123457 is not terminal T0000001's "
            "(it is terminal T0000002's)")
    assert money(issuer) == before
    assert issuer.ledger.card_by_pan(LI_WEI).available == OPENING - 1250
    # T0000001's own reversal still works
    reversal = terminal.reversal(purchase[1])
    assert send(issuer, terminal, reversal)[16] == codes.REVERSED


def test_a_reversal_may_not_name_another_terminals_purchase_as_its_own(issuer, terminal,
                                                                       caplog):
    # under its own id, naming T0000001's (trace, KSN) as its original
    purchase = terminal.purchase(LI_WEI, 1250, trace=5)
    send(issuer, terminal, purchase)
    attacker = second_terminal(issuer)
    before = money(issuer)
    refused(issuer, attacker.reversal(purchase[1], trace=9), caplog,
            "original KSN 1234567890123456", "is not terminal T0000002's")
    assert money(issuer) == before


def test_a_purchase_in_another_terminals_name_is_refused(issuer, caplog):
    attacker = posing_as(second_terminal(issuer), "T0000001")
    before = money(issuer)
    refused(issuer, attacker.purchase(LI_WEI, 99900, merchant_name="ANY SHOP", trace=7),
            caplog, "purchase-request T0000001/7 refused", "is not terminal T0000001's")
    assert money(issuer) == before
    assert all("ANY SHOP" not in row["text"] for row in issuer.ledger.outbox())


def test_the_merchant_in_the_sms_and_the_journal_is_the_registrys(issuer, caplog):
    # a registered terminal names another merchant in its request: charged under its own
    shop = second_terminal(issuer, merchant_name="OTHER SHOP")
    fields = send(issuer, shop, shop.purchase(LI_WEI, 1250, merchant_id="999999999999999",
                                              merchant_name="ANY SHOP"))
    assert fields[3] == codes.APPROVED
    [row] = issuer.ledger.journal()
    assert (row["terminal_id"], row["merchant_id"], row["merchant_name"]) == \
        ("T0000002", "104110070110001", "OTHER SHOP")
    [sms] = issuer.ledger.outbox()
    assert "OTHER SHOP (T0000002)" in sms["text"] and "ANY SHOP" not in sms["text"]
    assert "names merchant '999999999999999' 'ANY SHOP'" in caplog.text


def test_another_terminals_trace_numbers_cannot_be_burnt(issuer, terminal, caplog):
    # T0000002 sends inquiries and purchases as T0000001 with T0000001's next traces
    attacker = posing_as(second_terminal(issuer), "T0000001")
    before = money(issuer)
    for trace in (1, 2, 3):
        refused(issuer, attacker.request(ZHANG_MIN, trace=trace), caplog,
                f"balance-request T0000001/{trace} refused")
        refused(issuer, attacker.purchase(ZHANG_MIN, 100, trace=trace + 10), caplog,
                "not terminal T0000001's")
    assert money(issuer) == before
    # nothing was journaled under T0000001's traces: its own purchases go through
    for trace in (1, 2, 3, 11):
        assert send(issuer, terminal, terminal.purchase(LI_WEI, 100, trace=trace))[3] == \
            codes.APPROVED


def test_an_unregistered_terminal_is_refused(issuer, caplog):
    # a key of the key set nobody registered, under a terminal id nobody registered
    from tests.host.issuer.request_builder import BDK, INITIAL_KEY_ID, TerminalRequestBuilder
    from posbridge.issuer import dukpt
    key_id = INITIAL_KEY_ID[:4] + bytes.fromhex("90123499")
    rogue = TerminalRequestBuilder("T0000099", dukpt.derive_initial_key(BDK, key_id), key_id)
    before = money(issuer)
    refused(issuer, rogue.purchase(LI_WEI, 1250), caplog, "terminal T0000099 is not registered")
    # a registered terminal's id with the unregistered key
    refused(issuer, posing_as(rogue, "T0000001").purchase(LI_WEI, 1250), caplog,
            "initial key ID 1234567890123499 is not terminal T0000001's (not registered)")
    assert money(issuer) == before


def test_a_rekeyed_terminals_old_key_is_refused_its_purchases_still_reversed(issuer,
                                                                             caplog):
    from posbridge.issuer import LedgerError
    from tests.host.issuer.request_builder import provisioned_terminal
    old = second_terminal(issuer)
    with pytest.raises(LedgerError, match="registered already"):
        provisioned_terminal(issuer.ledger, "T0000002", "90123458")
    with pytest.raises(LedgerError, match="issued already"):
        provisioned_terminal(issuer.ledger, "T0000002", "90123457", force=True)
    purchase = old.purchase(LI_WEI, 1250)
    assert send(issuer, old, purchase)[3] == codes.APPROVED
    new = provisioned_terminal(issuer.ledger, "T0000002", "90123458", force=True)
    new.trace = old.trace
    before = money(issuer)
    refused(issuer, old.purchase(LI_WEI, 1250), caplog,
            "initial key ID 1234567890123457 was retired")
    assert money(issuer) == before
    # the board's pending reversal, now under the new key, names the old key's KSN
    assert send(issuer, new, new.reversal(purchase[1]))[16] == codes.REVERSED
