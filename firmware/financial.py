"""Financial requests: a balance or purchase request with its PIN block and MAC under
DUKPT keys (terminal_keys.take gives them), a reversal with its MAC. answer.py checks
what comes back.

MAC = AES-CMAC (NIST SP 800-38B) truncated to 8 bytes, over the deterministic CBOR of
the message's map without its MAC key (docs/protocol.cddl). Request: MAC generation key
(usage 2000); response: MAC verification key (usage 2001) of the same KSN, which the
request's Pending keeps, with the SHA-256 of the request's bytes that the response must
name."""
import gc
import hashlib
import sys

import cbor
import messages as m
from wipe import wipe as _wipe
from micropython import const

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


class Pending:
    """What the board remembers of a request in flight: enough to check the answer."""

    def __init__(self, mtype, trace, ksn, mac_key, body):
        self.mtype = mtype
        self.trace = trace
        self.ksn = ksn
        self.mac_key = mac_key  # MAC verification key of this KSN; whoever keeps it wipes it
        # the answer names these very bytes: one to an altered copy of them is no answer
        self.digest = hashlib.sha256(body).digest()


def build_request(terminal_id, now, card, pin, keys, purchase=None):
    """(body bytes, Pending) of a balance request, or of a purchase request when
    `purchase` holds its fields {8: amount, 9: currency, 10: merchant id, 11: merchant
    name}. `pin` (bytearray of digits) is wiped by the PIN block code; None for a
    contactless card at or below the CVM limit (no PIN block). A card with ICC data
    (card.icc, bytes) adds the contactless entry mode and the ICC data. `keys` is the
    transaction's identity and keys (trace, KSN, [PIN key, MAC generation, MAC
    verification]) from terminal_keys.take, already saved as used on flash, so a reset
    can never reuse them."""
    # The PIN block and CMAC code load here one after the other, the first dropped
    # before the next: a 64 KiB heap holds one at a time.
    trace, ksn, (pin_key, mac_gen, mac_ver) = keys[0], keys[1], keys[2]
    try:
        fields = purchase or {}
        if pin is not None:
            import pinblock
            fields[_K_REQ_PIN_BLOCK] = pinblock.make_block(pin_key, pin, card.pan)
            pinblock = _drop("pinblock")
        icc = getattr(card, "icc", None)
        if icc is not None:
            # a contactless chip card: its ICC data, which the issuer checks the ARQC of
            fields[m.K_ENTRY_MODE] = 7   # contactless chip (ISO 8583 field 22)
            fields[m.K_ICC] = icc
        fields[_K_REQ_TERMINAL] = terminal_id
        fields[_K_REQ_TRACE] = trace
        fields[_K_REQ_TIME] = now
        fields[_K_REQ_CARD] = {_K_CARD_PAN: card.pan, _K_CARD_EXPIRY: card.expiry,
                               _K_CARD_SERVICE_CODE: card.service_code}
        fields[_K_REQ_KSN] = ksn
        body = _signed(fields, mac_gen)
    finally:
        _wipe(pin_key)
        _wipe(mac_gen)
    return body, Pending(m.PURCHASE_REQUEST if purchase else m.BALANCE_REQUEST, trace,
                         ksn, mac_ver, body)


def build_reversal_request(terminal_id, now, keys, original):
    """(body bytes, Pending) of a reversal: `original` holds the purchase's fields {8:
    amount, 9: currency, 12: trace, 13: KSN, 14: reason}; `keys` (trace, KSN, [MAC
    generation, MAC verification]) are the reversal's own, from terminal_keys.take. No
    card, no PIN block. The journal keeps the bytes, so every try sends the same."""
    trace, ksn, (mac_gen, mac_ver) = keys[0], keys[1], keys[2]
    original[_K_REQ_TERMINAL] = terminal_id
    original[_K_REQ_TRACE] = trace
    original[_K_REQ_TIME] = now
    original[_K_REQ_KSN] = ksn
    try:
        body = _signed(original, mac_gen)
    finally:
        _wipe(mac_gen)
    return body, Pending(m.REVERSAL_REQUEST, trace, ksn, mac_ver, body)


def _signed(fields, mac_gen):
    """The request's bytes with its MAC (key 7) over the deterministic CBOR of the rest."""
    import cmac
    fields[_K_REQ_MAC] = cmac.aes_cmac(mac_gen, cbor.encode(fields), m.MAC_LEN)
    return cbor.encode(fields)


def _drop(name):
    sys.modules.pop(name, None)
    gc.collect()
