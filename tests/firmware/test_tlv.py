# The board's BER-TLV parser (firmware/tlv.py): EMV Book 3 Annex B.
from fwtest import raises
from nfc_fakes import tlv as t
from tlv import collect, head, TLVError

MAX_DEPTH = 6   # tlv.py's bound


def h(text):
    return bytes.fromhex(text.replace(" ", ""))


def get(data, *tags):
    return collect(data, 0, len(data), dict((tag, None) for tag in tags))


def test_one_byte_two_byte_and_three_byte_tags():
    data = h("5A 02 4761") + h("9F26 01 AA") + h("DF8116 02 0102")
    assert head(data, 0, len(data)) == (0x5A, 0, 2, 4)
    f = get(data, 0x5A, 0x9F26, 0xDF8116)
    assert f[0x5A] == h("4761") and f[0x9F26] == h("AA") and f[0xDF8116] == h("0102")


def test_zero_length_value():
    f = get(h("9F10 00 82 02 2000"), 0x9F10, 0x82)
    assert f[0x9F10] == b"" and f[0x82] == h("2000")


def test_long_lengths():
    value = bytes(range(200))
    data = h("70 81 CC") + h("9F4B 81 C8") + value
    assert get(data, 0x9F4B)[0x9F4B] == value
    data = h("9F4B 82 0100") + bytes(256)
    assert get(data, 0x9F4B)[0x9F4B] == bytes(256)


def test_nested_templates_fci_and_gpo():
    fci = t("6F", t("84", b"2PAY.SYS.DDF01"),
            t("A5", t("BF0C", t("61", t("4F", h("A0000000031010")), t("87", b"\x01")))))
    f = get(fci, 0x84, 0xBF0C, 0x4F, 0x87)
    assert f[0x84] == b"2PAY.SYS.DDF01" and f[0x4F] == h("A0000000031010")
    start, end = f[0xBF0C]
    assert fci[start] == 0x61 and end == len(fci)
    gpo1 = h("80 06 2000 08010100")
    assert get(gpo1, 0x80)[0x80] == h("2000 08010100")
    gpo2 = t("77", t("82", h("2000")), t("94", h("08010100")))
    assert get(gpo2, 0x94)[0x94] == h("08010100")


def test_padding_between_objects_and_first_value_kept():
    f = get(h("00 00 5A 01 11 00 5A 01 22 00"), 0x5A)
    assert f[0x5A] == h("11")


def test_truncated_objects_are_refused():
    for bad in ("9F", "9F26", "5A 05 0102", "70 03 5A 02", "5A 81", "5A 82 01", "DF81"):
        raises(TLVError, get, h(bad), 0x5A)


def test_length_past_the_end_is_refused_even_inside_a_template():
    raises(TLVError, get, h("70 04 5A 05 0102"), 0x5A)   # inner length past the template's
    raises(TLVError, get, h("5A 82 FFFF 00"), 0x5A)
    raises(TLVError, get, h("77 04 9F36 02 00"), 0x9F36)


def test_lengths_emv_does_not_use_are_refused():
    raises(TLVError, get, h("5A 80 00 00"), 0x5A)            # indefinite
    raises(TLVError, get, h("5A 83 000001 00"), 0x5A)         # three length bytes
    raises(TLVError, get, h("DF818181 01 00"), 0xDF8181)      # four-byte tag


def test_nesting_deeper_than_the_bound_is_refused():
    ok = h("5A 01 11")
    for _ in range(MAX_DEPTH):
        ok = t("70", ok)
    assert get(ok, 0x5A)[0x5A] == h("11")
    raises(TLVError, get, t("70", ok), 0x5A)
    deep = b""
    for _ in range(60):   # empty templates 60 deep: only the bound stops them
        deep = h("70") + bytes((len(deep),)) + deep
    raises(TLVError, get, deep, 0x5A)


def test_whole_input_is_checked_not_only_what_is_wanted():
    raises(TLVError, get, h("5A 01 11 9F36 05 00"), 0x5A)
