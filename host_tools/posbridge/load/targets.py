"""Where a simulated terminal's requests go. A target answers send(mtype, body) with
the response body, or raises TargetError with the kind of failure, as the board sees
it (no answer, an ERROR in its place, a refused connection):

    InProcessTarget(issuer)      the issuer in this process (Issuer.handle), the way the
                                 bridge holds it by default
"""
from ..issuer import IssuerError


class TargetError(Exception):
    """No answer: `kind` names why, for the summary's errors by kind."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class InProcessTarget:
    name = "in-process issuer"

    def __init__(self, issuer):
        self.issuer = issuer

    def send(self, mtype: int, body: bytes) -> bytes:
        try:
            return self.issuer.handle(mtype, body)
        except IssuerError as exc:
            # what the bridge would send the board instead: an ERROR, no answer
            raise TargetError(f"issuer: {type(exc).__name__}") from None

    def close(self):
        self.issuer.close()
