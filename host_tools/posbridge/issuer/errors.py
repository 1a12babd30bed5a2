"""What the issuer raises instead of answering, and what the bridge does with each.

A response is only ever sent MAC'd under the key of the request. When the
issuer cannot produce one, it raises one of these and the bridge answers the board
with an ERROR message (docs/protocol.md), which the board never takes for an answer:

| exception            | cause                                         | bridge sends the board  |
|----------------------|-----------------------------------------------|-------------------------|
| IssuerRequestError   | body not profile CBOR, a field missing/wrong  | ERROR 2 (malformed)     |
| IssuerSecurityError  | unknown BDK id, bad KSN (no key to MAC with)  | ERROR 6 (refused)       |
| IssuerUnavailable    | the issuer is down (or the fault is injected) | ERROR 5 (issuer unavailable) |
| IssuerInternalError  | the issuer's own store failed before a key    | ERROR 4 (internal)      |

Every refusal decided once the request's key is known is a MAC'd response instead: a
wrong request MAC "63", a request out of its time window "68", any other failure "96".
"""


class IssuerError(Exception):
    """Base of everything the issuer raises instead of answering."""


class IssuerRequestError(IssuerError):
    """The request body is not a request of its type: the message names the field."""


class IssuerSecurityError(IssuerError):
    """No key to answer under (unknown key set, a KSN the standard forbids): no answer
    is given."""


class IssuerUnavailable(IssuerError):
    """The issuer does not answer at all."""


class IssuerInternalError(IssuerError):
    """The issuer failed before it could MAC an answer (its database, typically)."""


class LedgerError(Exception):
    """The ledger cannot do what was asked (missing database, unknown card, bad value):
    the message is for a person and never holds a full PAN or a PIN."""


class TransactionConflict(LedgerError):
    """The database ended a transaction because a concurrent one touched the same rows
    (PostgreSQL's serialisation failure or deadlock): nothing of it was written, and the
    whole transaction may run again (Ledger.atomically does)."""
