"""The issuer's answer to a financial request: the checks it must pass before anything
of it is shown (docs/protocol.md, "MACs"). Loaded with cmac for the answer only, apart
from the request building code (financial.py), so that the answer's phase holds less.

The response's MAC (key 15) is AES-CMAC, 8 bytes, under the DUKPT MAC verification key
(usage 2001) of the request's own KSN, over the deterministic CBOR of the map without
key 15. Under it, key 17 is the SHA-256 of the request bytes it answers: the issuer also
answers a copy altered on the way (a MAC'd refusal), and that answer must never pass for
the answer to what this board sent."""
import cbor
from micropython import const

_K_RSP_TERMINAL = const(1)
_K_RSP_TRACE = const(2)
_K_RSP_CODE = const(3)
_K_RSP_KSN = const(9)
_K_RSP_MAC = const(15)
_K_RSP_REQUEST = const(17)


class SecurityError(Exception):
    """A response that fails its MAC or does not answer our request: never shown as an
    answer."""


class NotOurs(SecurityError):
    """An answer that names another request (an earlier one, answered late): not an
    answer to this one, and no reason to give up waiting for it."""


def check_response(body, pending, terminal_id):
    """The response's fields once its MAC and identity check out; NotOurs for an answer
    that names another request, SecurityError for one that fails its checks.
    `pending` is anything with the request's trace, ksn, mac_key and digest (a
    Pending's)."""
    # the largest pieces of the check first, while the heap still has room for them in
    # one piece: the CMAC code and the key's AES context (320 bytes on the unix port);
    # made after the decode, a fragmented heap failed them (docs/firmware-memory.md)
    import cmac
    cipher = cmac.cipher(pending.mac_key)
    try:
        fields = cbor.decode(body)
        if not isinstance(fields, dict):
            raise SecurityError("not a map")
        # identity first: the MAC of another request's answer is under another key
        if (fields.get(_K_RSP_TRACE) != pending.trace or
                fields.get(_K_RSP_KSN) != pending.ksn or
                fields.get(_K_RSP_TERMINAL) != terminal_id):
            raise NotOurs()
        mac = fields.pop(_K_RSP_MAC)
        ok = (isinstance(mac, bytes) and
              cmac.verify(cipher, cbor.encode(fields), mac))
    except (cbor.CBORError, KeyError, TypeError, AttributeError):
        raise SecurityError("unreadable")
    if not ok:
        raise SecurityError("MAC")
    if fields.get(_K_RSP_REQUEST) != pending.digest:
        raise SecurityError("another request")
    code = fields.get(_K_RSP_CODE)
    if not isinstance(code, str) or len(code) != 2:
        raise SecurityError("no code")
    return fields
