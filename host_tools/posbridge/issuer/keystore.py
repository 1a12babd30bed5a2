"""The issuer's key store: the keys that check requests and protect the data at rest, in
a file of their own apart from the ledger, reached through operations that never hand a
key back to the caller, as a hardware security module would (GUIDE, Keys at rest).

    keys = KeyStore.open(path)                      # or KeyStore.create(path)
    keys.initial_key(initial_key_id)                # provisioning: the terminal's key
    keys.verify_request_mac(ksn, signed, mac)       # MacError, DukptError, UnknownKeySet
    keys.response_mac(ksn, signed, size)
    keys.verify_pin(ksn, pin_block, pan, reference) # PinCheck; PinBlockError, DukptError
    keys.pin_reference(pin, pan)                    # issuing a card
    keys.encrypt_pan(pan), keys.decrypt_pan(blob), keys.pan_lookup(pan)
    keys.create_issuer_master_keys(bin)             # a card range's EMV keys
    keys.icc_master_keys(pan, psn)                  # personalising a chip card
    keys.verify_arqc(pan, icc), keys.arpc(pan, icc, response_code)

What the file holds:
- BDKs by BDK id (8 hex digits, the KSN's first 4 bytes): AES-128 DUKPT base
  derivation keys (ANSI X9.24-3-2017);
- PIN verification keys (PVK) by index: three-key TDES, for IBM 3624 PIN offsets;
- issuer master keys by card range (the PAN's first 6 to 8 digits): for each, the
  double-length DES keys of EMV for application cryptograms (AC), secure messaging
  integrity (SMI) and confidentiality (SMC); a card's ICC master keys are derived from
  them (cryptogram.py, EMV option A);
- the data key, 32 random bytes. HKDF-SHA256 derives one key from it per use (PAN
  encryption, PAN lookup, sealing the PIN hashes of older databases), so that no key
  does two jobs.

The PIN on file is an IBM 3624 offset under the PVK: `ibm3624$<PVK index>$<offset>`.
Without the PVK an offset says nothing of the PIN (every PIN has some key that gives
that offset), unlike a hash, which a 4-digit PIN falls out of in 10,000 tries. A
database migrated from version 5 or older holds `sealed-scrypt$<hex>` instead: the old
scrypt hash, encrypted under the data key, checked once at the card's next right PIN
and then replaced by its offset (docs/issuer.md, Migration).

PANs: AES-256-GCM with a random 96-bit nonce (`01 | nonce | ciphertext | tag`), and an
HMAC-SHA256 of the PAN under the lookup key to find a card by its number.

The file is JSON, written to a temporary file made with mode 0600, flushed to disk and
renamed over the old one, so that a crash leaves the old or the new store. A store that
group or others may read is refused when opened.
"""
import hashlib
import hmac
import json
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.utils import CryptographyDeprecationWarning

from . import cryptogram, dukpt, pins
from .errors import LedgerError

# psec computes the offset with cryptography's TripleDES, which newer releases announce
# they will move; the algorithm is what IBM 3624 is defined with, so the notice is noise
warnings.filterwarnings("ignore", message="TripleDES has been moved",
                        category=CryptographyDeprecationWarning)
import psec.des  # noqa: E402
import psec.pin  # noqa: E402

FORMAT = 1
SUFFIX = ".keys"
MODE = 0o600

# IBM 3624: the usual decimalization table; the validation data are the PAN's digits
# before its check digit, the rightmost 12 of them, padded with F
DECIMALIZATION = "0123456789012345"
VALIDATION_DIGITS = 12
IBM3624 = "ibm3624"
SEALED_SCRYPT = "sealed-scrypt"

_PAN_BLOB_VERSION = b"\x01"
_NONCE_SIZE = 12
_PAN_AAD = b"posbridge issuer PAN v1"
_SEAL_AAD = b"posbridge issuer legacy PIN hash v1"


class KeyStoreError(LedgerError):
    """The key store cannot do what was asked; the message never holds a key."""


class UnknownKeySet(KeyStoreError):
    """No BDK for a KSN's BDK id."""


class UnknownCardRange(KeyStoreError):
    """No issuer master keys for a PAN's card range."""


class PinReferenceError(KeyStoreError):
    """The PIN reference on file is of no known form."""


@dataclass(frozen=True)
class PinCheck:
    ok: bool
    # a new reference to store in place of the old one (a sealed hash, verified once)
    replacement: "str | None" = None


def path_beside(db_path) -> Path:
    """The key store of a database when none is named: var/issuer.sqlite -> var/issuer.keys."""
    return Path(db_path).with_suffix(SUFFIX)


def _hkdf(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"posbridge issuer " + purpose).derive(key)


_IMK_USES = ("ac", "smi", "smc")


def _check_range(card_range: str) -> str:
    card_range = str(card_range)
    if not (card_range.isascii() and card_range.isdigit() and 6 <= len(card_range) <= 8):
        raise KeyStoreError("card range: the PAN's first 6 to 8 digits expected")
    return card_range


def _check_bdk_id(bdk_id: str) -> str:
    bdk_id = bdk_id.upper()
    if len(bdk_id) != 8 or any(c not in "0123456789ABCDEF" for c in bdk_id):
        raise KeyStoreError("BDK id: 8 hex digits expected (the KSN's first 4 bytes)")
    return bdk_id


class KeyStore:
    def __init__(self, path: Path, record: dict):
        self.path = Path(path)
        try:
            if record.get("format") != FORMAT:
                raise KeyStoreError(f"key store {self.path}: format "
                                    f"{record.get('format')!r} is not {FORMAT}")
            self._bdks = {_check_bdk_id(i): (bytes.fromhex(v["key"]), str(v.get("label", "")))
                          for i, v in record["bdks"].items()}
            self._pvks = {str(i): bytes.fromhex(v) for i, v in record["pvks"].items()}
            self._pvk_index = str(record["pvk_index"])
            # stores made before contactless cards have none
            self._imks = {_check_range(r): tuple(bytes.fromhex(v[use]) for use in _IMK_USES)
                          for r, v in record.get("imks", {}).items()}
            data_key = bytes.fromhex(record["data_key"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KeyStoreError(f"key store {self.path} is damaged "
                                f"({type(exc).__name__})") from None
        if (len(data_key) != 32 or self._pvk_index not in self._pvks
                or any(len(k) != 16 for k, _ in self._bdks.values())
                or any(len(k) != 24 for k in self._pvks.values())
                or any(len(k) != 16 for keys in self._imks.values() for k in keys)):
            raise KeyStoreError(f"key store {self.path} is damaged (a key of the wrong size)")
        self._data_key = data_key
        self._pan_key = AESGCM(_hkdf(data_key, b"PAN encryption"))
        self._lookup_key = _hkdf(data_key, b"PAN lookup")
        self._seal_key = AESGCM(_hkdf(data_key, b"legacy PIN hash sealing"))

    def __repr__(self):            # never a key, even in a traceback
        return (f"KeyStore({str(self.path)!r}, key sets {sorted(self._bdks)}, "
                f"card ranges {sorted(self._imks)})")

    # ---- the file ------------------------------------------------------------------

    @classmethod
    def create(cls, path, force: bool = False) -> "KeyStore":
        """A new key store: a fresh PVK and data key, no BDK yet. An existing file is
        refused unless `force`."""
        path = Path(path)
        if path.exists() and not force:
            raise KeyStoreError(f"issuer key store {path} exists: --force replaces it")
        pvk = psec.des.adjust_key_parity(secrets.token_bytes(24))
        store = cls(path, {"format": FORMAT, "bdks": {}, "pvks": {"1": pvk.hex()},
                           "pvk_index": "1", "data_key": secrets.token_bytes(32).hex()})
        store._save()
        return store

    @classmethod
    def open(cls, path) -> "KeyStore":
        path = Path(path)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyStoreError(f"no issuer key store at {path}: run posbridge issuer "
                                "init") from None
        if mode & 0o077:
            raise KeyStoreError(f"issuer key store {path} may be read by others (mode "
                                f"{mode & 0o777:04o}): chmod 600 it")
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"key store {path} cannot be read "
                                f"({type(exc).__name__})") from None
        if not isinstance(record, dict):
            raise KeyStoreError(f"key store {path} is damaged")
        return cls(path, record)

    def _save(self):
        record = {"format": FORMAT,
                  "bdks": {i: {"key": k.hex().upper(), "label": label}
                           for i, (k, label) in sorted(self._bdks.items())},
                  "pvks": {i: k.hex().upper() for i, k in sorted(self._pvks.items())},
                  "pvk_index": self._pvk_index,
                  "imks": {r: {use: k.hex().upper() for use, k in zip(_IMK_USES, keys)}
                           for r, keys in sorted(self._imks.items())},
                  "data_key": self._data_key.hex().upper()}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ---- key sets (DUKPT) ----------------------------------------------------------

    def import_bdk(self, bdk_id: str, bdk: bytes, label: str = ""):
        """Add a BDK under its id. The same key again changes nothing; another key under
        an id in use is refused (terminals derive from the one they were given)."""
        bdk_id = _check_bdk_id(bdk_id)
        bdk = bytes(bdk)
        if len(bdk) != dukpt.KEY_SIZE:
            raise KeyStoreError("BDK: 16 bytes (AES-128) expected")
        held = self._bdks.get(bdk_id)
        if held is not None:
            if not hmac.compare_digest(held[0], bdk):
                raise KeyStoreError(f"key set {bdk_id} is in the key store with another BDK")
            return
        self._bdks[bdk_id] = (bdk, label)
        self._save()

    def key_sets(self) -> "dict[str, str]":
        """BDK id -> label."""
        return {i: label for i, (_, label) in sorted(self._bdks.items())}

    def has_key_set(self, bdk_id: str) -> bool:
        return bdk_id.upper() in self._bdks

    def _bdk_of(self, ksn) -> bytes:
        bdk_id = bytes(ksn[:4]).hex().upper()
        held = self._bdks.get(bdk_id)
        if held is None:
            raise UnknownKeySet(f"no key set for BDK id {bdk_id}")
        return held[0]

    def initial_key(self, initial_key_id: bytes) -> bytes:
        """The initial key of the terminal with this 8-byte initial key ID (BDK id |
        derivation id): the one key that leaves the store, for the terminal it belongs
        to. UnknownKeySet when the BDK id has no key set."""
        return dukpt.derive_initial_key(self._bdk_of(initial_key_id), initial_key_id)

    def verify_request_mac(self, ksn: bytes, message: bytes, mac: bytes):
        """MacError unless `mac` is the terminal's CMAC of `message` under the MAC
        generation key of `ksn` (dukpt.verify_request_mac)."""
        dukpt.verify_request_mac(self._bdk_of(ksn), ksn, message, mac)

    def response_mac(self, ksn: bytes, message: bytes, mac_size: int) -> bytes:
        return dukpt.response_mac(self._bdk_of(ksn), ksn, message, mac_size)

    # ---- PINs ----------------------------------------------------------------------

    def _offset(self, pin: str, pan: str, index: str) -> str:
        pvk = self._pvks.get(index)
        if pvk is None:
            raise PinReferenceError(f"PIN reference names PVK {index!r}, not in the key store")
        digits = pan[:-1]                    # the check digit adds nothing
        start = max(0, len(digits) - VALIDATION_DIGITS)
        return psec.pin.generate_ibm3624_offset(
            pvk, DECIMALIZATION, pin, digits, start, len(digits) - start, "F")

    def pin_reference(self, pin: str, pan: str) -> str:
        """What a card keeps of `pin`: its IBM 3624 offset under the current PVK."""
        pins.check_pin_format(pin)
        return f"{IBM3624}${self._pvk_index}${self._offset(pin, pan, self._pvk_index)}"

    def verify_pin(self, ksn: bytes, pin_block: bytes, pan: str, reference: str) -> PinCheck:
        """Whether the PIN in the terminal's format 4 `pin_block` (under the PIN key of
        `ksn`) is the card's. The PIN exists only inside this call. PinBlockError or
        DukptError when the block does not decipher; PinReferenceError for a reference
        of no known form."""
        pin = dukpt.decrypt_pin_block(self._bdk_of(ksn), ksn, pin_block, pan)
        try:
            scheme, _, rest = reference.partition("$")
            if scheme == IBM3624:
                index, _, offset = rest.partition("$")
                # compare_digest takes the same time whichever digit differs; only a
                # length differs otherwise, and the offset on file shows that anyway
                return PinCheck(hmac.compare_digest(self._offset(pin, pan, index).encode(),
                                                    offset.encode()))
            if scheme == SEALED_SCRYPT:
                if not pins.verify_pin(pin, self._unseal(rest)):
                    return PinCheck(False)
                return PinCheck(True, self.pin_reference(pin, pan))
            raise PinReferenceError("PIN reference on file is of no known form")
        finally:
            del pin

    def seal_pin_hash(self, pin_hash: str) -> str:
        """An old database's scrypt hash encrypted under the data key, so that the
        database alone gives nothing to try PINs against (migration to version 6)."""
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = self._seal_key.encrypt(nonce, pin_hash.encode("ascii"), _SEAL_AAD)
        return f"{SEALED_SCRYPT}${(nonce + sealed).hex()}"

    def _unseal(self, text: str) -> str:
        try:
            blob = bytes.fromhex(text)
            return self._seal_key.decrypt(blob[:_NONCE_SIZE], blob[_NONCE_SIZE:],
                                          _SEAL_AAD).decode("ascii")
        except (ValueError, InvalidTag):
            raise PinReferenceError("sealed PIN hash does not open under this key "
                                    "store") from None

    # ---- PANs at rest ---------------------------------------------------------------

    def encrypt_pan(self, pan: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE_SIZE)
        return (_PAN_BLOB_VERSION + nonce
                + self._pan_key.encrypt(nonce, pan.encode("ascii"), _PAN_AAD))

    def decrypt_pan(self, blob: bytes) -> str:
        blob = bytes(blob)
        if blob[:1] != _PAN_BLOB_VERSION:
            raise KeyStoreError("encrypted PAN: unknown format")
        try:
            return self._pan_key.decrypt(blob[1:1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE:],
                                         _PAN_AAD).decode("ascii")
        except InvalidTag:
            raise KeyStoreError("encrypted PAN does not open under this key store") from None

    def pan_lookup(self, pan: str) -> str:
        """The keyed hash a card is found by (hex): HMAC-SHA256 under the lookup key,
        so that the database alone cannot test candidate PANs against it."""
        return hmac.new(self._lookup_key, pan.encode("ascii"), hashlib.sha256).hexdigest()

    # ---- chip cards (EMV) -------------------------------------------------------------

    def create_issuer_master_keys(self, card_range: str):
        """New random issuer master keys (AC, SMI, SMC) for the cards whose PAN starts
        with `card_range`; a range that has them keeps them (its cards carry keys
        derived from them)."""
        card_range = _check_range(card_range)
        if card_range in self._imks:
            return
        self._imks[card_range] = tuple(psec.des.adjust_key_parity(secrets.token_bytes(16))
                                       for _ in _IMK_USES)
        self._save()

    def card_ranges(self) -> "list[str]":
        return sorted(self._imks)

    def _imks_of(self, pan: str) -> tuple:
        # the longest range the PAN falls in
        for length in (8, 7, 6):
            keys = self._imks.get(pan[:length])
            if keys is not None:
                return keys
        raise UnknownCardRange(f"no issuer master keys for card range {pan[:6]}")

    def icc_master_keys(self, pan: str, psn: str = "00") -> tuple:
        """(AC, SMI, SMC) ICC master keys of the card `pan` with PAN sequence number
        `psn`, for personalising it: the keys that leave the store, for the chip they
        belong to (as initial_key does for a terminal). UnknownCardRange."""
        from pyemv import kd
        return tuple(kd.derive_icc_mk_a(imk, pan, psn) for imk in self._imks_of(pan))

    def _cvn(self, pan: str, icc: "cryptogram.IccData"):
        return icc.cvn_class(*self._imks_of(pan), pan=pan)

    def verify_arqc(self, pan: str, icc: "cryptogram.IccData") -> bool:
        """Whether the ARQC in `icc` is the one card `pan` computes over it.
        UnknownCardRange when the issuer holds no keys for the card's range."""
        expected = cryptogram.arqc_of(self._cvn(pan, icc), icc)
        return hmac.compare_digest(expected, icc.arqc)

    def arpc(self, pan: str, icc: "cryptogram.IccData", response_code: str) -> bytes:
        """The ARPC answering the ARQC in `icc` with `response_code`."""
        return cryptogram.arpc_of(self._cvn(pan, icc), icc, response_code)
