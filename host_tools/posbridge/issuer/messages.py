"""The financial message bodies of docs/protocol.cddl, issuer side: read a request
(every field checked, the error naming the field) and write a response with its MAC.

    balance-request  (0x10) -> balance-response  (0x11)
    purchase-request (0x12) -> purchase-response (0x13), the balance-response's keys
    reversal-request (0x14) -> reversal-response (0x15)

MACs: 8 bytes of AES-CMAC over the deterministic CBOR of the same map without the MAC
key (7 in a request, 15 in a response); the request's under the DUKPT MAC generation
key of its KSN, the response's under the MAC verification key of the same KSN
(dukpt.verify_request_mac / response_mac).
"""
import re
from dataclasses import dataclass

from ..link import cbor_profile
from . import dukpt
from .errors import IssuerRequestError, IssuerSecurityError

MAC_SIZE = 8
REQUEST_MAC_KEY = 7
RESPONSE_MAC_KEY = 15
MAX_AMOUNT = 999_999_999_999      # ISO 8583 field 4 is n12
MERCHANT_ID_SIZE = 15             # ISO 8583 field 42, card acceptor identification
MERCHANT_NAME_SIZE = 22           # the name part of ISO 8583 field 43
_CARD_KEYS = {1, 2, 3}
_PAN = re.compile(r"[0-9]{12,19}")
_EXPIRY = re.compile(r"[0-9]{4}")
_SERVICE_CODE = re.compile(r"[0-9]{3}")

BALANCE_INQUIRY = "balance_inquiry"
PURCHASE = "purchase"
REVERSAL = "reversal"


@dataclass(frozen=True)
class _Request:
    terminal_id: str
    trace_number: int
    time: int
    ksn: bytes
    mac: bytes
    signed: bytes          # what the MAC covers: the CBOR of the map without key 7

    kind = ""              # the journal's kind; the error messages' name below
    name = ""

    @property
    def bdk_id(self) -> str:
        """The BDK id: the first 4 bytes of the initial key ID (X9.24-3: initial key
        ID = BDK ID (4 bytes) | derivation ID (4 bytes)), as 8 hex digits."""
        return self.ksn[:4].hex().upper()

    def __repr__(self):            # never the PAN or the PIN block, even in a traceback
        return (f"{type(self).__name__}(terminal_id={self.terminal_id!r}, "
                f"trace_number={self.trace_number}, ksn={self.ksn.hex()})")


@dataclass(frozen=True, repr=False)
class BalanceRequest(_Request):
    pan: str
    expiry: str
    service_code: str
    pin_block: bytes

    kind = BALANCE_INQUIRY
    name = "balance-request"


@dataclass(frozen=True, repr=False)
class PurchaseRequest(BalanceRequest):
    amount: int
    currency: int
    merchant_id: str
    merchant_name: str

    kind = PURCHASE
    name = "purchase-request"


@dataclass(frozen=True, repr=False)
class ReversalRequest(_Request):
    original_trace: int
    original_ksn: bytes
    amount: int
    currency: int
    reason: int

    kind = REVERSAL
    name = "reversal-request"


# key -> (name in errors, type, check); the CDDL rules of docs/protocol.cddl
_IDENTITY = {
    1: ("terminal id", str, lambda v: 1 <= len(v) <= 16),
    2: ("trace number", int, lambda v: 1 <= v <= 999999),
    3: ("time", int, lambda v: 0 <= v < 2 ** 63),
    6: ("KSN", bytes, lambda v: len(v) == dukpt.KSN_SIZE),
    7: ("MAC", bytes, lambda v: len(v) == MAC_SIZE),
}
_CARDHOLDER = {
    4: ("card", dict, None),
    5: ("PIN block", bytes, lambda v: len(v) == 16),
}
_AMOUNT = {
    8: ("amount", int, lambda v: 1 <= v <= MAX_AMOUNT),
    9: ("currency", int, lambda v: 1 <= v <= 999),
}
_MERCHANT = {
    10: ("merchant id", str, lambda v: 1 <= len(v) <= MERCHANT_ID_SIZE),
    11: ("merchant name", str, lambda v: 1 <= len(v) <= MERCHANT_NAME_SIZE),
}
_ORIGINAL = {
    12: ("original trace number", int, lambda v: 1 <= v <= 999999),
    13: ("original KSN", bytes, lambda v: len(v) == dukpt.KSN_SIZE),
    14: ("reason", int, lambda v: v in (1, 2, 3)),
}
_SPECS = {
    BalanceRequest: {**_IDENTITY, **_CARDHOLDER},
    PurchaseRequest: {**_IDENTITY, **_CARDHOLDER, **_AMOUNT, **_MERCHANT},
    ReversalRequest: {**_IDENTITY, **_AMOUNT, **_ORIGINAL},
}


def _field(message, fields, key, name, kind, check=None):
    if key not in fields:
        raise IssuerRequestError(f"{message}: field {key} ({name}) is missing")
    value = fields[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise IssuerRequestError(f"{message}: field {key} ({name}) is not "
                                 f"{'text' if kind is str else kind.__name__}")
    if check is not None and not check(value):
        raise IssuerRequestError(f"{message}: field {key} ({name}) is out of range")
    return value


def _parse(cls, body):
    """The request of class `cls` in `body`, or IssuerRequestError naming what is wrong
    (never quoting the PAN or the PIN block)."""
    message = cls.name
    try:
        fields = cbor_profile.decode(bytes(body))
    except cbor_profile.ProfileError as exc:
        raise IssuerRequestError(f"{message}: {exc}") from None
    if not isinstance(fields, dict):
        raise IssuerRequestError(f"{message}: not a map")
    spec = _SPECS[cls]
    extra = set(fields) - set(spec)
    if extra:
        raise IssuerRequestError(f"{message}: unknown field {sorted(extra, key=str)[0]!r}")
    values = {key: _field(message, fields, key, *rule) for key, rule in sorted(spec.items())}
    signed = cbor_profile.encode({k: v for k, v in fields.items() if k != REQUEST_MAC_KEY})
    common = dict(terminal_id=values[1], trace_number=values[2], time=values[3],
                  ksn=values[6], mac=values[7], signed=signed)
    if cls is ReversalRequest:
        return cls(**common, original_trace=values[12], original_ksn=values[13],
                   amount=values[8], currency=values[9], reason=values[14])
    card = values[4]
    if set(card) != _CARD_KEYS:
        raise IssuerRequestError(f"{message}: field 4 (card) needs keys 1, 2, 3 only")
    common.update(pan=_field(message, card, 1, "card PAN", str, _PAN.fullmatch),
                  expiry=_field(message, card, 2, "card expiry", str, _EXPIRY.fullmatch),
                  service_code=_field(message, card, 3, "card service code", str,
                                      _SERVICE_CODE.fullmatch),
                  pin_block=values[5])
    if cls is PurchaseRequest:
        return cls(**common, amount=values[8], currency=values[9], merchant_id=values[10],
                   merchant_name=values[11])
    return cls(**common)


def parse_balance_request(body: bytes) -> BalanceRequest:
    return _parse(BalanceRequest, body)


def parse_purchase_request(body: bytes) -> PurchaseRequest:
    return _parse(PurchaseRequest, body)


def parse_reversal_request(body: bytes) -> ReversalRequest:
    return _parse(ReversalRequest, body)


def check_request_mac(bdk: bytes, request: _Request) -> None:
    """IssuerSecurityError unless the request's MAC is right under its KSN."""
    try:
        dukpt.verify_request_mac(bdk, request.ksn, request.signed, request.mac)
    except (dukpt.DukptError, dukpt.MacError) as exc:
        raise IssuerSecurityError(f"{request.name} refused: {exc}") from None


def _macd(fields: dict, bdk: bytes, ksn: bytes) -> bytes:
    fields[RESPONSE_MAC_KEY] = dukpt.response_mac(bdk, ksn, cbor_profile.encode(fields),
                                                        MAC_SIZE)
    return cbor_profile.encode(fields)


def balance_response(request, bdk: bytes, code: str, notification: dict, *,
                     approval_code=None, available=None, ledger=None, currency=None,
                     tries_left=None) -> bytes:
    """The balance-response body for `request`, MAC'd under its KSN. A purchase-response
    has the same keys: it is written here too."""
    fields = {1: request.terminal_id, 2: request.trace_number, 3: code, 8: notification,
              9: request.ksn}
    optional = {4: approval_code, 5: available, 6: ledger, 7: currency, 10: tries_left}
    fields.update({k: v for k, v in optional.items() if v is not None})
    return _macd(fields, bdk, request.ksn)


purchase_response = balance_response


def reversal_response(request: ReversalRequest, bdk: bytes, code: str,
                      outcome=None) -> bytes:
    """The reversal-response body for `request`, MAC'd under its KSN; `outcome` (key 16)
    only with code 00."""
    fields = {1: request.terminal_id, 2: request.trace_number, 3: code, 9: request.ksn,
              12: request.original_trace}
    if outcome is not None:
        fields[16] = outcome
    return _macd(fields, bdk, request.ksn)
