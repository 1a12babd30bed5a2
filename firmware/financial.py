"""Financial requests and responses: the request's PIN block and MAC under DUKPT keys,
and the checks a response must pass before anything of it is shown.

MAC = AES-CMAC (NIST SP 800-38B) truncated to 8 bytes, over the deterministic CBOR of
the message's map without its MAC key (docs/protocol.cddl). Request: MAC generation key
(usage 2000); response: MAC verification key (usage 2001) of the same KSN."""
import gc
import sys

import cbor
import messages as m
try:
    from micropython import const
except ImportError:  # CPython, in tests
    def const(x):
        return x

# body keys (docs/protocol.cddl); const() so they cost no RAM on the board
_K_REQ_TERMINAL = const(1)
_K_REQ_TRACE = const(2)
_K_REQ_TIME = const(3)
_K_REQ_CARD = const(4)
_K_REQ_PIN_BLOCK = const(5)
_K_REQ_KSN = const(6)
_K_REQ_MAC = const(7)
_K_CARD_PAN = const(1)
_K_CARD_EXPIRY = const(2)
_K_CARD_SERVICE_CODE = const(3)
_K_RSP_TERMINAL = const(1)
_K_RSP_TRACE = const(2)
_K_RSP_CODE = const(3)
_K_RSP_KSN = const(9)
_K_RSP_MAC = const(15)


class SecurityError(Exception):
    """A response that fails its MAC or does not answer our request: never shown as an
    answer."""


class Pending:
    """What the board remembers of a request in flight: enough to check the answer."""

    def __init__(self, mtype, trace, ksn, mac_key):
        self.mtype = mtype
        self.trace = trace
        self.ksn = ksn
        self.mac_key = mac_key  # MAC verification key of this KSN; wiped after use

    def wipe(self):
        _wipe(self.mac_key)


def build_balance_request(terminal_id, trace, now, card, pin, keys, counter):
    """(body bytes, Pending). `pin` (bytearray of digits) is wiped by the PIN block code.
    `keys` holds initial_key and initial_key_id; `counter` is a DUKPT transaction counter
    already saved to flash, so a reset can never reuse it."""
    # The DUKPT, PIN block and CMAC code load here one after the other, each dropped
    # before the next where it can be: a 64 KiB heap holds one at a time.
    import dukpt
    ksn = dukpt.make_ksn(keys.initial_key_id, counter)
    pin_key, mac_gen, mac_ver = dukpt.working_keys(
        keys.initial_key, keys.initial_key_id, counter,
        (dukpt.KEY_USAGE_PIN_ENCRYPTION, dukpt.KEY_USAGE_MAC_GENERATION,
         dukpt.KEY_USAGE_MAC_VERIFICATION))
    dukpt = _drop("dukpt")
    try:
        import pinblock
        block = pinblock.make_block(pin_key, pin, card.pan)
        pinblock = _drop("pinblock")
        fields = {
            _K_REQ_TERMINAL: terminal_id,
            _K_REQ_TRACE: trace,
            _K_REQ_TIME: now,
            _K_REQ_CARD: {_K_CARD_PAN: card.pan, _K_CARD_EXPIRY: card.expiry,
                           _K_CARD_SERVICE_CODE: card.service_code},
            _K_REQ_PIN_BLOCK: block,
            _K_REQ_KSN: ksn,
        }
        import cmac
        fields[_K_REQ_MAC] = cmac.aes_cmac(mac_gen, cbor.encode(fields), m.MAC_LEN)
        body = cbor.encode(fields)
    finally:
        _wipe(pin_key)
        _wipe(mac_gen)
    return body, Pending(m.BALANCE_REQUEST, trace, ksn, mac_ver)


def _drop(name):
    sys.modules.pop(name, None)
    gc.collect()


def _wipe(key):
    for i in range(len(key)):
        key[i] = 0


def check_response(body, pending, terminal_id):
    """The response's fields once its MAC and identity check out; SecurityError if not.
    `pending` is anything with the request's trace, ksn and mac_key (a Pending)."""
    try:
        fields = cbor.decode(body)
        if not isinstance(fields, dict):
            raise SecurityError("not a map")
        mac = fields.pop(_K_RSP_MAC)
        import cmac
        ok = (isinstance(mac, bytes) and
              cmac.verify(pending.mac_key, cbor.encode(fields), mac))
    except (cbor.CBORError, KeyError, TypeError, AttributeError):
        raise SecurityError("unreadable")
    if not ok:
        raise SecurityError("MAC")
    if (fields.get(_K_RSP_TRACE) != pending.trace or
            fields.get(_K_RSP_KSN) != pending.ksn or
            fields.get(_K_RSP_TERMINAL) != terminal_id):
        raise SecurityError("not ours")
    code = fields.get(_K_RSP_CODE)
    if not isinstance(code, str) or len(code) != 2:
        raise SecurityError("no code")
    return fields
