"""Contactless requests at the issuer (docs/protocol.md "Contactless", service.py): the
ARQC of a virtual card personalised from the issuer's key store verified for each
cryptogram version, the ARPC in the answer, a tampered or replayed cryptogram declined
82 with a security alert, the CVM rule, and ICC data of every malformed kind refused
with a clear 30, never a crash, never logged."""
import logging

import pytest
from pyemv import ac as pyemv_ac
from pyemv import kd as pyemv_kd
from pyemv import tlv

from posbridge.board.emv_card import EmvCard
from posbridge.issuer import cards, codes
from posbridge.issuer.cryptogram import IccData, IccDataError
from posbridge.issuer.service import CONTACTLESS_CVM_LIMIT
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST

from ..emv_kernel import BALANCE_INQUIRY, read_card
from .test_balance_inquiry import LI_WEI, ZHANG_MIN
from .test_purchase import available, cddl_check

SUN_LI = "6225880000000076"        # UnionPay, purchase alerts only, 999.00
MASTERCARD = "5413330000000019"    # issued in the tests below, CVN 16 and 17
CONTACTLESS = 7


def card_of(issuer, pan, profile, psn="00"):
    return EmvCard.personalise(issuer.ledger.keys, pan, expiry="3012", profile=profile,
                               psn=psn)


def tap(issuer, terminal, card, amount, *, pin=None, icc=None, kind="purchase",
        entry_mode=CONTACTLESS, unpredictable=b"\x12\x34\x56\x78"):
    """The board's view of the answer to a tapped card's request, and what it read."""
    read = read_card(card, amount or 0,
                     kind=BALANCE_INQUIRY if kind == "balance" else 0x00,
                     unpredictable=unpredictable)
    body, pending = terminal.purchase(
        read["pan"], amount if kind == "purchase" else None, pin=pin,
        expiry=read["expiry"], service_code=read["service_code"], entry_mode=entry_mode,
        icc=read["icc"] if icc is None else icc)
    rule = "purchase" if kind == "purchase" else "balance"
    cddl_check(f"{rule}-request", body)
    response = issuer.handle(PURCHASE_REQUEST if kind == "purchase" else BALANCE_REQUEST,
                             body)
    cddl_check(f"{rule}-response", response)
    return terminal.check(response, pending), read


def expected_arpc(card, read, code):
    """The ARPC as the card checks it, from its own ICC master key."""
    arqc, atc = read["values"]["9F26"], read["values"]["9F36"]
    if card.profile == "visa-18":
        key = pyemv_kd.derive_common_sk(card.icc_mk_ac, atc + bytes(6))
        csu = bytes.fromhex("00008000") if code == "00" else bytes(4)
        return pyemv_ac.generate_arpc_2(key, arqc, csu)
    return pyemv_ac.generate_arpc_1(card.icc_mk_ac, arqc, code.encode())


@pytest.fixture
def mastercard(issuer):
    issuer.ledger.keys.create_issuer_master_keys(MASTERCARD[:6])
    cards.add(issuer.ledger, pan=MASTERCARD, pin="1234", expiry="3012", available=50000,
              currency=156, name="Ma Ke", phone="13311112222", subscribed=True)
    return MASTERCARD


@pytest.mark.parametrize("pan, profile, psn", [
    (LI_WEI, "visa-18", "01"), (ZHANG_MIN, "visa-10", "00"), (SUN_LI, "unionpay-10", "00"),
    (MASTERCARD, "mastercard-16", "00"), (MASTERCARD, "mastercard-17", "00")])
def test_a_good_arqc_is_approved_with_an_arpc_the_card_accepts(issuer, terminal, mastercard,
                                                              pan, profile, psn):
    card = card_of(issuer, pan, profile, psn)
    before = available(issuer, pan)
    fields, read = tap(issuer, terminal, card, 8800)
    assert fields[3] == codes.APPROVED
    assert fields[18] == expected_arpc(card, read, "00")
    assert len(fields[18]) == (4 if profile == "visa-18" else 8)
    assert available(issuer, pan) == before - 8800
    assert 10 not in fields                                # no PIN tries said


def test_the_atc_is_kept_and_the_next_tap_goes_on(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    for n in range(1, 4):
        assert tap(issuer, terminal, card, 100)[0][3] == codes.APPROVED
        assert issuer.ledger.execute("SELECT last_atc FROM cards WHERE pan_last4 = '0011'"
                                     ).fetchone()[0] == n


def test_a_tampered_icc_data_byte_is_declined_82_with_a_security_alert(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    read = read_card(card, 8800)
    values = dict(tlv.decode(read["icc"]))
    values["95"] = b"\x00\x00\x00\x00\x01"                  # one TVR bit the card did not sign
    before = available(issuer, LI_WEI)
    fields, _ = tap(issuer, terminal, card, 8800, icc=tlv.encode(values))
    assert fields[3] == codes.CRYPTOGRAM_FAILURE and 18 not in fields
    assert fields[8][1] == codes.SECURITY_ALERT and fields[8][3] == "138****5678"
    assert available(issuer, LI_WEI) == before
    row = issuer.ledger.outbox()[-1]
    assert row["kind"] == "cryptogram_failure" and "0011" in row["text"]
    assert "Security alert" in row["text"]


def test_a_replayed_cryptogram_is_declined_82(issuer, terminal):
    card = card_of(issuer, ZHANG_MIN, "visa-10")
    fields, read = tap(issuer, terminal, card, 1000)
    assert fields[3] == codes.APPROVED
    before = available(issuer, ZHANG_MIN)
    # the same ICC data in a new request: a new trace and KSN, the card's old ATC
    fields, _ = tap(issuer, terminal, card, 1000, icc=read["icc"])
    assert fields[3] == codes.CRYPTOGRAM_FAILURE and 18 not in fields
    assert available(issuer, ZHANG_MIN) == before
    assert issuer.ledger.outbox() == [] or issuer.ledger.outbox()[-1]["kind"] == \
        "cryptogram_failure"


def test_an_atc_below_the_last_is_declined_and_a_wrong_arqc_spends_no_atc(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    card.atc = 40
    assert tap(issuer, terminal, card, 100)[0][3] == codes.APPROVED     # ATC 41
    card.atc = 10
    assert tap(issuer, terminal, card, 100)[0][3] == codes.CRYPTOGRAM_FAILURE
    # a wrong ARQC with ATC 50 leaves 41 the last: the card's own ATC 50 then passes
    card.atc = 49
    read = read_card(card, 100)
    values = dict(tlv.decode(read["icc"]))
    values["9F26"] = bytes(8)
    assert tap(issuer, terminal, card, 100, icc=tlv.encode(values))[0][3] == \
        codes.CRYPTOGRAM_FAILURE
    card.atc = 49
    assert tap(issuer, terminal, card, 100)[0][3] == codes.APPROVED


def test_a_card_of_another_issuer_key_is_declined_82(issuer, terminal, tmp_path):
    from posbridge.issuer.keystore import KeyStore
    other = KeyStore.create(tmp_path / "other.keys")
    other.create_issuer_master_keys(LI_WEI[:6])
    card = EmvCard.personalise(other, LI_WEI, expiry="3012", profile="visa-18", psn="01")
    assert tap(issuer, terminal, card, 100)[0][3] == codes.CRYPTOGRAM_FAILURE


# ---- the CVM rule ----------------------------------------------------------------------

def test_no_pin_at_the_limit_is_approved_and_above_it_refused(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    assert tap(issuer, terminal, card, CONTACTLESS_CVM_LIMIT)[0][3] == codes.APPROVED
    before = available(issuer, LI_WEI)
    tries = issuer.ledger.card_by_pan(LI_WEI).pin_tries_left
    fields, read = tap(issuer, terminal, card, CONTACTLESS_CVM_LIMIT + 1)
    assert fields[3] == codes.INCORRECT_PIN and 10 not in fields
    # the ARQC was good: the answer carries the ARPC of the decline
    assert fields[18] == expected_arpc(card, read, "55")
    assert available(issuer, LI_WEI) == before
    assert issuer.ledger.card_by_pan(LI_WEI).pin_tries_left == tries


def test_above_the_limit_with_the_pin_is_approved(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    fields, _ = tap(issuer, terminal, card, CONTACTLESS_CVM_LIMIT + 1, pin="1234")
    assert fields[3] == codes.APPROVED and len(fields[18]) == 4
    fields, _ = tap(issuer, terminal, card, CONTACTLESS_CVM_LIMIT + 1, pin="9999")
    assert fields[3] == codes.INCORRECT_PIN and fields[10] == 2


def test_a_contactless_balance_inquiry_needs_the_pin(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    assert tap(issuer, terminal, card, None, kind="balance")[0][3] == codes.INCORRECT_PIN
    fields, read = tap(issuer, terminal, card, None, kind="balance", pin="1234")
    assert fields[3] == codes.APPROVED and fields[5] == available(issuer, LI_WEI)
    assert fields[18] == expected_arpc(card, read, "00")


def test_a_swiped_card_without_a_pin_block_is_refused(issuer, terminal):
    before = available(issuer, LI_WEI)
    body, pending = terminal.purchase(LI_WEI, 100, pin=None)
    fields = terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)
    assert fields[3] == codes.INCORRECT_PIN and 18 not in fields
    assert available(issuer, LI_WEI) == before


# ---- ICC data the issuer cannot use -----------------------------------------------------

def _icc(card, amount=100, **change):
    values = dict(tlv.decode(read_card(card, amount)["icc"]))
    for tag, value in change.items():
        if value is None:
            values.pop(tag)
        else:
            values[tag] = value
    return tlv.encode(values)


MALFORMED = [
    ("truncated", lambda icc: icc[:-3]),
    ("a length past the end", lambda icc: icc[:-1] + b"\x9f\x37\x7f"),
    ("a long length past the end", lambda icc: icc + b"\x9f\x10\x84\xff\xff\xff\xff"),
    ("a tag cut short", lambda icc: icc + b"\x9f"),
    ("constructed", lambda icc: b"\x77" + bytes([len(icc)]) + icc if len(icc) < 128
        else b"\x77\x81" + bytes([len(icc)]) + icc),
    ("deep nesting", lambda icc: b"\xe1\x06\xe1\x04\xe1\x02\x9c\x00" + icc),
    ("a tag twice", lambda icc: icc + icc[:11]),
]


@pytest.mark.parametrize("name, change", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_icc_data_is_a_clear_30(issuer, terminal, caplog, name, change):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    before = available(issuer, LI_WEI)
    icc = change(read_card(card, 100)["icc"])[:255]
    with caplog.at_level(logging.INFO, logger="posbridge"):
        fields, _ = tap(issuer, terminal, card, 100, icc=icc)
    assert fields[3] == codes.FORMAT_ERROR and 18 not in fields
    assert available(issuer, LI_WEI) == before
    assert "ICC data" in caplog.text and LI_WEI not in caplog.text
    assert icc.hex() not in caplog.text.lower() and icc.hex().upper() not in caplog.text


@pytest.mark.parametrize("change, why", [
    ({"9F26": None}, "tag 9F26 missing"),
    ({"9F36": b"\x01"}, "tag 9F36 is 1 bytes"),
    ({"9F02": bytes.fromhex("0000000000AA")}, "9F02 is not BCD"),
    ({"84": bytes.fromhex("A0000000999999")}, "no cryptogram version"),
    ({"9F10": bytes.fromhex("06016303A00000")}, "no cryptogram version"),
    ({"9F27": b"\x40"}, "not an ARQC"),
    ({"9C": b"\x31"}, "transaction type"),
    ({"9F02": bytes.fromhex("000000000200")}, "amount or currency"),
    ({"5F2A": bytes.fromhex("0840")}, "amount or currency"),
])
def test_icc_data_not_fit_for_the_request_is_30(issuer, terminal, caplog, change, why):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    with caplog.at_level(logging.WARNING, logger="posbridge"):
        fields, _ = tap(issuer, terminal, card, 100, icc=_icc(card, **change))
    assert fields[3] == codes.FORMAT_ERROR
    assert why in caplog.text


def test_entry_mode_and_icc_data_must_agree(issuer, terminal):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    icc = read_card(card, 100)["icc"]
    body, pending = terminal.purchase(LI_WEI, 100, pin=None, entry_mode=90, icc=icc)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)[3] == \
        codes.FORMAT_ERROR
    body, pending = terminal.purchase(LI_WEI, 100, pin=None, entry_mode=CONTACTLESS)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)[3] == \
        codes.FORMAT_ERROR


def test_a_card_range_without_issuer_keys_is_96(issuer, terminal, tmp_path):
    from posbridge.issuer.keystore import KeyStore
    other = KeyStore.create(tmp_path / "other.keys")
    other.create_issuer_master_keys("541333")
    cards.add(issuer.ledger, pan=MASTERCARD, pin="1234", expiry="3012", available=50000,
              currency=156, name="Ma Ke")
    card = EmvCard.personalise(other, MASTERCARD, expiry="3012", profile="mastercard-16")
    assert tap(issuer, terminal, card, 100)[0][3] == codes.SYSTEM_MALFUNCTION


def test_the_icc_parser_names_tags_never_values():
    with pytest.raises(IccDataError) as err:
        IccData.parse(bytes.fromhex("5A0847617300000000119F2608"))
    assert "4761" not in str(err.value)


def test_icc_data_and_pan_stay_out_of_the_log(issuer, terminal, caplog):
    card = card_of(issuer, LI_WEI, "visa-18", "01")
    with caplog.at_level(logging.DEBUG):
        fields, read = tap(issuer, terminal, card, 100)
    assert fields[3] == codes.APPROVED
    text = caplog.text.upper()
    assert LI_WEI not in text and read["icc"].hex().upper() not in text
    assert read["values"]["9F26"].hex().upper() not in text
    assert "ARQC VERIFIED" in text
