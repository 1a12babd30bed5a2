"""Issuer side of the terminal's cryptography, with the `cryptography` package:

- AES-128 DUKPT from the base derivation key (ANSI X9.24-3-2017): the initial key of a
  terminal (its provisioning), and the transaction and working keys of any KSN;
- AES-CMAC (NIST SP 800-38B): check the MAC of a request, make the MAC of a response;
- ISO 9564-1 format 4 PIN blocks: decipher one back to the PIN, for PIN verification.

The terminal's own code (firmware/dukpt.py, cmac.py, pinblock.py) is written separately
for MicroPython; tests/host/issuer/test_dukpt.py checks that each side accepts the other's
output. Only this side ever holds the BDK or deciphers a PIN.

DUKPT derivation data (X9.24-3 6.3.2, tables 2 and 3), 16 bytes, one AES-ECB block:
01 | key block counter 01 | key usage | algorithm 0002 (AES-128) | length 0080 | 8 bytes,
these being the initial key ID for the initial key (usage 8001), else initial key ID
bytes 4..7 | a counter value. The transaction key walks the counter's set bits from the
most significant (usage 8000, the counter bits walked so far); a working key is one more
step from the transaction key with the whole counter. A KSN whose counter is 0 or has more
than 16 one-bits (X9.24-3 6.1) is never produced by a conforming terminal and is refused.

MAC keys by direction: the terminal MACs its request with the MAC generation key (2000)
and checks the response with the MAC verification key (2001), so the issuer verifies with
the first and generates with the second.

The decoded PIN is returned as a str, which Python cannot wipe: keep it no longer than the
comparison with the PIN on file, and never log it. Errors never quote PIN digits.
"""
import enum
import functools
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

KSN_SIZE = 12
INITIAL_KEY_ID_SIZE = 8
KEY_SIZE = 16
MAC_SIZE = 16
MIN_MAC_SIZE = 8          # NIST SP 800-38B appendix A: at least 64 bits
MAX_ONE_BITS = 16         # X9.24-3 6.1
_ALGORITHM_AES128 = 0x0002
_KEY_BITS = 128


class KeyUsage(enum.IntEnum):
    """Key usage indicators of the DUKPT derivation data (X9.24-3 6.3.2)."""
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPTION = 0x3000
    DATA_DECRYPTION = 0x3001
    DATA_BOTH = 0x3002
    KEY_DERIVATION = 0x8000
    INITIAL_KEY = 0x8001


class DukptError(ValueError):
    pass


class MacError(ValueError):
    pass


class PinBlockError(ValueError):
    pass


def _aes_ecb_encrypt(key, block):
    enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
    return enc.update(bytes(block)) + enc.finalize()


def _aes_ecb_decrypt(key, block):
    dec = Cipher(algorithms.AES(bytes(key)), modes.ECB()).decryptor()
    return dec.update(bytes(block)) + dec.finalize()


def _derivation_data(usage, tail):
    return (bytes([0x01, 0x01]) + int(usage).to_bytes(2, "big")
            + _ALGORITHM_AES128.to_bytes(2, "big") + _KEY_BITS.to_bytes(2, "big") + tail)


def _check_size(name, value, size):
    if len(value) != size:
        raise DukptError(f"{name}: {size} bytes expected, got {len(value)}")


def parse_ksn(ksn):
    """(initial key ID, transaction counter) of a 12-byte KSN, the counter checked."""
    ksn = bytes(ksn)
    _check_size("KSN", ksn, KSN_SIZE)
    counter = int.from_bytes(ksn[8:], "big")
    if counter == 0:
        raise DukptError("KSN transaction counter: 0 has no transaction key")
    if bin(counter).count("1") > MAX_ONE_BITS:
        raise DukptError(f"KSN transaction counter {counter:08X}: more than 16 one-bits")
    return ksn[:8], counter


def derive_initial_key(bdk, initial_key_id):
    """The terminal's initial key, from the BDK and its 8-byte initial key ID."""
    _check_size("BDK", bdk, KEY_SIZE)
    _check_size("initial key ID", initial_key_id, INITIAL_KEY_ID_SIZE)
    return _aes_ecb_encrypt(bdk, _derivation_data(KeyUsage.INITIAL_KEY, bytes(initial_key_id)))


def derive_transaction_key(bdk, ksn):
    return _transaction_key(bytes(bdk), bytes(ksn))


# A request's MAC check, PIN block and answer MAC each need its transaction key: derived
# once, not three times (the issuer's key store holds the BDK itself in memory anyway)
@functools.lru_cache(maxsize=64)
def _transaction_key(bdk, ksn):
    initial_key_id, _ = parse_ksn(ksn)
    return transaction_key_from_initial(derive_initial_key(bdk, initial_key_id), ksn)


def transaction_key_from_initial(initial_key, ksn):
    """The transaction key of `ksn` from the terminal's initial key: what a terminal
    derives, without the BDK (host-side test terminals use it)."""
    initial_key_id, counter = parse_ksn(ksn)
    _check_size("initial key", initial_key, KEY_SIZE)
    key = bytes(initial_key)
    walked = 0
    for bit in range(31, -1, -1):
        mask = 1 << bit
        if counter & mask:
            walked |= mask
            tail = initial_key_id[4:] + walked.to_bytes(4, "big")
            key = _aes_ecb_encrypt(key, _derivation_data(KeyUsage.KEY_DERIVATION, tail))
    return key


def derive_working_key(bdk, ksn, usage):
    return _working_key(derive_transaction_key(bdk, ksn), ksn, usage)


def working_key_from_initial(initial_key, ksn, usage):
    """A working key of `ksn` from the terminal's initial key (terminal side)."""
    return _working_key(transaction_key_from_initial(initial_key, ksn), ksn, usage)


def working_keys_from_initial(initial_key, ksn, usages):
    """The working keys of `ksn` for each of `usages`, from one walk to its transaction
    key (terminal side: a request needs its PIN and both MAC keys)."""
    transaction_key = transaction_key_from_initial(initial_key, ksn)
    return [_working_key(transaction_key, ksn, usage) for usage in usages]


def _working_key(transaction_key, ksn, usage):
    initial_key_id, counter = parse_ksn(ksn)
    tail = initial_key_id[4:] + counter.to_bytes(4, "big")
    return _aes_ecb_encrypt(transaction_key, _derivation_data(usage, tail))


def aes_cmac(key, message, mac_size=MAC_SIZE):
    if not MIN_MAC_SIZE <= mac_size <= MAC_SIZE:
        raise MacError("MAC size: 8 to 16 bytes")
    c = CMAC(algorithms.AES(bytes(key)))
    c.update(bytes(message))
    return c.finalize()[:mac_size]


def verify_request_mac(bdk, ksn, message, mac):
    """Raise MacError unless `mac` (16 bytes, or truncated to no fewer than 8) is the
    terminal's AES-CMAC of `message` under the MAC generation key of `ksn`."""
    if not MIN_MAC_SIZE <= len(mac) <= MAC_SIZE:
        raise MacError(f"request MAC: 8 to 16 bytes expected, got {len(mac)}")
    key = derive_working_key(bdk, ksn, KeyUsage.MAC_GENERATION)
    if not hmac.compare_digest(aes_cmac(key, message, len(mac)), bytes(mac)):
        raise MacError("request MAC does not match")


def response_mac(bdk, ksn, message, mac_size=MAC_SIZE):
    """The AES-CMAC of a response, under the MAC verification key of the request's KSN."""
    return aes_cmac(derive_working_key(bdk, ksn, KeyUsage.MAC_VERIFICATION), message, mac_size)


def pan_field(pan):
    """ISO 9564-1 format 4 plain text PAN field (9.4.2)."""
    if not (1 <= len(pan) <= 19 and pan.isascii() and pan.isdigit()):
        raise PinBlockError("PAN: 1 to 19 digits expected")
    length = max(0, len(pan) - 12)
    return bytes.fromhex((str(length) + pan.rjust(12, "0")).ljust(32, "0"))


def decipher_pin_block(pin_key, pin_block, pan):
    """The PIN in a format 4 block (ISO 9564-1 9.4.2.4): B = AES^-1(K, block);
    A = B xor PAN field; PIN field = AES^-1(K, A)."""
    if len(pin_block) != 16:
        raise PinBlockError(f"PIN block: 16 bytes expected, got {len(pin_block)}")
    b = _aes_ecb_decrypt(pin_key, pin_block)
    a = bytes(x ^ y for x, y in zip(b, pan_field(pan)))
    nibbles = _aes_ecb_decrypt(pin_key, a).hex().upper()
    length = int(nibbles[1], 16)
    # a wrong key, KSN or PAN gives noise that fails one of these; say which, not what
    if nibbles[0] != "4":
        raise PinBlockError("PIN block: control field is not 4 (wrong key, KSN or PAN?)")
    if not 4 <= length <= 12:
        raise PinBlockError("PIN block: PIN length outside 4..12")
    if not nibbles[2:2 + length].isdigit():
        raise PinBlockError("PIN block: PIN field holds a non-digit")
    if nibbles[2 + length:16] != "A" * (14 - length):
        raise PinBlockError("PIN block: fill is not A")
    return nibbles[2:2 + length]


def decrypt_pin_block(bdk, ksn, pin_block, pan):
    """The PIN (str of digits) in a terminal's format 4 block, under the PIN encryption
    key of `ksn`. Raises PinBlockError or DukptError; neither message holds a digit."""
    pin_key = derive_working_key(bdk, ksn, KeyUsage.PIN_ENCRYPTION)
    return decipher_pin_block(pin_key, pin_block, pan)
