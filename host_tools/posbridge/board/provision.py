"""Provisioning a terminal: its identity, and its DUKPT state filled from its initial
key, written as the board's state records (firmware/store.py's format):

    terminal.json   terminal id, merchant id and name, the merchant's UTC offset, the
                    contactless CVM limit (JSON)
    keys.bin        the device's DUKPT record (layout in firmware/dukpt.py): initial key
                    ID, next transaction counter, last trace number, and the 32
                    intermediate derivation key registers (ANSI X9.24-3-2017 6.5)

The initial key is loaded here, off the board, as the standard's device does it: each
register gets the key its counter will need, and the initial key is then forgotten. The
board never holds it, not even for its first boot: its flash (LittleFS) writes a file
anew elsewhere and leaves the old blocks until they are reused, so an initial key the
board erased after converting it could still be read from a dump of its flash. The BDK
stays with the issuer (docs/protocol.md, MACs). For the emulator and the demo, the key set is
the public ANSI X9.24-3 test key set, which the issuer's demo data uses too."""
import json
import os
import re
from pathlib import Path

from ..issuer.dukpt import derive_initial_key, transaction_key_from_initial

# ANSI X9.24-3-2017 supplement's public sample BDK and initial key ID: test use only
TEST_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
TEST_INITIAL_KEY_ID = bytes.fromhex("1234567890123456")
RECORD_SIZE = 529           # firmware/dukpt.py
LAST_COUNTER = 0xFFFF0000   # X9.24-3 6.1: the largest counter with at most 16 one-bits
TERMINAL_ID_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
# the merchant a purchase names: ISO 8583 field 42 (card acceptor id, 15 characters) and
# the name part of field 43 (22), as the cardholder's alert shows it
TEST_MERCHANT_ID = "104110070110001"
TEST_MERCHANT_NAME = "DEMO SHOP"
# the merchant's local time on the board's screen, minutes east of UTC: the demo
# merchant is in China (CNY), as are the demo issuer's alerts (UTC+8)
TEST_UTC_OFFSET_MIN = 480
UTC_OFFSET_RANGE = (-720, 840)   # UTC-12 .. UTC+14, what firmware/wallclock.py takes
# A contactless purchase above this (minor units) asks for the cardholder's online PIN;
# at or below it none (firmware/transaction.py). CNY 1,000.00, the limit UnionPay
# QuickPass has for small purchases without PIN or signature in mainland China, and the
# issuer simulator's own (issuer/service.py): a board's limit above the issuer's would
# only get its PIN-less purchases refused.
DEFAULT_CVM_LIMIT = 100_000
CVM_LIMIT_MAX = 999_999_999_999     # 9F02's twelve digits
MERCHANT_ID_RE = re.compile(r"^[ -~]{1,15}$")
MERCHANT_NAME_RE = re.compile(r"^[ -~]{1,22}$")


class ProvisionError(ValueError):
    pass


RECORD_MODE = 0o600     # keys.bin holds the terminal's key registers


def _write_atomic(path: Path, data: bytes):
    """`data` in a temporary file made with mode 0600 (never readable by others, not
    even for a moment), then renamed over the old one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, RECORD_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def register_record(initial_key: bytes, initial_key_id: bytes, counter: int = 1,
                    trace: int = 0) -> bytes:
    """The board's DUKPT record with `counter` the next transaction counter (1 for a
    new key, 0 once exhausted) and `trace` the last trace number used. Register i holds
    the transaction key of the counter made of `counter`'s bits above i and bit i, for
    every i where that counter is not yet reached: i the lowest set bit of `counter`, or
    a clear bit above it. The other registers are zeros."""
    record = bytearray(b"\x01" + initial_key_id + counter.to_bytes(4, "big")
                       + trace.to_bytes(4, "big") + bytes(32 * 16))
    if counter:
        low = (counter & -counter).bit_length() - 1
        for i in range(low, 32):
            if i == low or not counter >> i & 1:
                future = (counter >> (i + 1) << (i + 1)) | 1 << i
                key = transaction_key_from_initial(
                    initial_key, initial_key_id + future.to_bytes(4, "big"))
                record[17 + 16 * i:33 + 16 * i] = key
    return bytes(record)


def provision(state_dir: Path, terminal_id: str, initial_key: bytes, initial_key_id: bytes,
              merchant_id: str = TEST_MERCHANT_ID, merchant_name: str = TEST_MERCHANT_NAME,
              utc_offset_min: int = TEST_UTC_OFFSET_MIN, force: bool = False,
              cvm_limit: int = DEFAULT_CVM_LIMIT) -> Path:
    if not TERMINAL_ID_RE.match(terminal_id):
        raise ProvisionError("terminal id: 1 to 16 letters or digits")
    if not MERCHANT_ID_RE.match(merchant_id):
        raise ProvisionError("merchant id: 1 to 15 printable ASCII characters")
    if not MERCHANT_NAME_RE.match(merchant_name):
        raise ProvisionError("merchant name: 1 to 22 printable ASCII characters")
    low, high = UTC_OFFSET_RANGE
    if type(utc_offset_min) is not int or not low <= utc_offset_min <= high:
        raise ProvisionError(f"UTC offset: minutes east of UTC, {low}..{high} "
                             "(480 for UTC+8)")
    if type(cvm_limit) is not int or not 0 <= cvm_limit <= CVM_LIMIT_MAX:
        raise ProvisionError("contactless CVM limit: minor units, 0.."
                             f"{CVM_LIMIT_MAX} (100000: CNY 1,000.00)")
    if len(initial_key) != 16:
        raise ProvisionError("initial key: 16 bytes (32 hex digits) expected")
    if len(initial_key_id) != 8:
        raise ProvisionError("initial key ID: 8 bytes (16 hex digits) expected")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    terminal = state_dir / "terminal.json"
    if terminal.exists() and not force:
        raise ProvisionError(f"{terminal} exists: the terminal is provisioned already "
                             "(--force replaces its key and restarts its key counter)")
    # A new initial key starts its transaction counter again. The trace number goes on:
    # the issuer knows a transaction by (terminal id, trace number), so starting it
    # again would make every new transaction look like a reused identity (94).
    # The same key given again keeps its counter too: starting it again would reuse
    # transaction keys.
    key_id, counter, trace = _recorded(state_dir)
    if key_id != initial_key_id:
        counter = 1
    _write_atomic(state_dir / "keys.bin",
                  register_record(initial_key, initial_key_id, counter, trace))
    _write_atomic(terminal, json.dumps({"terminal_id": terminal_id,
                                        "merchant_id": merchant_id,
                                        "merchant_name": merchant_name,
                                        "utc_offset_min": utc_offset_min,
                                        "cvm_limit": cvm_limit}).encode())
    # the records of firmware that kept the initial key, now replaced by keys.bin
    (state_dir / "counters.json").unlink(missing_ok=True)
    return terminal


def _recorded(state_dir: Path):
    """(initial key ID, next counter, last trace number) already on the board's flash:
    from keys.bin, or from the records of firmware that kept the initial key
    (terminal.json's initial key ID, counters.json's last counter and trace); (None, 1,
    0) when there is nothing readable."""
    try:
        record = (state_dir / "keys.bin").read_bytes()
        if len(record) == RECORD_SIZE and record.startswith(b"\x01"):
            return (record[1:9], int.from_bytes(record[9:13], "big"),
                    int.from_bytes(record[13:17], "big"))
    except OSError:
        pass
    try:
        key_id = bytes.fromhex(json.loads((state_dir / "terminal.json").read_text())
                               ["initial_key_id"])
        last = json.loads((state_dir / "counters.json").read_text())
        used, trace = int(last.get("ksn_counter", 0)), int(last.get("trace", 0))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, 1, 0
    trace = trace if 0 <= trace <= 999999 else 0
    if used < 0 or used >= LAST_COUNTER:
        return key_id, 0, trace       # exhausted, or not a counter: no key to give
    counter = used + 1
    while bin(counter).count("1") > 16:
        counter += counter & -counter
    return key_id, counter, trace


def provision_test_terminal(state_dir: Path, terminal_id: str = "T0000001", **kw) -> Path:
    return provision(state_dir, terminal_id, derive_initial_key(TEST_BDK, TEST_INITIAL_KEY_ID),
                     TEST_INITIAL_KEY_ID, **kw)
