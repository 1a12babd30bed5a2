"""The issuer simulator: SQLite ledger, PIN verification, response codes, notification
status, failure injection (docs/issuer.md).

The bridge needs:

    from posbridge.issuer import Issuer, IssuerRequestError, IssuerSecurityError, \\
        IssuerUnavailable, IssuerError
    from posbridge.issuer.messages import ROUTES
    issuer = Issuer.open(db_path)          # policy and faults from the environment
    body = issuer.handle(mtype, request_body)    # or raises an IssuerError
    response_type, _ = ROUTES[mtype]       # 0x10 -> 0x11, 0x12 -> 0x13, 0x14 -> 0x15
"""
from .errors import (IssuerError, IssuerInternalError, IssuerRequestError,
                     IssuerSecurityError, IssuerUnavailable, LedgerError)
from .faults import Faults
from .ledger import Ledger
from .policy import Policy
from .service import Issuer

__all__ = ["Issuer", "Ledger", "Policy", "Faults", "IssuerError", "IssuerRequestError",
           "IssuerSecurityError", "IssuerUnavailable", "IssuerInternalError", "LedgerError"]
