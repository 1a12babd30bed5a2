"""Contactless balance inquiries and purchases end to end: the real firmware under
MicroPython (64 KiB heap) reading a virtual card through the virtual PN532 on its
reader's stream, the bridge, and the issuer verifying the card's ARQC. At or below the
terminal's contactless CVM limit (CNY 1,000.00 by default) no PIN is asked and none is
sent; above it, and for a balance inquiry, the online PIN as for a stripe."""
import cbor2
from pyemv import tlv

from posbridge.link import cbor_profile
from posbridge.link import protocol as p

from .test_purchase import LI_WEI, LI_WEI_BALANCE, available, board_journal, dismiss, sent
from .wiretap import BOARD_TO_BRIDGE


def decode_tlv(blob):
    return tlv.decode(bytes(blob), convert=lambda tag, value: bytes(value))


def tap_visit(bank, issuer, pan, steps, result="Card "):
    """The card tapped at idle, then (prompt, keys) answered in turn; the screen that
    answers."""
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    start = len(em.screens)
    em.tap(pan)
    em.answer_prompts(steps, after=start, timeout=15)
    return em.wait_for_screen(result, timeout=30, after=start), start


def test_purchase_below_the_cvm_limit_without_pin(bank, issuer):
    screen, start = tap_visit(bank, issuer, LI_WEI, [("CONTACTLESS", "2"),
                                                     ("Enter amount", "2500E")])
    assert screen.lines[0] == "APPROVED" and "CNY 25.00" in screen.text
    texts = [s.text for s in bank.emulator.screens[start:]]
    assert any("Reading card" in t for t in texts)
    assert not any("Enter PIN" in t for t in texts)
    [req] = sent(bank, p.PURCHASE_REQUEST)
    assert 5 not in req and req[18] == 7
    icc = decode_tlv(req[19])
    assert icc["9F02"] == bytes.fromhex("000000002500") and "57" not in icc
    [row] = issuer.ledger.journal()
    assert (row["response_code"], row["amount"]) == ("00", 2500)
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 2500
    # the request on the wire: its ICC data may take it to 255 bytes more than a
    # stripe purchase, past the old 256-byte bound of a frame payload
    [body] = [b for d, t, b in bank.messages if t == p.PURCHASE_REQUEST]
    assert len(body) + 4 <= 512 and len(req[19]) <= 255
    dismiss(bank)
    assert board_journal(bank) == []


def test_purchase_above_the_cvm_limit_asks_for_the_pin(bank, issuer):
    screen, start = tap_visit(bank, issuer, LI_WEI, [("CONTACTLESS", "2"),
                                                     ("Enter amount", "150000E"),
                                                     ("Enter PIN", "1234E")])
    assert screen.lines[0] == "APPROVED" and "CNY 1,500.00" in screen.text
    [req] = sent(bank, p.PURCHASE_REQUEST)
    assert len(req[5]) == 16 and req[18] == 7
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 150000


def test_balance_inquiry_reads_the_card_then_asks_for_the_pin(bank, issuer):
    screen, _ = tap_visit(bank, issuer, LI_WEI, [("CONTACTLESS", "1"),
                                                 ("Enter PIN", "1234E")], result="BALANCE")
    screen = bank.emulator.wait_for_screen("Available", timeout=30)
    assert "12,345.67" in screen.text
    [req] = sent(bank, p.BALANCE_REQUEST)
    assert req[18] == 7 and decode_tlv(req[19])["9C"] == b"\x31"


def test_a_tampered_icc_byte_on_the_wire_is_refused(bank, issuer):
    def tamper(direction, payload):
        if direction != BOARD_TO_BRIDGE or payload[1] != p.PURCHASE_REQUEST:
            return None
        fields = cbor2.loads(payload[4:])
        icc = bytearray(fields[19])
        icc[5] ^= 1                      # inside the ARQC (9F26 08 ...)
        fields[19] = bytes(icc)
        return bytes(payload[:4]) + cbor_profile.encode(fields)
    bank.tap.tamper = tamper
    screen, _ = tap_visit(bank, issuer, LI_WEI, [("CONTACTLESS", "2"),
                                                 ("Enter amount", "2500E")],
                          result="No charge")
    # the MAC no longer matches: the issuer refuses it, the board reverses in doubt
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE


def test_card_removed_mid_read_asks_for_it_again(bank, issuer):
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    start = len(em.screens)
    em.tap_remove_after(2)
    em.tap(LI_WEI)
    em.answer_prompts([("CONTACTLESS", "2"), ("Enter amount", "2500E")], after=start)
    removed = em.wait_for_screen("tap again", timeout=15, after=start)
    assert "Card removed," in removed.text
    again = em.screens.index(removed) + 1
    em.tap(LI_WEI)
    screen = em.wait_for_screen("APPROVED", timeout=30, after=again)
    assert "CNY 25.00" in screen.text


def test_a_reader_answering_noise_ends_on_reader_error(bank, issuer):
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    start = len(em.screens)
    em.tap(LI_WEI)
    em.answer_prompts([("CONTACTLESS", "2"), ("Enter amount", "2500E")], after=start)
    em.tap_garbage()
    screen = em.wait_for_screen("Reader error", timeout=20, after=start)
    assert screen.lines[0] == "CONTACTLESS"
    em.wait_for_screen("Insert card", timeout=20, after=em.screens.index(screen))
    assert sent(bank, p.PURCHASE_REQUEST) == [] and board_journal(bank) == []
    assert not any("Terminal error" in s.text for s in em.screens)


def test_a_card_without_a_ppse_is_not_supported(bank, issuer):
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    start = len(em.screens)
    em.tap(LI_WEI, faults=("ppse_6a82",))
    em.answer_prompts([("CONTACTLESS", "2"), ("Enter amount", "2500E")], after=start)
    screen = em.wait_for_screen("Not supported", timeout=20, after=start)
    assert "Insert card" in screen.text
    assert sent(bank, p.PURCHASE_REQUEST) == [] and issuer.ledger.journal() == []
