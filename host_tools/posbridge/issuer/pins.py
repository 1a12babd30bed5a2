"""The PIN format, and the salted scrypt hashes that databases of schema version 5 and
older kept: `scrypt$N$r$p$salt$hash` (hex).

A new card's PIN is an IBM 3624 offset under the key store's PVK (keystore.py): a
salted hash cannot protect a 4-digit PIN, which 10,000 tries find. A migrated database
keeps its hashes sealed under the data key, and the key store verifies one here once,
at the card's next right PIN, then replaces it by the offset.

Verification compares in constant time (hmac.compare_digest). No function here logs or
quotes a PIN; callers should drop the clear PIN as soon as verify_pin returns."""
import hashlib
import hmac
import os

N, R, P = 2 ** 14, 8, 1        # ~16 MiB and a few tens of ms a try
SALT_SIZE = 16
HASH_SIZE = 32
_SCHEME = "scrypt"


class PinHashError(ValueError):
    pass


def check_pin_format(pin: str) -> None:
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("PIN: 4 to 12 digits expected")


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode("ascii"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r + (1 << 20), dklen=HASH_SIZE)


def hash_pin(pin: str) -> str:
    """A new salted hash of `pin` (4 to 12 digits), with a random per-card salt."""
    check_pin_format(pin)
    salt = os.urandom(SALT_SIZE)
    return "$".join((_SCHEME, str(N), str(R), str(P), salt.hex(), _scrypt(pin, salt, N, R, P).hex()))


def verify_pin(pin: str, stored: str) -> bool:
    """True if `pin` is the PIN `stored` was made from."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            raise ValueError
        n, r, p, salt, digest = int(n), int(r), int(p), bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        raise PinHashError("PIN hash on file is not scrypt$N$r$p$salt$hash") from None
    return hmac.compare_digest(_scrypt(pin, salt, n, r, p), digest)
