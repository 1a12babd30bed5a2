# The reversal sender (reversal.py): the oldest reversal on flash goes until the issuer
# acknowledges it (00 with a verified MAC), built afresh at every try under the next
# identity (taken on flash before it is sent); nothing of it, least of all its MAC key,
# is saved; tries back off; purchases left in flight at boot are reversed, approvals
# shown again.
import cbor
import journal
import messages as m
from journal import RETRY_MS
from reversal import Sender
from fake_terminal import FakeTerminal as Term, answer_for, request_mac_ok

KSN = b"\x12\x34\x56\x78\x90\x12\x34\x56\x00\x00\x00\x05"


def with_reversal(reason=1, trace=5):
    term = Term()
    term.provision(6, 5)        # counters 1 to 5 and traces to 5 used
    journal.begin(term, trace, KSN, 1250, 156)
    journal.reverse(term, reason, trace)
    return term


def send(term):
    """A sender started as the terminal starts it, and the body it sent."""
    before = len(term.link.sent)
    sender = Sender(term)
    assert len(term.link.sent) == before + 1
    mtype, body = term.link.sent[-1]
    assert mtype == m.REVERSAL_REQUEST
    return sender, body


def until_done(term, sender):
    for _ in range(1000):
        term.clock.advance(100)
        if not sender.step(term.clock()):
            return
    raise AssertionError("the sender never finished")


def test_the_reversal_request_names_the_purchase_under_its_own_identity():
    term = with_reversal()
    try:
        sender, body = send(term)
        req = cbor.decode(body)
        assert sorted(req) == [1, 2, 3, 6, 7, 8, 9, 12, 13, 14]    # no card, no PIN block
        assert (req[1], req[8], req[9], req[12], req[13], req[14]) == (
            "T0000001", 1250, 156, 5, KSN, 1)
        assert req[2] == 6 and req[6][-4:] == b"\x00\x00\x00\x06"   # its own trace, KSN
        assert request_mac_ok(body)
        # taken before it was sent; neither its bytes nor its key on flash
        assert term.next_identity() == (7, 6)
        [entry] = term.link.journal_at_send[-1]
        assert len(entry) == 6 and not term.holds(body)
        assert sender.mac_key is not None and not term.holds(bytes(sender.mac_key))
        assert "Sending reversal" in term.display.text() and "CNY 12.50" in term.display.text()
    finally:
        term.close()


def test_acknowledged_reversal_leaves_the_journal():
    term = with_reversal()
    try:
        sender, body = send(term)
        assert sender.on_message(m.REVERSAL_RESPONSE,
                                 answer_for(body, {3: "00", 12: 5, 16: 1}))
        assert term.journal() == [] and term.reversals == 0
        assert term.reversal_tries == 0 and term.reversal_due == term.clock()
        assert "Acknowledged" in term.display.text() and "Credited back" in term.display.text()
        until_done(term, sender)
    finally:
        term.close()


def test_acknowledged_reversal_shows_the_alert_of_the_credit():
    term = with_reversal()
    try:
        sender, body = send(term)
        assert sender.on_message(m.REVERSAL_RESPONSE, answer_for(
            body, {3: "00", 8: {1: 2, 2: "sms", 3: "138****5678"}, 12: 5, 16: 1}))
        text = term.display.text()
        assert "Credited back" in text and "SMS sent to" in text and "138****5678" in text
        until_done(term, sender)
    finally:
        term.close()
    term = with_reversal()
    try:
        sender, body = send(term)
        assert sender.on_message(m.REVERSAL_RESPONSE,
                                 answer_for(body, {3: "00", 8: {1: 10}, 12: 5, 16: 3}))
        assert "Reversed before" in term.display.text()
        assert "No alert" in term.display.text()
        assert term.journal() == []
    finally:
        term.close()


def fresh(first, again, trace):
    """`again` is the reversal `first` built anew under trace number and counter
    `trace`."""
    old, new = cbor.decode(first), cbor.decode(again)
    assert (new[2], new[6][-4:]) == (trace, trace.to_bytes(4, "big"))
    assert [new[k] for k in (8, 9, 12, 13, 14)] == [old[k] for k in (8, 9, 12, 13, 14)]
    assert request_mac_ok(again)


def test_no_answer_then_built_afresh_after_a_pause():
    term = with_reversal()
    try:
        sender, first = send(term)
        key = sender.mac_key
        started = term.clock()
        until_done(term, sender)
        assert "Not acknowledged" in term.display.all_text()
        assert sender.mac_key is None and key == bytearray(len(key))   # wiped
        assert len(term.journal()) == 1 and term.reversals == 1
        assert term.reversal_due - started == RETRY_MS[0]
        sender, again = send(term)
        fresh(first, again, 7)
        assert term.next_identity() == (8, 7)      # each try takes its own
    finally:
        term.close()


def test_answers_that_are_not_an_acknowledgement_keep_the_reversal():
    # 96; an acknowledgement naming another purchase; one answering other bytes (an
    # altered copy of the reversal); and one whose MAC fails
    for answer in ({3: "96", 12: 5}, {3: "00", 12: 4, 16: 1},
                   {3: "00", 12: 5, 16: 1, 17: bytes(32)}, None):
        term = with_reversal()
        try:
            sender, body = send(term)
            if answer is None:      # an acknowledgement whose MAC fails
                rsp = answer_for(body, {3: "00", 12: 5, 16: 1}, mac_ok=False)
            else:
                rsp = answer_for(body, answer)
            assert sender.on_message(m.REVERSAL_RESPONSE, rsp)
            assert len(term.journal()) == 1 and term.reversals == 1
            assert "Not acknowledged" in term.display.text()
            assert sender.mac_key is None
            _, again = send_after_pause(term, sender)
            fresh(body, again, 7)
        finally:
            term.close()


def send_after_pause(term, sender):
    until_done(term, sender)
    term.clock.now = term.reversal_due
    return send(term)


def test_94_sends_it_again_under_a_new_trace_and_ksn():
    term = with_reversal()
    try:
        sender, body = send(term)
        sender.on_message(m.REVERSAL_RESPONSE, answer_for(body, {3: "94", 12: 5}))
        assert len(term.journal()) == 1
        sender, again = send_after_pause(term, sender)
        fresh(body, again, 7)
        sender.on_message(m.REVERSAL_RESPONSE, answer_for(again, {3: "00", 12: 5, 16: 1}))
        assert term.journal() == []
    finally:
        term.close()


def test_errors_and_a_failed_link_keep_it_and_the_pauses_grow():
    term = with_reversal()
    try:
        sender, body = send(term)
        # about an earlier sending (another trace, or none named): not this one
        assert not sender.on_error({1: 5, 2: "", 3: m.REVERSAL_REQUEST})
        assert not sender.on_error({1: 5, 2: "", 3: m.REVERSAL_REQUEST,
                                    4: sender.trace % 999999 + 1})
        assert sender.on_error({1: 5, 2: "issuer unavailable", 3: m.REVERSAL_REQUEST,
                                4: sender.trace})
        assert len(term.journal()) == 1
        gaps = [term.reversal_due - term.clock()]
        sender, _ = send_after_pause(term, sender)
        sender.on_link_failed(m.REVERSAL_REQUEST)
        gaps.append(term.reversal_due - term.clock())
        assert gaps == [RETRY_MS[0], RETRY_MS[1]]
        assert "Host offline" in term.display.text()
        assert not sender.on_error({1: 5, 2: "", 3: m.PURCHASE_REQUEST,
                                    4: sender.trace})   # not about it: another type
    finally:
        term.close()


def test_nothing_goes_while_the_host_is_away():
    term = with_reversal()
    try:
        term.host_online = False
        sender = Sender(term)
        assert term.link.sent == [] and not sender.step(term.clock())
        assert term.reversals == 1
    finally:
        term.close()


def test_at_boot_a_purchase_in_flight_is_reversed_for_the_power_cut():
    term = Term()
    try:
        journal.begin(term, 5, KSN, 1250, 156)   # the terminal has just booted
        sender, body = send(term)
        assert cbor.decode(body)[14] == 3 and term.recover_reason == 0
        assert term.journal()[0][0] == 1
    finally:
        term.close()


def test_a_purchase_a_fault_left_in_flight_is_reversed_as_unanswered():
    term = Term()
    try:
        assert Sender(term) and term.recover_reason == 0     # the boot's look: empty
        journal.begin(term, 5, KSN, 1250, 156)
        # the visit ends by a fault here: nothing will take its answer
        assert term.recover_reason == 1
        sender, body = send(term)
        assert cbor.decode(body)[14] == 1 and term.recover_reason == 0
        assert request_mac_ok(body)
    finally:
        term.close()


def test_at_boot_an_approval_the_power_took_off_the_screen_is_shown_again():
    term = Term()
    try:
        journal.begin(term, 5, KSN, 1250, 156)
        journal.approved(term, 5, "654321")              # the terminal has just booted
        sender = Sender(term)
        assert term.link.sent == []                     # charged: nothing to reverse
        text = term.display.text()
        assert "LAST PURCHASE" in text and "APPROVED" in text and "Approval 654321" in text
        assert "CNY 12.50" in text
        assert term.journal() == []
        until_done(term, sender)
    finally:
        term.close()


def test_after_a_reset_the_reversal_goes_again_built_afresh_and_its_answer_is_checked():
    term = with_reversal()
    try:
        sender, body = send(term)
        again = Term(term.directory)          # the power went: a new terminal, same flash
        again.clock.now = term.clock()
        journal.recover(again)
        sender, resent = send(again)
        fresh(body, resent, 7)
        assert again.next_identity() == (8, 7)
        # the answer to the try the power cut is not this try's; a bad MAC is none
        assert sender.on_message(m.REVERSAL_RESPONSE,
                                 answer_for(body, {3: "00", 12: 5, 16: 1}))
        assert len(again.journal()) == 1
        sender, third = send_after_pause(again, sender)
        sender.on_message(m.REVERSAL_RESPONSE,
                          answer_for(third, {3: "00", 12: 5, 16: 3}, mac_ok=False))
        assert len(again.journal()) == 1
        sender, fourth = send_after_pause(again, sender)
        # the issuer matched it to the first: already reversed, acknowledged
        assert sender.on_message(m.REVERSAL_RESPONSE,
                                 answer_for(fourth, {3: "00", 12: 5, 16: 3}))
        assert again.journal() == [] and "Reversed before" in again.display.text()
    finally:
        term.close()


def test_a_terminal_out_of_keys_keeps_the_reversal():
    term = with_reversal()
    try:
        term.provision(0, 5)       # exhausted
        sender = Sender(term)
        assert term.link.sent == [] and "No terminal key" in term.display.text()
        assert len(term.journal()) == 1
    finally:
        term.close()
