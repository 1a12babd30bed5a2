# A contactless visit (transaction.py with a card tapped at idle): the card read once the
# amount is known, the CVM rule, the request's ICC data and entry mode, and each way the
# read can fail ending on a clear screen.
import cbor
import messages as m
from fake_terminal import FakeTerminal, answer_for, request_mac_ok
from fwtest import FakeClock

# nfc_fakes, tlv and transaction are imported once the terminal is provisioned: the
# provisioning's key walk and the visit need the 64 KiB heap one after the other
PAN = "4761730000000011"

NOTE_SMS = {1: 2, 2: "sms", 3: "138****5678"}


class TickingClock(FakeClock):
    """Moves a millisecond each time it is read: the reader's waits end as on the board
    (its driver sleeps a real millisecond between reads)."""

    def __call__(self):
        self.now += 1
        return self.now


def Term():
    term = FakeTerminal()
    term.clock = TickingClock(1000)
    return term


def keyed(term, txn, keys=b""):
    if keys:
        term.press(keys)
    term.clock.advance(300)
    return txn.step(term.clock())


def tapped(term, chip=None):
    """A visit for a card tapped at idle (target 1), with the chip in the reader (a
    chip with the default card when None)."""
    from nfc_fakes import FakeCard, FakeChip
    from transaction import Transaction
    term.nfc_stream = chip or FakeChip(FakeCard())
    return Transaction(term, None, 1)


def chip_with(answers=None, card=True):
    from nfc_fakes import FakeCard, FakeChip
    return FakeChip(FakeCard(answers) if card else None)


def purchase(term, txn, amount):
    keyed(term, txn, b"2")
    keyed(term, txn, amount + b"E")
    assert "Reading card" in term.display.text()
    keyed(term, txn)


def test_purchase_at_or_below_the_cvm_limit_sends_no_pin_block():
    term = Term()
    try:
        txn = tapped(term)
        assert "CONTACTLESS" in term.display.text()
        purchase(term, txn, b"100000")        # CNY 1,000.00: the limit itself
        [(mtype, body)] = term.link.sent
        req = cbor.decode(body)
        assert mtype == m.PURCHASE_REQUEST and request_mac_ok(body)
        assert 5 not in req                   # no PIN block
        assert req[m.K_ENTRY_MODE] == 7 and req[8] == 100000
        assert req[4] == {1: PAN, 2: "2812", 3: "201"}
        icc = req[m.K_ICC]
        from tlv import collect
        f = collect(icc, 0, len(icc), {0x9F02: None, 0x9F26: None, 0x57: None})
        assert f[0x9F02] == bytes.fromhex("000000100000") and f[0x57] is None
        # a purchase, journaled before it left, as a stripe one
        assert len(term.link.journal_at_send[0]) == 1
        txn.on_message(m.PURCHASE_RESPONSE, answer_for(body, {3: "00", 4: "123456",
                                                              8: NOTE_SMS}))
        assert "APPROVED" in term.display.all_text()
        assert PAN not in term.display.all_text()
    finally:
        term.close()


def test_purchase_above_the_cvm_limit_asks_for_the_pin():
    term = Term()
    try:
        chip = chip_with()
        txn = tapped(term, chip=chip)
        purchase(term, txn, b"100001")
        assert "Enter PIN" in term.display.text()
        gpo = [d for c, d in chip.commands if c == 0x40 and d[1:3] == b"\x80\xa8"][0]
        assert gpo[9] == 0xC0          # TTQ byte 2: online cryptogram and CVM required
        keyed(term, txn, b"1234E")
        [(mtype, body)] = term.link.sent
        req = cbor.decode(body)
        assert len(req[5]) == 16 and req[m.K_ENTRY_MODE] == 7
    finally:
        term.close()


def test_balance_inquiry_reads_then_asks_for_the_pin():
    term = Term()
    try:
        txn = tapped(term)
        keyed(term, txn, b"1")
        keyed(term, txn)
        assert "Enter PIN" in term.display.text()
        keyed(term, txn, b"1234E")
        [(mtype, body)] = term.link.sent
        req = cbor.decode(body)
        assert mtype == m.BALANCE_REQUEST and len(req[5]) == 16 and m.K_ICC in req
        assert term.journal() == []
    finally:
        term.close()


def test_card_removed_mid_read_is_asked_again_then_read():
    term = Term()
    try:
        chip = chip_with()
        chip.gone_after = 2
        txn = tapped(term, chip=chip)
        purchase(term, txn, b"1250")
        assert "Card removed," in term.display.text() and "tap again" in term.display.text()
        assert term.link.sent == []
        chip.card = None                     # gone: the visit keeps looking
        keyed(term, txn)
        assert "tap again" in term.display.text()
        from nfc_fakes import FakeCard
        chip.card = FakeCard()               # tapped again
        chip.gone_after = None
        keyed(term, txn)
        [(mtype, body)] = term.link.sent
        assert cbor.decode(body)[m.K_ENTRY_MODE] == 7
    finally:
        term.close()


def test_reader_error_card_errors_and_cancel_end_on_a_clear_screen():
    cases = [
        (None, "silent", "Reader error"),
        (None, "garbage", "Reader error"),
        ({"00a404000e": bytes.fromhex("6A82")}, None, "Not supported"),
        ({"00a404000e": "unknown"}, None, "Not supported"),
        ({"00b2010c": bytes.fromhex("7005570347619000")}, None, "Card read error"),
    ]
    for answers, fault, shown in cases:
        term = Term()
        try:
            if answers and answers.get("00a404000e") == "unknown":
                from nfc_fakes import ppse_answer
                answers = {"00a404000e": ppse_answer((bytes.fromhex("A0000009999999"), 1))}
            chip = chip_with(answers)
            if fault:
                setattr(chip, fault, True)
            txn = tapped(term, chip=chip)
            purchase(term, txn, b"1250")
            assert shown in term.display.text(), (shown, term.display.text())
            assert term.link.sent == [] and term.journal() == []
            term.clock.advance(20000)
            assert not keyed(term, txn)      # the visit ends
        finally:
            term.close()
    term = Term()
    try:
        chip = chip_with(card=False)         # no card in the field any more
        txn = tapped(term, chip=chip)
        txn.tg = 0
        purchase(term, txn, b"1250")
        keyed(term, txn, b"X")
        assert "Cancelled" in term.display.text() and term.link.sent == []
    finally:
        term.close()
