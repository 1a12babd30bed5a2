"""A terminal for the issuer tests: the board's own request building and response
checking (firmware/financial.py, run under CPython with the tests/firmware cryptolib
stand-in), provisioned with the public X9.24-3 test key set the demo issuer holds."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[3]
for p in (ROOT / "firmware", ROOT / "tests" / "firmware"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import cbor as board_cbor  # noqa: E402  (firmware modules, after the path is set)
import financial  # noqa: E402

from posbridge import cbor_profile, issuer_keys  # noqa: E402

REF = json.loads((ROOT.parent / "shared" / "reference" / "aes-dukpt-x9.24-3.json").read_text())
BDK = bytes.fromhex(REF["bdk"])
INITIAL_KEY_ID = bytes.fromhex(REF["initial_key_id"])
INITIAL_KEY = bytes.fromhex(REF["initial_key"])

NOW = 1795305600               # 2026-11-22 00:00 UTC, the board's time in requests
TERMINAL_ID = "T0000001"
SecurityError = financial.SecurityError


class Terminal:
    def __init__(self, terminal_id=TERMINAL_ID, initial_key=INITIAL_KEY,
                 initial_key_id=INITIAL_KEY_ID):
        self.terminal_id = terminal_id
        self.keys = SimpleNamespace(initial_key=initial_key, initial_key_id=initial_key_id)
        self.counter = 0
        self.trace = 0

    def request(self, pan, pin="1234", expiry="3012", service_code="201", *, trace=None,
                now=NOW):
        """(body, pending) of a balance request with the next counter and trace."""
        self.counter += 1
        if trace is None:
            self.trace += 1
            trace = self.trace
        card = SimpleNamespace(pan=pan, expiry=expiry, service_code=service_code)
        return financial.build_balance_request(self.terminal_id, trace, now, card,
                                               bytearray(pin.encode()), self.keys,
                                               self.counter)

    def check(self, body, pending):
        """The response's fields once the board accepts it (SecurityError if not)."""
        return financial.check_response(body, pending, self.terminal_id)


def resign(fields, bdk=BDK):
    """The request body for `fields` (a decoded request), MAC'd again under its KSN:
    for requests the board would never build but whose MAC is right."""
    fields = {k: v for k, v in fields.items() if k != 7}
    key = issuer_keys.derive_working_key(bdk, fields[6], issuer_keys.KeyUsage.MAC_GENERATION)
    fields[7] = issuer_keys.aes_cmac(key, cbor_profile.encode(fields), 8)
    return cbor_profile.encode(fields)


def board_encode(obj):
    return board_cbor.encode(obj)
