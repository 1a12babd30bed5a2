"""The financial messages, issuer side: read a request and write a response with its
MAC, both by field name through the schema of link/protocol.py; ROUTES says which
response answers which request and which class reads it.

    balance-request  (0x10) -> balance-response  (0x11)
    purchase-request (0x12) -> purchase-response (0x13), the balance-response's keys
    reversal-request (0x14) -> reversal-response (0x15)

MACs: 8 bytes of AES-CMAC over the deterministic CBOR of the same map without the MAC
field; the request's under the DUKPT MAC generation key of its KSN, the response's under
the MAC verification key of the same KSN. The key store does both (`keys`,
keystore.KeyStore): no key is ever in hand here.
Every response carries the SHA-256 of the request bytes it answers under its MAC, so
that an answer to an altered copy of a request is never taken for the request's own.
"""
import hashlib
from dataclasses import dataclass

from ..link import protocol
from . import dukpt
from .errors import IssuerRequestError, IssuerSecurityError
from .keystore import UnknownKeySet

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
    signed: bytes          # what the MAC covers: the CBOR of the map without it
    digest: bytes          # SHA-256 of the request's bytes: every response names it

    kind = ""              # the journal's kind
    optional = ()          # its fields that may be absent: None then
    name = ""              # the request's rule in the schema, and its name in errors
    response = ""          # the rule of its answer

    @classmethod
    def parse(cls, body: bytes) -> "_Request":
        """The request in `body`, or IssuerRequestError naming the field that is wrong
        (never quoting the PAN or the PIN block)."""
        try:
            fields = protocol.decode(cls.name, body)
            values = protocol.parse(cls.name, fields)
        except protocol.SchemaError as exc:
            raise IssuerRequestError(str(exc)) from None
        values.update(values.pop("card", {}))
        values["trace_number"] = values.pop("trace")
        for name in cls.optional:
            values.setdefault(name, None)
        return cls(signed=protocol.mac_input(cls.name, fields),
                   digest=hashlib.sha256(bytes(body)).digest(), **values)

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
    pin_block: "bytes | None"        # absent: a contactless request below the CVM limit
    entry_mode: "int | None"         # ISO 8583 field 22 positions 1-2; None: magnetic stripe
    icc: "bytes | None"              # ICC data (cryptogram.py); never logged nor stored

    kind = BALANCE_INQUIRY
    optional = ("pin_block", "entry_mode", "icc")
    name = "balance-request"
    response = "balance-response"


@dataclass(frozen=True, repr=False)
class PurchaseRequest(BalanceRequest):
    amount: int
    currency: int
    merchant_id: str
    merchant_name: str

    kind = PURCHASE
    name = "purchase-request"
    response = "purchase-response"


@dataclass(frozen=True, repr=False)
class ReversalRequest(_Request):
    original_trace: int
    original_ksn: bytes
    amount: int
    currency: int
    reason: int

    kind = REVERSAL
    name = "reversal-request"
    response = "reversal-response"


# request type -> (response type, parser): the one route each financial message takes
ROUTES = {
    protocol.BALANCE_REQUEST: (protocol.BALANCE_RESPONSE, BalanceRequest.parse),
    protocol.PURCHASE_REQUEST: (protocol.PURCHASE_RESPONSE, PurchaseRequest.parse),
    protocol.REVERSAL_REQUEST: (protocol.REVERSAL_RESPONSE, ReversalRequest.parse),
}


def request_mac_ok(keys, request: _Request) -> bool:
    """Whether the request's MAC is right under its KSN (the key store `keys` checks it);
    IssuerSecurityError if the KSN has no keys (a counter the standard forbids, a key set
    not in the store), so that no answer can be MAC'd."""
    try:
        keys.verify_request_mac(request.ksn, request.signed, request.mac)
    except dukpt.MacError:
        return False
    except (dukpt.DukptError, UnknownKeySet) as exc:
        raise IssuerSecurityError(f"{request.name} refused: {exc}") from None
    return True


def _macd(rule: str, fields: dict, keys, ksn: bytes) -> bytes:
    mac = keys.response_mac(ksn, protocol.mac_input(rule, fields), protocol.MAC_LEN)
    return protocol.with_mac(rule, fields, mac)


def balance_response(request, keys, code: str, notification: dict, *,
                     approval_code=None, available=None, ledger=None, currency=None,
                     tries_left=None, arpc=None) -> bytes:
    """The answer to a balance-request or a purchase-request (the same fields), MAC'd
    under its KSN; `arpc` with a chip card's verified cryptogram."""
    fields = protocol.build(
        request.response, terminal_id=request.terminal_id, trace=request.trace_number,
        response_code=code, notification=notification, ksn=request.ksn,
        approval_code=approval_code, available=available, ledger=ledger,
        currency=currency, pin_tries_left=tries_left, request_digest=request.digest,
        arpc=arpc)
    return _macd(request.response, fields, keys, request.ksn)


def reversal_response(request: ReversalRequest, keys, code: str,
                      outcome=None, notification=None) -> bytes:
    """The reversal-response body for `request`, MAC'd under its KSN; `outcome` and
    `notification` only with code 00."""
    fields = protocol.build(
        request.response, terminal_id=request.terminal_id, trace=request.trace_number,
        response_code=code, ksn=request.ksn, original_trace=request.original_trace,
        outcome=outcome, notification=notification, request_digest=request.digest)
    return _macd(request.response, fields, keys, request.ksn)
