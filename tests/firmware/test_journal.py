# The purchase journal on flash (journal.py): a purchase is in flight before it is sent,
# then approved, cleared, or turned into a reversal; nothing of the card, and no built
# reversal or key, is ever in it. A reversal goes when due, backing off, and stays until
# acknowledged; the terminal's figures follow the journal.
import journal
from journal import RETRY_MS
from store import StoreError
from fake_terminal import FakeTerminal as Term, PAN

KSN = b"\x12\x34\x56\x78\x90\x12\x34\x56\x00\x00\x00\x05"


def in_flight(term, trace=5, amount=1250):
    journal.begin(term, trace, KSN, amount, 156)


def test_a_purchase_in_flight_holds_its_identity_and_amount_only():
    term = Term()
    try:
        in_flight(term)
        assert term.journal() == [[0, 5, "123456789012345600000005", 1250, 156, 0]]
        with open(term.store.path("journal")) as f:
            raw = f.read()
        assert PAN not in raw and PAN[-4:] not in raw
        assert term.reversals == 0
    finally:
        term.close()


def test_a_verified_decline_clears_it():
    term = Term()
    try:
        in_flight(term, trace=5)
        in_flight(term, trace=6)
        journal.end(term, 5)
        assert [e[1] for e in term.journal()] == [6]
    finally:
        term.close()


def test_an_approval_is_kept_until_seen_then_cleared():
    term = Term()
    try:
        in_flight(term)
        journal.approved(term, 5, "123456")
        [entry] = term.journal()
        assert entry[0] == 2 and entry[5] == "123456"
        journal.end(term, 5)
        assert term.journal() == []
    finally:
        term.close()


def test_a_purchase_without_answer_becomes_a_reversal_built_at_each_try():
    term = Term()
    try:
        in_flight(term, trace=5)
        identity = term.next_identity()
        term.clock.advance(777)
        journal.reverse(term, 1, 5)
        [entry] = term.journal()
        assert entry == [1, 5, "123456789012345600000005", 1250, 156, 1]
        assert term.next_identity() == identity   # each try takes its own when it goes
        assert term.reversals == 1 and term.reversal_due == term.clock()
    finally:
        term.close()


def test_at_boot_every_purchase_in_flight_is_reversed_for_the_power_cut():
    term = Term()
    try:
        in_flight(term, trace=5)
        journal.approved(term, 5, "000001")
        in_flight(term, trace=7)
        in_flight(term, trace=8)
        assert term.recover_reason == 3       # as the terminal boots
        # the approval leaves the journal to be shown again, never reversed
        assert journal.recover(term) == (5, 1250, 156, "000001")
        entries = term.journal()
        assert [(e[0], e[1], e[5]) for e in entries] == [(1, 7, 3), (1, 8, 3)]
        assert term.reversals == 2 and term.recover_reason == 0
        assert term.reversal_due == term.clock() and term.reversal_tries == 0
    finally:
        term.close()


def test_end_never_removes_a_reversal():
    term = booted(Term())
    try:
        in_flight(term, trace=5)
        journal.reverse(term, 2, 5)
        journal.end(term, 5)
        entries = term.journal()
        assert len(entries) == 1 and entries[0][0] == 1
    finally:
        term.close()


def test_a_journal_of_earlier_firmware_loads_and_its_reversal_key_leaves_the_flash():
    # earlier firmware kept a built reversal and its MAC key in two more slots
    term = Term()
    try:
        key = b"\x5a" * 16
        term.store.save("journal", {"entries": [
            [1, 5, "123456789012345600000005", 1250, 156, 2, "a10207", "5a" * 16],
            [0, 7, "123456789012345600000007", 300, 156, 0, "", ""]]})
        assert term.holds(key)
        assert journal.recover(term) is None     # as the terminal boots
        assert term.journal() == [[1, 5, "123456789012345600000005", 1250, 156, 2],
                                  [1, 7, "123456789012345600000007", 300, 156, 3]]
        assert not term.holds(key) and term.reversals == 2
        assert journal.next_reversal(term, term.clock()) == (5, 1250, 156, KSN, 2)
        # nothing else to do at boot: written again all the same, without the key
        term.store.save("journal", {"entries": [
            [1, 5, "123456789012345600000005", 1250, 156, 2, "a10207", "5a" * 16]]})
        term.recover_reason = 3
        assert journal.recover(term) is None
        assert term.journal() == [[1, 5, "123456789012345600000005", 1250, 156, 2]]
        assert not term.holds(key)
    finally:
        term.close()


def test_a_write_cut_short_leaves_the_journal_as_it_was():
    term = Term()
    try:
        in_flight(term, trace=5)
        with open(term.store.path("journal") + ".tmp", "w") as f:
            f.write('{"entries": [[1, 5, "12')     # the power went mid-write
        assert [e[:2] for e in term.journal()] == [[0, 5]]
        journal.recover(term)
        assert [e[:2] for e in term.journal()] == [[1, 5]]
    finally:
        term.close()


def booted(term):
    """The terminal as it is once its first idle screen has looked at the journal."""
    assert journal.recover(term) is None
    return term


def test_boot_leaves_the_journal_to_be_looked_at_by_the_first_idle_screen():
    term = Term()
    try:
        assert (term.reversals, term.reversal_tries, term.recover_reason) == (0, 0, 3)
        booted(term)
        assert term.recover_reason == 0 and term.journal() == []

        class NoFlash:
            store = None
        bare = NoFlash()
        journal.boot(bare)        # a terminal without flash has no journal to look at
        assert bare.recover_reason == 0 and bare.reversals == 0
    finally:
        term.close()


def test_a_purchase_left_unsettled_makes_the_terminal_recover_the_journal():
    term = booted(Term())
    try:
        in_flight(term, trace=5)
        assert term.recover_reason == 1       # a fault now: reversed as unanswered
        journal.approved(term, 5, "000001")
        assert term.recover_reason == 1       # a fault now: the approval shown again
        journal.end(term, 5)
        assert term.recover_reason == 0
        in_flight(term, trace=7)
        journal.reverse(term, 1, 7)
        assert term.recover_reason == 0 and term.reversals == 1
    finally:
        term.close()


def test_after_a_fault_a_purchase_in_flight_is_reversed_as_unanswered():
    term = booted(Term())
    try:
        in_flight(term, trace=5)
        assert journal.recover(term) is None
        assert [(e[0], e[5]) for e in term.journal()] == [(1, 1)]
        assert term.reversals == 1 and term.recover_reason == 0
    finally:
        term.close()


def test_each_approval_left_unseen_is_shown_again_one_at_a_time():
    term = booted(Term())
    try:
        in_flight(term, trace=5)
        journal.approved(term, 5, "000001")
        in_flight(term, trace=7)
        journal.approved(term, 7, "000002")
        assert journal.recover(term) == (5, 1250, 156, "000001")
        assert term.recover_reason == 1       # one more to show
        assert journal.recover(term) == (7, 1250, 156, "000002")
        assert term.recover_reason == 0 and term.journal() == []
    finally:
        term.close()


def test_a_journal_that_cannot_be_read_is_not_recovered_again_and_again():
    term = Term()
    try:
        with open(term.store.path("journal"), "w") as f:
            f.write('{"entries": [[0, 5')
        try:
            journal.recover(term)
            raise AssertionError("a damaged journal was read")
        except StoreError:
            pass
        assert term.recover_reason == 0
    finally:
        term.close()


def test_the_oldest_reversal_goes_when_due_and_the_next_try_backs_off():
    term = booted(Term())
    try:
        assert journal.next_reversal(term, term.clock()) is None     # none to send
        in_flight(term, trace=5, amount=1250)
        in_flight(term, trace=7, amount=300)
        term.clock.advance(10)
        journal.reverse(term, 2, 5)
        journal.reverse(term, 1, 7)
        now = term.clock()
        assert journal.next_reversal(term, now) == (5, 1250, 156, KSN, 2)
        assert term.reversal_due == now + RETRY_MS[0] and term.reversal_tries == 1
        assert journal.next_reversal(term, now + RETRY_MS[0] - 1) is None   # not yet
        gaps = []
        for _ in range(len(RETRY_MS) + 1):
            now = term.reversal_due
            assert journal.next_reversal(term, now)[0] == 5
            gaps.append(term.reversal_due - now)
        assert gaps == list(RETRY_MS[1:]) + [RETRY_MS[-1]] * 2
        assert len(term.journal()) == 2       # tries never remove one
    finally:
        term.close()


def test_an_acknowledged_reversal_leaves_and_the_next_goes_at_once():
    term = booted(Term())
    try:
        in_flight(term, trace=5)
        in_flight(term, trace=7)
        journal.reverse(term, 1, 5)
        journal.reverse(term, 1, 7)
        journal.next_reversal(term, term.clock())
        term.clock.advance(50)
        journal.acknowledged(term, 5)
        assert [e[1] for e in term.journal()] == [7] and term.reversals == 1
        assert term.reversal_tries == 0 and term.reversal_due == term.clock()
        assert journal.next_reversal(term, term.clock())[0] == 7
        journal.acknowledged(term, 7)
        assert term.journal() == [] and term.reversals == 0
        assert journal.next_reversal(term, term.clock()) is None
    finally:
        term.close()


def test_acknowledged_removes_a_reversal_only():
    term = booted(Term())
    try:
        in_flight(term, trace=5)
        journal.acknowledged(term, 5)         # a purchase in flight is no reversal
        assert [e[:2] for e in term.journal()] == [[0, 5]]
    finally:
        term.close()
