# ISO 9564-1 format 4 PIN block: the standard's worked example, the field layouts, and the
# wiping of every buffer that held clear PIN digits. The test PINs are test data only.
import cryptolib

import pinblock
from pinblock import PinBlockError
from fwtest import raises
from reference_vectors import load, unhex

# the PIN encryption key of counter 1, X9.24-3-2017 test vector supplement, AES-128 BDK set
PIN_KEY = bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")


def _example():
    # ISO 9564-1:2017 format 4 (9.4.2) worked in the X9.24-3-2017 test vector supplement
    ref = load()
    example = ref["iso9564_format4_example"]
    # the example's KSN is the first transaction's; its PIN key is that transaction's
    tx = [t for t in ref["transactions"] if t["ksn"] == example["ksn"]][0]
    return example, unhex(tx["pin_encryption_key"])


def _plain_pin_field(pin_key, block, pan):
    # The issuer's steps (ISO 9564-1 9.4.2.4), written out here to look inside a block.
    b = cryptolib.aes(pin_key, 1).decrypt(block)
    a = bytes(x ^ y for x, y in zip(b, pinblock.pan_field(pan)))
    return cryptolib.aes(pin_key, 1).decrypt(a)


def test_iso9564_format4_example():
    example, pin_key = _example()
    plain = unhex(example["plain_pin_field"])
    pin = bytearray(example["pin"].encode())
    block = pinblock.make_block(pin_key, pin, example["pan"], fill=plain[8:16])
    assert block == unhex(example["encrypted_pin_block"])
    assert pin_key == PIN_KEY


def test_example_fields():
    example, pin_key = _example()
    assert bytes(pinblock.pan_field(example["pan"])) == unhex(example["plain_pan_field"])
    block = unhex(example["encrypted_pin_block"])
    assert _plain_pin_field(pin_key, block, example["pan"]) == unhex(example["plain_pin_field"])


def test_clear_pin_buffer_is_wiped():
    pin = bytearray(b"987654")
    pinblock.make_block(PIN_KEY, pin, "4111111111111111")
    assert pin == bytearray(6)


def test_clear_pin_buffer_is_wiped_on_error_too():
    for pin, pan in ((bytearray(b"123"), "4111111111111111"),        # too short
                     (bytearray(b"12a4"), "4111111111111111"),       # not a digit
                     (bytearray(b"1234567890123"), "4111111111111111"),  # too long
                     (bytearray(b"1234"), "41111111111111111111"),   # PAN too long
                     (bytearray(b"1234"), "4111x11111111111")):      # PAN not digits
        text = pin.decode()
        err = raises(PinBlockError, pinblock.make_block, PIN_KEY, pin, pan)
        assert pin == bytearray(len(text))
        assert text not in str(err)


def test_pin_must_be_wipeable():
    raises(PinBlockError, pinblock.make_block, PIN_KEY, b"1234", "4111111111111111")


def test_pin_lengths_4_to_12_layout():
    fill = bytes(range(0xF0, 0xF8))
    pan = "5413330089020011"
    for n in range(4, 13):
        digits = b"314159265358"[:n]
        block = pinblock.make_block(PIN_KEY, bytearray(digits), pan, fill=fill)
        field = _plain_pin_field(PIN_KEY, block, pan)
        nibbles = field.hex().upper()
        assert nibbles[0] == "4" and int(nibbles[1], 16) == n
        assert nibbles[2:2 + n] == digits.decode()
        assert nibbles[2 + n:16] == "A" * (14 - n)
        assert field[8:16] == fill


def test_pan_field_lengths():
    # laid out by hand from the PAN field rule of ISO 9564-1:2017 format 4; the last one
    # is the supplement example's plain_pan_field
    assert bytes(pinblock.pan_field("123456789012")) == unhex("01234567890120000000000000000000")
    assert bytes(pinblock.pan_field("1234567890123456789")) == unhex(
        "71234567890123456789000000000000")
    # shorter than 12 digits: right-justified with zeros, length nibble 0
    assert bytes(pinblock.pan_field("12345")) == unhex("00000000123450000000000000000000")
    assert bytes(pinblock.pan_field(b"4111111111111111")) == unhex(
        "44111111111111111000000000000000")
    raises(PinBlockError, pinblock.pan_field, "")
    raises(PinBlockError, pinblock.pan_field, "12345678901234567890")


def test_random_fill_makes_each_block_different():
    a = pinblock.make_block(PIN_KEY, bytearray(b"1234"), "4111111111111111")
    b = pinblock.make_block(PIN_KEY, bytearray(b"1234"), "4111111111111111")
    assert a != b
    assert len(a) == 16 and len(b) == 16


def test_pan_is_bound_into_the_block():
    fill = bytes(8)
    a = pinblock.make_block(PIN_KEY, bytearray(b"1234"), "4111111111111111", fill=fill)
    b = pinblock.make_block(PIN_KEY, bytearray(b"1234"), "4111111111111112", fill=fill)
    assert a != b


def test_fill_and_key_sizes_are_checked():
    raises(PinBlockError, pinblock.make_block, PIN_KEY, bytearray(b"1234"),
           "4111111111111111", fill=bytes(7))
    raises(PinBlockError, pinblock.make_block, PIN_KEY[:8], bytearray(b"1234"),
           "4111111111111111")


def test_pin_in_a_memoryview_is_wiped():
    buf = bytearray(b"123456xxxx")
    pinblock.make_block(PIN_KEY, memoryview(buf)[:6], "4111111111111111")
    assert buf == bytearray(6) + b"xxxx"
