"""The balance-request and balance-response bodies of docs/protocol.cddl, issuer side:
read a request (every field checked, the error naming the field), and write a response
with its MAC.

MACs: 8 bytes of AES-CMAC over the deterministic CBOR of the same map without the MAC
key (7 in a request, 15 in a response); the request's under the DUKPT MAC generation
key of its KSN, the response's under the MAC verification key of the same KSN
(issuer_keys.verify_request_mac / response_mac).
"""
import re
from dataclasses import dataclass

from .. import cbor_profile, issuer_keys
from .errors import IssuerRequestError, IssuerSecurityError

MAC_SIZE = 8
REQUEST_MAC_KEY = 7
RESPONSE_MAC_KEY = 15
_REQUEST_KEYS = {1, 2, 3, 4, 5, 6, 7}
_CARD_KEYS = {1, 2, 3}
_PAN = re.compile(r"[0-9]{12,19}")
_EXPIRY = re.compile(r"[0-9]{4}")
_SERVICE_CODE = re.compile(r"[0-9]{3}")


@dataclass(frozen=True)
class BalanceRequest:
    terminal_id: str
    trace_number: int
    time: int
    pan: str
    expiry: str
    service_code: str
    pin_block: bytes
    ksn: bytes
    mac: bytes
    signed: bytes          # what the MAC covers: the CBOR of the map without key 7

    @property
    def bdk_id(self) -> str:
        """The BDK id: the first 4 bytes of the initial key ID (X9.24-3: initial key
        ID = BDK ID (4 bytes) | derivation ID (4 bytes)), as 8 hex digits."""
        return self.ksn[:4].hex().upper()

    def __repr__(self):            # never the PAN or the PIN block, even in a traceback
        return (f"BalanceRequest(terminal_id={self.terminal_id!r}, "
                f"trace_number={self.trace_number}, ksn={self.ksn.hex()})")


def _field(fields, key, name, kind, check=None):
    if key not in fields:
        raise IssuerRequestError(f"balance-request: field {key} ({name}) is missing")
    value = fields[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise IssuerRequestError(f"balance-request: field {key} ({name}) is not "
                                 f"{'text' if kind is str else kind.__name__}")
    if check is not None and not check(value):
        raise IssuerRequestError(f"balance-request: field {key} ({name}) is out of range")
    return value


def parse_balance_request(body: bytes) -> BalanceRequest:
    """The request in `body`, or IssuerRequestError naming what is wrong (never quoting
    the PAN or the PIN block)."""
    try:
        fields = cbor_profile.decode(bytes(body))
    except cbor_profile.ProfileError as exc:
        raise IssuerRequestError(f"balance-request: {exc}") from None
    if not isinstance(fields, dict):
        raise IssuerRequestError("balance-request: not a map")
    extra = set(fields) - _REQUEST_KEYS
    if extra:
        raise IssuerRequestError(f"balance-request: unknown field {sorted(extra, key=str)[0]!r}")
    terminal_id = _field(fields, 1, "terminal id", str, lambda v: 1 <= len(v) <= 16)
    trace = _field(fields, 2, "trace number", int, lambda v: 1 <= v <= 999999)
    when = _field(fields, 3, "time", int, lambda v: 0 <= v < 2 ** 63)
    card = _field(fields, 4, "card", dict)
    if set(card) != _CARD_KEYS:
        raise IssuerRequestError("balance-request: field 4 (card) needs keys 1, 2, 3 only")
    pan = _field(card, 1, "card PAN", str, _PAN.fullmatch)
    expiry = _field(card, 2, "card expiry", str, _EXPIRY.fullmatch)
    service_code = _field(card, 3, "card service code", str, _SERVICE_CODE.fullmatch)
    pin_block = _field(fields, 5, "PIN block", bytes, lambda v: len(v) == 16)
    ksn = _field(fields, 6, "KSN", bytes, lambda v: len(v) == issuer_keys.KSN_SIZE)
    mac = _field(fields, 7, "MAC", bytes, lambda v: len(v) == MAC_SIZE)
    signed = cbor_profile.encode({k: v for k, v in fields.items() if k != REQUEST_MAC_KEY})
    return BalanceRequest(terminal_id, trace, when, pan, expiry, service_code, pin_block,
                          ksn, mac, signed)


def check_request_mac(bdk: bytes, request: BalanceRequest) -> None:
    """IssuerSecurityError unless the request's MAC is right under its KSN."""
    try:
        issuer_keys.verify_request_mac(bdk, request.ksn, request.signed, request.mac)
    except issuer_keys.DukptError as exc:
        raise IssuerSecurityError(f"balance-request refused: {exc}") from None
    except issuer_keys.MacError as exc:
        raise IssuerSecurityError(f"balance-request refused: {exc}") from None


def balance_response(request: BalanceRequest, bdk: bytes, code: str, notification: dict, *,
                     approval_code=None, available=None, ledger=None, currency=None,
                     tries_left=None) -> bytes:
    """The balance-response body for `request`, MAC'd under its KSN."""
    fields = {1: request.terminal_id, 2: request.trace_number, 3: code, 8: notification,
              9: request.ksn}
    optional = {4: approval_code, 5: available, 6: ledger, 7: currency, 10: tries_left}
    fields.update({k: v for k, v in optional.items() if v is not None})
    fields[RESPONSE_MAC_KEY] = issuer_keys.response_mac(bdk, request.ksn,
                                                        cbor_profile.encode(fields), MAC_SIZE)
    return cbor_profile.encode(fields)
