# The EMV contactless read (firmware/emv.py) against scripted card answers, through the
# PN532 driver and a chip scripted byte by byte.
from fwtest import raises, FakeClock
from nfc_fakes import (FakeCard, FakeChip, PAN, VISA, UNIONPAY_DEBIT, OK, ppse_answer,
                       tlv as t)
from pn532 import PN532, CardGone
from tlv import collect
import emv

NOW = 1767225600 + 8 * 3600   # 2026-01-01 08:00 local (UTC+8)


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


class Term:
    cvm_limit = 30000


def read(card, amount=1250, chip=None):
    """emv.read at a terminal whose CVM limit is CNY 300.00, on 2026-01-01 local."""
    import wallclock
    wallclock.set_time(NOW - 8 * 3600, 480)
    chip = chip or FakeChip(card)
    clock = FakeClock()
    reader = PN532(chip, clock=clock, sleep=clock.advance)
    return emv.read(reader, 1, amount, Term())


def icc_tags(icc):
    wanted = dict((tag, None) for tag in (0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x95,
                                          0x9A, 0x9C, 0x9F02, 0x5F2A, 0x9F1A, 0x9F37,
                                          0x84, 0x5F34, 0x57, 0x5A))
    return collect(icc, 0, len(icc), wanted)


def test_visa_card_read_and_icc_data():
    card = FakeCard()
    pan, expiry, service, masked, icc = read(card)
    assert (pan, expiry, service, masked) == (PAN, "2812", "201", "476173******0011")
    f = icc_tags(icc)
    assert f[0x9F26] == bytes(range(1, 9)) and f[0x9F27] == b"\x80"
    assert f[0x9F36] == b"\x00\x07" and f[0x82] == b"\x20\x00"
    assert f[0x9F10] == h("06011203A00000") and f[0x84] == VISA
    assert f[0x9F02] == h("000000001250") and f[0x5F2A] == h("0156")
    assert f[0x9F1A] == h("0156") and f[0x9C] == b"\x00" and f[0x9A] == h("260101")
    assert f[0x95] == bytes(5) and len(f[0x9F37]) == 4 and f[0x5F34] == b"\x01"
    assert f[0x57] is None and f[0x5A] is None   # no track data leaves in the ICC data
    # the tags in the order of the protocol's list
    assert icc[:2] == h("9F26") and icc[-4:] == h("5F34 01 01")


def test_commands_sent_and_pdol_data():
    card = FakeCard()
    _, _, _, _, icc = read(card, amount=30001)
    seen = card.seen
    assert seen[0] == h("00A404000E") + b"2PAY.SYS.DDF01" + b"\x00"
    assert seen[1] == h("00A4040007 A0000000031010 00")
    gpo = seen[2]
    assert gpo[:4] == h("80A80000") and gpo[-1] == 0
    data = gpo[7:-1]
    assert gpo[4] == len(data) + 2 and gpo[5] == 0x83 and gpo[6] == len(data)
    # 9F66 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 DF8116 (unknown: zeros)
    assert data[:4] == h("24C00000")                     # TTQ, CVM required
    assert data[4:10] == h("000000030001")
    assert data[10:16] == bytes(6)
    assert data[16:18] == h("0156") and data[18:23] == bytes(5)
    assert data[23:25] == h("0156") and data[25:28] == h("260101") and data[28] == 0
    assert data[29:33] == icc_tags(icc)[0x9F37]           # the same UN in the ICC data
    assert data[33:] == b"\x00" and len(data) == 34
    assert seen[3] == h("00B2010C00")                     # SFI 1 record 1
    assert len(seen) == 4


def test_priority_chooses_among_supported_applications():
    mc = h("A0000000041010")
    unknown = h("A0000009999999")
    card = FakeCard({"00a404000e": ppse_answer((unknown, 1), (mc, 3), (UNIONPAY_DEBIT, 2)),
                     "00a4040008a000000333010101": t("6F", t("84", UNIONPAY_DEBIT)) + OK})
    read(card)
    assert card.seen[1] == h("00A4040008") + UNIONPAY_DEBIT + b"\x00"
    # the GPO without a PDOL carries 83 00
    assert card.seen[2] == h("80A8000002830000")


def test_unknown_application_only_is_not_supported():
    card = FakeCard({"00a404000e": ppse_answer((h("A0000009999999"), 1))})
    e = raises(emv.CardError, read, card)
    assert e.args[0] == "Not supported"
    assert len(card.seen) == 1


def test_card_answering_6a82_to_the_ppse_is_not_supported():
    card = FakeCard({"00a404000e": h("6A82")})
    assert raises(emv.CardError, read, card).args[0] == "Not supported"


def test_missing_mandatory_tag_is_a_read_error():
    gpo = t("77", t("82", b"\x20\x00"), t("94", b"\x08\x01\x01\x00"),
            t("9F36", b"\x00\x07"), t("9F27", b"\x80"), t("9F10", h("0601"))) + OK
    card = FakeCard({"80a80000": gpo})      # no 9F26: no cryptogram, no CDOL1
    assert raises(emv.CardError, read, card).args[0] == "Card read error"


def test_malformed_record_is_a_read_error():
    for record in (h("70 10 5A 08") + OK, h("70 03 9F 36 05") + OK, h("90"),
                   t("70", t("57", h("4761730000000011"))) + OK):   # no separator
        card = FakeCard({"00b2010c": record})
        assert raises(emv.CardError, read, card).args[0] == "Card read error"


def test_pan_of_5a_and_track2_must_agree_and_pass_luhn():
    t2 = h("4761730000000012 d2812201 0000000000000f".replace(" ", ""))
    card = FakeCard({"00b2010c": t("70", t("57", t2)) + OK})
    raises(emv.CardError, read, card)
    t2 = h("4761730000000011d28122010f")
    card = FakeCard({"00b2010c": t("70", t("57", t2), t("5A", h("4761730000000029"))) + OK})
    raises(emv.CardError, read, card)


def test_bad_afl_is_a_read_error():
    for afl in (h("00 01 01 00"), h("08 00 01 00"), h("08 03 01 00"), h("F8 01 01 00")):
        gpo = t("77", t("82", b"\x20\x00"), t("94", afl)) + OK
        assert raises(emv.CardError, read, FakeCard({"80a80000": gpo})).args[0] == \
            "Card read error"


def test_format1_gpo_then_generate_ac_for_the_cryptogram():
    cdol1 = h("9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704 9F3501")
    record = t("70", t("57", h("5413330089020011d2512201" + "0000000f")),
               t("5F24", h("251231")), t("8C", cdol1)) + OK
    genac = h("80 0F") + b"\x80" + b"\x00\x09" + bytes(range(8)) + h("0110A000") + OK
    card = FakeCard({"00a404000e": ppse_answer((h("A0000000041010"), 1)),
                     "00a4040007a0000000041010": t("6F", t("84", h("A0000000041010"))) + OK,
                     "80a80000": h("80 06 1980 08010100") + OK,
                     "00b2010c": record, "80ae8000": genac})
    pan, expiry, service, _, icc = read(card, amount=500)
    assert (pan, expiry, service) == ("5413330089020011", "2512", "201")
    f = icc_tags(icc)
    assert f[0x9F26] == bytes(range(8)) and f[0x9F27] == b"\x80"
    assert f[0x9F36] == b"\x00\x09" and f[0x9F10] == h("0110A000") and f[0x82] == h("1980")
    genac_apdu = card.seen[-1]
    assert genac_apdu[:5] == h("80AE80001E") and genac_apdu[5:11] == h("000000000500")
    assert genac_apdu[-2] == 0x21   # terminal type: attended, online only


def test_get_response_after_61xx():
    answer = FakeCard().answers["00b2010c"]
    card = FakeCard({"00b2010c": h("61") + bytes((len(answer) - 2,)), "00c00000": answer})
    assert read(card)[0] == PAN


def test_card_leaving_mid_read_passes_through():
    chip = FakeChip(FakeCard())
    chip.gone_after = 2
    raises(CardGone, read, None, chip=chip)


def test_balance_inquiry_type_and_zero_amount():
    _, _, _, _, icc = read(FakeCard(), amount=None)
    f = icc_tags(icc)
    assert f[0x9C] == b"\x31" and f[0x9F02] == bytes(6)
