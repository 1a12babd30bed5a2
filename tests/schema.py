"""Validation of message bodies against docs/protocol.cddl (pycddl)."""
from functools import lru_cache
from pathlib import Path

import pycddl

from posbridge.link import protocol as p

CDDL = Path(__file__).resolve().parents[1] / "docs" / "protocol.cddl"

RULES = {
    p.HELLO: "hello",
    p.HELLO_REPLY: "hello-reply",
    p.STATUS_REQUEST: "status-request",
    p.STATUS: "status",
    p.ERROR: "error",
    p.BALANCE_REQUEST: "balance-request",
    p.BALANCE_RESPONSE: "balance-response",
    p.PURCHASE_REQUEST: "purchase-request",
    p.PURCHASE_RESPONSE: "purchase-response",
    p.REVERSAL_REQUEST: "reversal-request",
    p.REVERSAL_RESPONSE: "reversal-response",
}


@lru_cache(maxsize=None)
def schema_for(rule: str) -> pycddl.Schema:
    # pycddl validates against the first rule: put the wanted one first
    return pycddl.Schema(f"root = {rule}\n" + CDDL.read_text())


def validate(mtype: int, body: bytes) -> None:
    """Raise if the body does not match its message type's rule."""
    if mtype not in RULES:
        raise AssertionError(f"message type {mtype:#04x} has no rule in protocol.cddl")
    schema_for(RULES[mtype]).validate_cbor(bytes(body))
