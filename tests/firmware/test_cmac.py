# AES-CMAC (NIST SP 800-38B) against the RFC 4493 section 4 test vectors.
import sys

import cryptolib

import cmac
from cmac import CMACError
from fwtest import raises

# RFC 4493 section 4: the AES-128 key and the 64-byte message of Examples 1 to 4
KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
MESSAGE = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710")
# RFC 4493 section 4, Examples 1 to 4: message length -> T
RFC4493 = (
    (0, "bb1d6929e95937287fa37d129b756746"),
    (16, "070a16b46b4d4144f79bdd9dd04a287c"),
    (40, "dfa66747de9ae63030ca32611497c827"),
    (64, "51f0bebf7e3b9d92fc49741779363cfe"),
)


def test_cryptolib_is_the_builtin_under_micropython():
    # tests/firmware/cryptolib.py must hand over to the built-in under MicroPython
    on_micropython = sys.implementation.name == "micropython"
    shim_object = hasattr(cryptolib.aes(bytes(16), 1), "_run")
    assert shim_object != on_micropython


def test_rfc4493_subkeys():
    # RFC 4493 section 4, "Subkey Generation"
    k1, k2 = cmac.subkeys(KEY)
    assert k1 == bytes.fromhex("fbeed618357133667c85e08f7236a8de")
    assert k2 == bytes.fromhex("f7ddac306ae266ccf90bc11ee46d513b")


def test_rfc4493_vectors():
    for length, tag in RFC4493:
        assert cmac.aes_cmac(KEY, MESSAGE[:length]) == bytes.fromhex(tag), length


def test_message_as_bytearray_or_memoryview():
    for length, tag in RFC4493:
        assert cmac.aes_cmac(bytearray(KEY), bytearray(MESSAGE[:length])) == bytes.fromhex(tag)
        assert cmac.aes_cmac(KEY, memoryview(MESSAGE)[:length]) == bytes.fromhex(tag)


def test_a_context_made_once_macs_and_verifies_as_its_key_does():
    # answer.py makes the context before the heap fragments, and uses it for one check
    context = cmac.cipher(KEY)
    for length, tag in RFC4493:
        assert cmac.aes_cmac(context, MESSAGE[:length]) == bytes.fromhex(tag), length
        assert cmac.verify(context, MESSAGE[:length], bytes.fromhex(tag)[:8])
        assert not cmac.verify(context, MESSAGE[:length], bytes(8))


def test_a_context_of_a_key_not_16_bytes_is_refused():
    for key in (b"", KEY[:15], KEY + b"\x00"):
        raises(CMACError, cmac.cipher, key)


def test_truncated_mac_is_the_leftmost_bytes():
    for length, tag in RFC4493:
        assert cmac.aes_cmac(KEY, MESSAGE[:length], 8) == bytes.fromhex(tag)[:8]


def test_mac_size_below_64_bits_is_refused():
    for size in (0, 4, 7, 17):
        raises(CMACError, cmac.aes_cmac, KEY, MESSAGE, size)


def test_verify_accepts_full_and_truncated_macs():
    for length, tag in RFC4493:
        mac = bytes.fromhex(tag)
        assert cmac.verify(KEY, MESSAGE[:length], mac)
        assert cmac.verify(KEY, MESSAGE[:length], mac[:8])


def test_verify_refuses_changed_message_mac_or_size():
    mac = bytes.fromhex(RFC4493[3][1])
    changed = bytearray(MESSAGE)
    changed[63] ^= 0x01
    assert not cmac.verify(KEY, changed, mac)
    for i in (0, 7, 15):
        bad = bytearray(mac)
        bad[i] ^= 0x80
        assert not cmac.verify(KEY, MESSAGE, bad)
    assert not cmac.verify(KEY, MESSAGE, mac[:7])
    assert not cmac.verify(KEY, MESSAGE, b"")
    assert not cmac.verify(KEY, MESSAGE, mac + b"\x00")


def test_lengths_around_block_boundaries_differ():
    # every length from 0 to 48 gives its own MAC (padding 10..0 vs K1/K2 choice)
    seen = set()
    for length in range(49):
        seen.add(cmac.aes_cmac(KEY, MESSAGE[:length]))
    assert len(seen) == 49
    # a message ending in what looks like padding is not the shorter message
    assert cmac.aes_cmac(KEY, MESSAGE[:15]) != cmac.aes_cmac(KEY, MESSAGE[:15] + b"\x80")


def test_key_size_is_checked():
    raises(CMACError, cmac.aes_cmac, KEY[:15], MESSAGE)
