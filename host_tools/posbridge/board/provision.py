"""Provisioning a terminal: its identity and its DUKPT initial key, written as the
board's state records (firmware/store.py's format, a JSON file per record).

The board gets the initial key and the initial key ID and nothing else: the BDK stays
with the issuer (GUIDE, Security). For the emulator and the demo, the key set is the
public ANSI X9.24-3 test key set, which the issuer's demo data uses too."""
import json
import os
import re
from pathlib import Path

from ..issuer.dukpt import derive_initial_key

# ANSI X9.24-3-2017 supplement's public sample BDK and initial key ID: test use only
TEST_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
TEST_INITIAL_KEY_ID = bytes.fromhex("1234567890123456")
TERMINAL_ID_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
# the merchant a purchase names: ISO 8583 field 42 (card acceptor id, 15 characters) and
# the name part of field 43 (22), as the cardholder's alert shows it
TEST_MERCHANT_ID = "104110070110001"
TEST_MERCHANT_NAME = "DEMO SHOP"
MERCHANT_ID_RE = re.compile(r"^[ -~]{1,15}$")
MERCHANT_NAME_RE = re.compile(r"^[ -~]{1,22}$")


class ProvisionError(ValueError):
    pass


RECORD_MODE = 0o600     # terminal.json holds the terminal's initial key


def _write_atomic(path: Path, record: dict):
    """The record in a temporary file made with mode 0600 (never readable by others,
    not even for a moment), then renamed over the old one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, RECORD_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record))
    os.replace(tmp, path)


def provision(state_dir: Path, terminal_id: str, initial_key: bytes, initial_key_id: bytes,
              merchant_id: str = TEST_MERCHANT_ID, merchant_name: str = TEST_MERCHANT_NAME,
              force: bool = False) -> Path:
    if not TERMINAL_ID_RE.match(terminal_id):
        raise ProvisionError("terminal id: 1 to 16 letters or digits")
    if not MERCHANT_ID_RE.match(merchant_id):
        raise ProvisionError("merchant id: 1 to 15 printable ASCII characters")
    if not MERCHANT_NAME_RE.match(merchant_name):
        raise ProvisionError("merchant name: 1 to 22 printable ASCII characters")
    if len(initial_key) != 16:
        raise ProvisionError("initial key: 16 bytes (32 hex digits) expected")
    if len(initial_key_id) != 8:
        raise ProvisionError("initial key ID: 8 bytes (16 hex digits) expected")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    terminal = state_dir / "terminal.json"
    if terminal.exists() and not force:
        raise ProvisionError(f"{terminal} exists: the terminal is provisioned already "
                             "(--force replaces its key and restarts its key counter)")
    same_key = _recorded(terminal).get("initial_key_id") == initial_key_id.hex().upper()
    _write_atomic(terminal, {"terminal_id": terminal_id,
                             "initial_key": initial_key.hex().upper(),
                             "initial_key_id": initial_key_id.hex().upper(),
                             "merchant_id": merchant_id,
                             "merchant_name": merchant_name})
    # A new initial key starts its transaction counter again. The trace number goes on:
    # the issuer knows a transaction by (terminal id, trace number), so starting it
    # again would make every new transaction look like a reused identity (94).
    # The same key given again keeps its counter too: starting it again would reuse
    # transaction keys.
    counters = state_dir / "counters.json"
    last = _recorded(counters)
    trace = last.get("trace", 0)
    counter = last.get("ksn_counter", 0) if same_key else 0
    _write_atomic(counters, {
        "ksn_counter": counter if isinstance(counter, int) and counter >= 0 else 0,
        "trace": trace if isinstance(trace, int) and 0 <= trace <= 999999 else 0})
    return terminal


def _recorded(path: Path) -> dict:
    """A record already on the board's flash, or {} when there is none readable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def provision_test_terminal(state_dir: Path, terminal_id: str = "T0000001", **kw) -> Path:
    return provision(state_dir, terminal_id, derive_initial_key(TEST_BDK, TEST_INITIAL_KEY_ID),
                     TEST_INITIAL_KEY_ID, **kw)
