"""AES-CMAC (NIST SP 800-38B; RFC 4493) with nothing but AES-ECB (cryptolib).

Subkeys (SP 800-38B 6.1): L = AES(K, 0^128); K1 = dbl(L); K2 = dbl(K1), where dbl is a
left shift by one bit, XORed with R128 = 0x87 in the last byte when the bit shifted out
was 1. MAC (6.2): CBC-encrypt the message with a zero IV; the last block is XORed with
K1 when it is complete, or padded with 10...0 and XORed with K2 when it is not (an empty
message is one incomplete block). T = the leftmost mac_size bytes of the last cipher
block.

The protocol's MAC is the first 8 bytes (messages.MAC_LEN, docs/protocol.cddl `mac`);
MAC_SIZE (16) is the untruncated default. SP 800-38B appendix A advises at least 64
bits, so a mac_size under 8 is refused.
"""
import cryptolib

MAC_SIZE = 16
MIN_MAC_SIZE = 8
_MODE_ECB = 1


class CMACError(ValueError):
    pass


def _double(block):
    """dbl() of SP 800-38B 6.1, in place."""
    carry = block[0] & 0x80
    for i in range(15):
        block[i] = ((block[i] << 1) & 0xFF) | (block[i + 1] >> 7)
    block[15] = (block[15] << 1) & 0xFF
    if carry:
        block[15] ^= 0x87


def subkeys(key):
    """(K1, K2) of SP 800-38B 6.1, as bytes (RFC 4493 lists them for its test key)."""
    k = bytearray(16)
    cryptolib.aes(key, _MODE_ECB).encrypt(k, k)
    _double(k)
    k1 = bytes(k)
    _double(k)
    return k1, bytes(k)


def cipher(key):
    """The AES-ECB context of a 16-byte key, which aes_cmac and verify take in place of
    the key: one made early holds its 320 bytes where a fragmented heap may not have
    them later (answer.py)."""
    if len(key) != 16:
        raise CMACError("key: 16 bytes expected")
    return cryptolib.aes(key, _MODE_ECB)


def aes_cmac(key, message, mac_size=MAC_SIZE):
    """AES-CMAC of `message` (bytes, bytearray or memoryview) under a 16-byte key, or
    under the context cipher() made of one."""
    if mac_size < MIN_MAC_SIZE or mac_size > MAC_SIZE:
        raise CMACError("mac_size: 8 to 16 bytes")
    if isinstance(key, (bytes, bytearray, memoryview)):
        key = cipher(key)                # no new local: each name is RAM for good
    subkey = bytearray(16)
    key.encrypt(subkey, subkey)          # L
    _double(subkey)                      # K1
    n = len(message)
    complete = n > 0 and n % 16 == 0
    if not complete:
        _double(subkey)                  # K2
    last = n - 16 if complete else n - n % 16  # where the last block starts
    state = bytearray(16)
    i = 0
    while i < last:                      # CBC over every block but the last
        for j in range(16):
            state[j] ^= message[i + j]
        key.encrypt(state, state)
        i += 16
    for j in range(n - last):
        state[j] ^= message[last + j]
    if not complete:
        state[n - last] ^= 0x80          # padding 10...0
    for j in range(16):
        state[j] ^= subkey[j]
    key.encrypt(state, state)
    for j in range(16):
        subkey[j] = 0
    return bytes(state[:mac_size])


def verify(key, message, mac):
    """True when `mac` (8 to 16 bytes) is the AES-CMAC of `message`, False otherwise (a
    MAC of another size too). Compares every byte whatever the first difference, so the
    time taken says nothing about where it is."""
    if len(mac) < MIN_MAC_SIZE or len(mac) > MAC_SIZE:
        return False
    expected = aes_cmac(key, message, len(mac))
    diff = 0
    for i in range(len(mac)):
        diff |= expected[i] ^ mac[i]
    return diff == 0
