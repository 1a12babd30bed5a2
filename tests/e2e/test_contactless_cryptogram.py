"""The card's cryptogram end to end over pseudo-terminals: the real firmware under
MicroPython (64 KiB heap) reads a virtual card through the virtual PN532 on its
`--nfc` stream, the bridge carries the request, and the issuer verifies the card's
ARQC with the issuer master keys the card was personalised from (docs/issuer.md, "Card
cryptograms"): the ARPC the card would check, the ATC kept, a counterfeit chip declined
82 with a security alert, and a reader or a card the board cannot use.
(test_contactless.py has the visits' screens, the CVM rule and the wire.)"""
import cbor2
from pyemv import ac as pyemv_ac
from pyemv import kd as pyemv_kd
from pyemv import tlv

from posbridge.board.emv_card import EmvCard
from posbridge.issuer.keystore import KeyStore
from posbridge.link import protocol as p

from .test_purchase import available, board_journal, dismiss, sent

LI_WEI = "4761730000000011"        # Visa CVN 18 chip, PSN 01, SMS alerts
ZHANG_MIN = "4761730000000029"     # Visa CVN 10 chip, not subscribed
SUN_LI = "6225880000000076"        # UnionPay chip (as CVN 10), purchase alerts only
LI_WEI_BALANCE = 1234567


def start_tap(bank, issuer, pan, choice, faults=()):
    """The card `pan` tapped at idle and `choice` ("1" balance, "2" purchase) keyed;
    the index of the visit's first screen."""
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    start = len(em.screens)
    em.tap(pan, faults)
    em.answer_prompts([("2 Purchase", choice)], after=start, timeout=15)
    return start


def tap_purchase(bank, issuer, pan, amount_keys, result="Card "):
    """A purchase at or below the CVM limit: no PIN."""
    start = start_tap(bank, issuer, pan, "2")
    em = bank.emulator
    em.answer_prompts([("Enter amount", amount_keys + "E")], after=start)
    return em.wait_for_screen(result, timeout=30, after=start), start


def requests(bank, mtype=p.PURCHASE_REQUEST):
    return sent(bank, mtype)


def responses(bank, mtype=p.PURCHASE_RESPONSE):
    return [cbor2.loads(b) for d, t, b in bank.messages if t == mtype]


def expected_arpc(issuer, pan, psn, icc, code):
    """The ARPC as the card checks it, from its own key (Visa CVN 18: method 2)."""
    values = tlv.decode(icc)
    key = issuer.ledger.keys.icc_master_keys(pan, psn)[0]
    session = pyemv_kd.derive_common_sk(key, values["9F36"] + bytes(6))
    csu = bytes.fromhex("00008000") if code == "00" else bytes(4)
    return pyemv_ac.generate_arpc_2(session, values["9F26"], csu)


def test_the_arqc_is_verified_and_the_arpc_is_the_cards(bank, issuer):
    screen, start = tap_purchase(bank, issuer, LI_WEI, "8800")
    assert screen.lines[0] == "APPROVED"
    assert "CNY 88.00" in screen.text and "SMS sent to" in screen.text
    assert not any("Enter PIN" in s.text for s in bank.emulator.screens[start:])
    [request] = requests(bank)
    assert 5 not in request                                  # no PIN block
    assert request[18] == 7 and 4 in request
    icc = request[19]
    values = tlv.decode(icc)
    assert values["9F02"] == bytes.fromhex("000000008800") and values["9C"] == b"\x00"
    assert values["84"] == bytes.fromhex("A0000000031010")
    assert "5A" not in values and "57" not in values           # no PAN, no track 2
    [response] = responses(bank)
    assert response[3] == "00" and response[18] == expected_arpc(issuer, LI_WEI, "01",
                                                                 icc, "00")
    [row] = issuer.ledger.journal()
    assert (row["kind"], row["response_code"], row["posted"]) == ("purchase", "00", -8800)
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 8800
    [alert] = issuer.ledger.outbox()
    assert (alert["kind"], alert["destination"]) == ("purchase", "138****5678")
    assert issuer.ledger.execute("SELECT last_atc FROM cards WHERE pan_last4 = '0011'"
                                 ).fetchone()[0] == int.from_bytes(values["9F36"], "big")
    dismiss(bank)
    assert board_journal(bank) == [] and sent(bank, p.REVERSAL_REQUEST) == []


def test_taps_one_after_another_move_the_atc_on(bank, issuer):
    for pan, amount in ((ZHANG_MIN, "1000"), (SUN_LI, "2000"), (ZHANG_MIN, "1500")):
        screen, _ = tap_purchase(bank, issuer, pan, amount)
        assert screen.lines[0] == "APPROVED", screen.text
        dismiss(bank)
    atcs = [tlv.decode(r[19])["9F36"] for r in requests(bank)]
    assert atcs[0] < atcs[2]
    assert [r["response_code"] for r in issuer.ledger.journal()] == ["00", "00", "00"]


def test_a_counterfeit_card_is_declined_82_with_a_security_alert(bank, issuer, tmp_path):
    # a chip with Li Wei's PAN personalised from keys that are not the issuer's
    forger = KeyStore.create(tmp_path / "forger.keys")
    forger.create_issuer_master_keys(LI_WEI[:6])
    bank.emulator.cards[LI_WEI] = EmvCard.personalise(forger, LI_WEI, expiry="3012",
                                                      profile="visa-18", psn="01")
    start = len(bank.emulator.screens)
    em = bank.emulator
    em.card_keys = issuer.ledger.keys
    em.reader.tap(em.cards[LI_WEI])
    em.answer_prompts([("2 Purchase", "2"), ("Enter amount", "8800E")], after=start,
                      timeout=15)
    screen = em.wait_for_screen("DECLINED", timeout=30, after=start)
    assert "82" in screen.text
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    [alert] = issuer.ledger.outbox()
    assert (alert["kind"], alert["destination"]) == ("cryptogram_failure", "138****5678")
    [response] = responses(bank)
    assert response[3] == "82" and 18 not in response and response[8][1] == 11


def test_a_reader_answering_noise(bank, issuer):
    em = bank.emulator
    start = len(em.screens)
    em.tap_garbage()
    em.wait_for_screen("Reader error", timeout=20, after=start)
    assert requests(bank) == []


def test_a_card_without_a_payment_application(bank, issuer):
    em = bank.emulator
    start = start_tap(bank, issuer, LI_WEI, "2", ("ppse_6a82",))
    em.answer_prompts([("Enter amount", "8800E")], after=start)
    em.wait_for_screen("Not supported", timeout=20, after=start)
    assert requests(bank) == []
