"""Power cuts during a purchase: the board's MicroPython process is killed at a point of
the purchase and started again on the same flash (its state directory). Whatever the
point, the issuer's ledger and the board's journal end in agreement: the purchase was
charged once and shown approved (before the cut, or again after it), or it was not
charged at all."""
import json
import random
import time

import pytest

from posbridge.link import protocol as p

from .conftest import Session
from .test_purchase import LI_WEI, LI_WEI_BALANCE, available, key_purchase, purchase
from .wiretap import BOARD_TO_BRIDGE, BRIDGE_TO_BOARD, DROP


class Board:
    """Sessions on one flash, one after another, as a board that loses its power."""

    def __init__(self, issuer, state_dir):
        self.issuer = issuer
        self.state_dir = state_dir
        self.session = None
        self.runs = []            # every session's screens, oldest first

    def start(self):
        self.session = Session(issuer=self.issuer, tap=True, state_dir=self.state_dir)
        self.session.thread.start()
        self.session.emulator.wait_for_screen("Insert card", timeout=15)
        self.runs.append(self.session.emulator.screens)
        return self.session

    def cut_power(self):
        self.session.emulator.proc.kill()      # SIGKILL: no chance to tidy up
        self.session.emulator.proc.wait()
        self.session.close()
        self.session = None

    def journal(self):
        path = self.state_dir / "journal.json"
        return json.loads(path.read_text())["entries"] if path.exists() else []

    def settle(self, timeout=30):
        """Wait until the board is idle with an empty journal: reversals acknowledged,
        an approval shown again at boot dismissed (with E, as a person would). The
        boot's first idle screen comes before the journal is looked at; the one after
        it comes once the boot's recovery is done."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screens = list(self.session.emulator.screens)
            last = screens[-1].text if screens else ""
            idle = sum("Insert card" in s.text for s in screens)
            if "LAST PURCHASE" in last:
                self.session.emulator.pin_pad_sends(b"E")
            elif idle >= 2 and "Insert card" in last and not self.journal():
                return
            time.sleep(0.2)
        raise AssertionError(f"not settled: journal {self.journal()}")

    def shown(self, text):
        return any(text in s.text for run in self.runs for s in run)

    def close(self):
        if self.session:
            self.session.close()


@pytest.fixture
def board(issuer, tmp_path):
    b = Board(issuer, tmp_path / "flash")
    b.start()
    yield b
    b.close()


def start_purchase(session, amount_keys="1250", pin="1234"):
    """Swipe, 2, the amount and the PIN, without waiting for the answer."""
    key_purchase(session, LI_WEI, amount_keys, pin)


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def charged(issuer):
    """What the demo card's account has lost, net, in minor units."""
    return LI_WEI_BALANCE - available(issuer, LI_WEI)


def frames_of(tap, direction, mtype):
    return [t for t in tap.tampered if t[0] == direction and t[1][1] == mtype]


def test_cut_before_the_request_reached_the_bridge(board, issuer):
    s = board.session
    # the request never gets past the wire: as if the power went while sending it
    s.tap.tamper = lambda d, payload: DROP if (
        d == BOARD_TO_BRIDGE and payload[1] == p.PURCHASE_REQUEST) else None
    start_purchase(s)
    wait_for(lambda: frames_of(s.tap, BOARD_TO_BRIDGE, p.PURCHASE_REQUEST))
    [entry] = board.journal()
    assert entry[0] == 0                                 # on flash before it was sent
    board.cut_power()
    board.start()
    board.settle()
    assert charged(issuer) == 0 and board.journal() == []
    [reversal] = issuer.ledger.journal()                 # the purchase never arrived
    assert (reversal["kind"], reversal["reversal_reason"], reversal["reversal_outcome"],
            reversal["original_trace"]) == ("reversal", 3, 2, entry[1])
    assert not board.shown("APPROVED")


def test_cut_after_the_issuer_charged_before_the_answer_arrived(board, issuer):
    s = board.session
    s.tap.tamper = lambda d, payload: DROP if (
        d == BRIDGE_TO_BOARD and payload[1] == p.PURCHASE_RESPONSE) else None
    start_purchase(s)
    wait_for(lambda: frames_of(s.tap, BRIDGE_TO_BOARD, p.PURCHASE_RESPONSE))
    assert charged(issuer) == 1250
    board.cut_power()
    board.start()
    board.settle()
    assert charged(issuer) == 0 and board.journal() == []
    purchase_row, reversal_row = issuer.ledger.journal()
    assert (reversal_row["reversal_reason"], reversal_row["reversal_outcome"]) == (3, 1)
    assert purchase_row["reversed_by"] == reversal_row["id"]
    assert not board.shown("APPROVED")


def test_cut_while_the_approval_is_on_the_screen(board, issuer):
    screen = purchase(board.session, LI_WEI, "1250", result="APPROVED")
    [row] = issuer.ledger.journal()
    assert "Approval " + row["approval_code"] in screen.text
    board.cut_power()
    after = board.start()
    # charged, and shown again: the cardholder may not have seen it
    again = after.emulator.wait_for_screen("LAST PURCHASE", timeout=15)
    assert "APPROVED" in again.text and "Approval " + row["approval_code"] in again.text
    assert "CNY 12.50" in again.text
    board.settle()
    assert charged(issuer) == 1250 and board.journal() == []
    assert [r["kind"] for r in issuer.ledger.journal()] == ["purchase"]


def test_cut_after_the_approval_was_seen(board, issuer):
    purchase(board.session, LI_WEI, "1250", result="APPROVED")
    start = len(board.session.emulator.screens)
    board.session.emulator.pin_pad_sends(b"E")
    board.session.emulator.wait_for_screen("Insert card", after=start)
    assert board.journal() == []
    board.cut_power()
    after = board.start()
    board.settle()
    assert all("LAST PURCHASE" not in s.text for s in after.emulator.screens)
    assert charged(issuer) == 1250
    assert [r["kind"] for r in issuer.ledger.journal()] == ["purchase"]


@pytest.mark.parametrize("left_behind", ["garbage", "the approval"])
def test_cut_in_the_middle_of_a_journal_write(board, issuer, left_behind):
    """The cut comes while the journal is rewritten: the temporary file is half written,
    or whole (its rename had not happened). Either way the board goes by the journal
    as it was: the purchase in flight, reversed."""
    s = board.session
    s.tap.tamper = lambda d, payload: DROP if (
        d == BRIDGE_TO_BOARD and payload[1] == p.PURCHASE_RESPONSE) else None
    start_purchase(s)
    wait_for(lambda: frames_of(s.tap, BRIDGE_TO_BOARD, p.PURCHASE_RESPONSE))
    board.cut_power()
    [entry] = board.journal()
    if left_behind == "garbage":
        text = '{"entries": [[2, %d, "' % entry[1]
    else:   # the approval about to replace it: written, never renamed into place
        text = json.dumps({"entries": [[2] + entry[1:5] + ["123456"] + entry[6:]]})
    (board.state_dir / "journal.json.tmp").write_text(text)
    board.start()
    board.settle()
    assert charged(issuer) == 0 and board.journal() == []
    assert not board.shown("APPROVED")


def test_cuts_at_random_moments_never_charge_without_an_approval(board, issuer):
    # where each cut lands depends on the machine's speed; what is checked holds for
    # every landing point
    rng = random.Random(4)
    for i in range(4):
        amount = 100 + i                 # one amount per purchase, to tell them apart
        before = charged(issuer)
        seen = sum(len(run) for run in board.runs)
        start_purchase(board.session, str(amount))
        time.sleep(rng.uniform(0.0, 0.8))
        board.cut_power()
        board.start()
        board.settle()
        new_screens = [s for run in board.runs for s in run][seen:]
        approved = any("APPROVED" in s.text and f"CNY {amount / 100:.2f}" in s.text
                       for s in new_screens)
        assert charged(issuer) - before == (amount if approved else 0), (i, approved)
        assert board.journal() == []
