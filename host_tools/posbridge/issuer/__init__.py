"""The issuer simulator: SQLite ledger, PIN verification, response codes, notification
status, failure injection (docs/issuer.md).

The bridge needs:

    from posbridge.issuer import Issuer, IssuerRequestError, IssuerSecurityError, \\
        IssuerUnavailable, IssuerError
    issuer = Issuer.open(db_path)          # policy and faults from the environment
    body = issuer.handle_balance_request(request_body)   # or raises an IssuerError
    body = issuer.handle_purchase_request(request_body)  # the same, for 0x12 -> 0x13
    body = issuer.handle_reversal_request(request_body)  # and 0x14 -> 0x15
"""
from .errors import (IssuerError, IssuerInternalError, IssuerRequestError,
                     IssuerSecurityError, IssuerUnavailable, LedgerError)
from .faults import Faults
from .ledger import Ledger
from .policy import Policy
from .service import Issuer

__all__ = ["Issuer", "Ledger", "Policy", "Faults", "IssuerError", "IssuerRequestError",
           "IssuerSecurityError", "IssuerUnavailable", "IssuerInternalError", "LedgerError"]
