"""The issuer simulator: SQLite ledger, PIN verification, response codes, notification
status, failure injection (docs/issuer.md).

The bridge needs:

    from posbridge.issuer import Issuer, IssuerRequestError, IssuerSecurityError, \\
        IssuerUnavailable, IssuerError
    issuer = Issuer.open(db_path)          # policy and faults from the environment
    body = issuer.handle_balance_request(request_body)   # or raises an IssuerError
"""
from .errors import (IssuerError, IssuerInternalError, IssuerRequestError,
                     IssuerSecurityError, IssuerUnavailable, LedgerError)
from .faults import Faults
from .ledger import Ledger
from .policy import Policy
from .service import Issuer

__all__ = ["Issuer", "Ledger", "Policy", "Faults", "IssuerError", "IssuerRequestError",
           "IssuerSecurityError", "IssuerUnavailable", "IssuerInternalError", "LedgerError"]
