"""The real firmware across its trace wrap (999999 -> 1): the board's keys.bin record
set near it, an issuer whose journal holds the terminal's trace numbers 1 to 4 from
its first life (more than ledger.IDENTITY_WINDOW_S ago). Purchases go on being approved,
and a reversal after the wrap credits the right one."""
import time

from posbridge.board.provision import (TEST_BDK, TEST_INITIAL_KEY_ID, provision_test_terminal,
                                       register_record)
from posbridge.issuer.dukpt import derive_initial_key
from posbridge.issuer import Issuer, Ledger, Policy, codes
from posbridge.issuer.demo_data import load_demo
from posbridge.issuer.ledger import IDENTITY_WINDOW_S
from posbridge.link import protocol as p

from .conftest import Session
from .test_purchase import LI_WEI, LI_WEI_BALANCE, _drop, dismiss, purchase, sent


def _first_life(path):
    """Trace numbers 1..4 of T0000001 (KSN counters 1..4), two windows ago."""
    from tests.host.issuer.request_builder import TerminalRequestBuilder
    then = int(time.time()) - 2 * IDENTITY_WINDOW_S
    # the terminal's clock agreed with the issuer's then, too
    terminal = TerminalRequestBuilder(now=then)
    past = Issuer(Ledger.open(path), Policy(), clock=lambda: then + 60)
    try:
        for _ in range(4):
            body, pending = terminal.purchase(LI_WEI, 100)
            assert terminal.check(past.handle(p.PURCHASE_REQUEST, body), pending)[3] == \
                codes.APPROVED
    finally:
        past.close()


def test_the_board_goes_on_across_the_trace_wrap(tmp_path):
    path = tmp_path / "issuer.sqlite"
    ledger = Ledger.create(path)
    load_demo(ledger)
    ledger.close()
    _first_life(path)
    state = tmp_path / "flash"
    provision_test_terminal(state)
    # the board's record as it is after trace 999998, counter 11 next
    (state / "keys.bin").write_bytes(register_record(
        derive_initial_key(TEST_BDK, TEST_INITIAL_KEY_ID), TEST_INITIAL_KEY_ID, 11, 999998))
    issuer = Issuer.open(path)
    session = Session(issuer=issuer, state_dir=state, tap=True)
    session.thread.start()
    try:
        session.emulator.wait_for_screen("Insert card", timeout=15)
        for amount in ("1001", "1002"):
            assert purchase(session, LI_WEI, amount).lines[0] == "APPROVED"
            dismiss(session)
        # the second one's trace came back to where the first life began
        traces = [b[2] for b in sent(session, p.PURCHASE_REQUEST)]
        assert traces[0] == 999999 and 1 <= traces[1] <= 2
        # the third purchase's answer is lost on the way: the board reverses it
        session.tap.tamper = _drop(p.PURCHASE_RESPONSE)
        assert purchase(session, LI_WEI, "1003", result="No charge").lines[0] == \
            "NOT COMPLETED"
        dismiss(session, then="Sending reversal")
        done = session.emulator.wait_for_screen("Acknowledged", timeout=25)
        assert "Credited back" in done.text
    finally:
        session.close()
        issuer.close()
    issuer = Issuer.open(path)
    try:
        new_life = [r for r in issuer.ledger.journal() if r["id"] > 4]
        assert [(r["kind"], r["response_code"]) for r in new_life] == \
            [("purchase", "00")] * 3 + [("reversal", "00")]
        assert all(r["trace_number"] <= 4 for r in new_life[1:])   # past the wrap
        # the reversal credited the third purchase, not a first-life one of its trace
        assert new_life[3]["original_id"] == new_life[2]["id"]
        assert new_life[3]["posted"] == 1003 and new_life[2]["reversed_by"] == new_life[3]["id"]
        assert issuer.ledger.card_by_pan(LI_WEI).available == \
            LI_WEI_BALANCE - 4 * 100 - 1001 - 1002
    finally:
        issuer.close()
