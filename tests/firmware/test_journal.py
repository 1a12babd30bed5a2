# The purchase journal on flash (journal.py): a purchase is in flight before it is sent,
# then approved, cleared, or turned into a reversal with an identity of its own; nothing
# of the card is ever in it.
import journal
from fake_terminal import FakeTerminal as Term, PAN

KSN = b"\x12\x34\x56\x78\x90\x12\x34\x56\x00\x00\x00\x05"


def in_flight(term, trace=5, amount=1250):
    # the reversal's counter and trace, reserved with the purchase's
    journal.begin(term, trace, KSN, amount, 156, (trace + 100, trace + 1))


def test_a_purchase_in_flight_holds_its_identity_and_amount_only():
    term = Term()
    try:
        in_flight(term)
        assert term.journal() == [[0, 5, "123456789012345600000005", 1250, 156, 0, 6, 105, 0]]
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


def test_a_purchase_without_answer_becomes_a_reversal_with_its_own_identity():
    term = Term()
    try:
        in_flight(term, trace=5)
        counters = term.store.load("counters")
        term.clock.advance(777)
        journal.reverse(term, 1, 5)
        [entry] = term.journal()
        assert entry[:6] == [1, 5, "123456789012345600000005", 1250, 156, 1]
        assert entry[6] == 6 and entry[7] == 105    # the trace and counter reserved
        assert term.store.load("counters") == counters   # nothing new taken for it
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
        journal.reverse(term, 3)
        entries = term.journal()
        assert [(e[0], e[1], e[5]) for e in entries] == [(2, 5, "000001"), (1, 7, 3), (1, 8, 3)]
        assert entries[1][6] != entries[2][6] and entries[1][7] != entries[2][7]
        assert term.reversals == 2
    finally:
        term.close()


def test_end_never_removes_a_reversal_and_renew_gives_a_new_identity():
    term = Term()
    try:
        in_flight(term, trace=5)
        journal.reverse(term, 2, 5)
        journal.end(term, 5)
        entries = term.journal()
        assert len(entries) == 1 and entries[0][0] == 1
        old = entries[0][6:8]
        term.store.save("counters", {"ksn_counter": 200, "trace": 20})
        journal.renew(term, entries[0])
        journal.save(term, entries)
        assert term.journal()[0][6:8] == [21, 201] and old == [6, 105]
        assert term.journal()[0][:6] == entries[0][:6]
        # taken on flash before use: a reset cannot hand them out again
        assert term.store.load("counters") == {"ksn_counter": 201, "trace": 21}
    finally:
        term.close()


def test_a_write_cut_short_leaves_the_journal_as_it_was():
    term = Term()
    try:
        in_flight(term, trace=5)
        with open(term.store.path("journal") + ".tmp", "w") as f:
            f.write('{"entries": [[1, 5, "12')     # the power went mid-write
        assert [e[:2] for e in term.journal()] == [[0, 5]]
        journal.reverse(term, 3)
        assert [e[:2] for e in term.journal()] == [[1, 5]]
    finally:
        term.close()
