"""The terminal registry: which terminal holds which DUKPT initial key, for which
merchant, and per initial key ID the highest KSN counter used. This module alone writes
its tables (`terminals`, `terminal_keys`); docs/issuer.md, "Terminals", has the rules.

    register(ledger, terminal_id, initial_key_id, merchant_id, merchant_name, force=False)
        posbridge provision, the demo data, posbridge issuer terminal add
    admit(ledger, request) -> Terminal
        a MAC-verified request's identity, checked inside the request's transaction:
        IssuerSecurityError (and a warning in the log) when it is refused

A request is admitted when its terminal is registered, its KSN's initial key ID is that
terminal's active key, a reversal's original KSN is one of that terminal's keys, and
its KSN counter is above the highest its key has used; the counter is then the highest.
A counter at or below it is admitted only once and only for a request the board made
ahead of time: a reversal built before later transactions (the board builds each try
afresh under its next counter, which needs no exception; a terminal that built a
reversal once and sent it again after later transactions does) or the purchase a
journaled reversal names (it came after its reversal, and is answered 94). The caller
answers a byte-identical retransmission from the journal before it calls admit.

The merchant a purchase is journaled and alerted under is the registry's: the request's
merchant fields are not used (a difference is logged).
"""
import logging
import re
import time
from dataclasses import dataclass

from . import dukpt
from .errors import IssuerSecurityError, LedgerError
from .messages import PURCHASE, REVERSAL

log = logging.getLogger("posbridge.issuer")

TERMINAL_ID_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
MERCHANT_ID_RE = re.compile(r"^[ -~]{1,15}$")        # ISO 8583 field 42
MERCHANT_NAME_RE = re.compile(r"^[ -~]{1,22}$")      # the name part of field 43


@dataclass(frozen=True)
class Terminal:
    terminal_id: str
    merchant_id: str
    merchant_name: str
    initial_key_id: "str | None"     # hex, the active key (None once retired, not re-keyed)
    utc_offset_min: "int | None" = None   # the merchant's local time, as provisioned


@dataclass(frozen=True)
class _Key:
    initial_key_id: str
    terminal_id: str
    active: bool
    last_counter: int


def find(ledger, terminal_id: str) -> "Terminal | None":
    row = ledger.execute(
        "SELECT t.terminal_id, t.merchant_id, t.merchant_name, k.initial_key_id, "
        "t.utc_offset_min "
        "FROM terminals t LEFT JOIN terminal_keys k "
        "ON k.terminal_id = t.terminal_id AND k.active = 1 WHERE t.terminal_id = ?",
        (terminal_id,)).fetchone()
    return Terminal(*row) if row else None


def terminals(ledger) -> "list[dict]":
    """Every terminal with its keys, for a person: active key, last counter, retired."""
    out = []
    for t in ledger.execute("SELECT terminal_id, merchant_id, merchant_name, utc_offset_min, "
                            "registered_at, rekeyed_at FROM terminals ORDER BY terminal_id"):
        keys = [dict(k) for k in ledger.execute(
            "SELECT initial_key_id, active, last_counter, issued_at, retired_at "
            "FROM terminal_keys WHERE terminal_id = ? ORDER BY issued_at, initial_key_id",
            (t["terminal_id"],))]
        out.append({**dict(t), "keys": keys})
    return out


def _key(ledger, initial_key_id: str) -> "_Key | None":
    row = ledger.execute("SELECT initial_key_id, terminal_id, active, last_counter "
                         "FROM terminal_keys WHERE initial_key_id = ?",
                         (initial_key_id,)).fetchone()
    return _Key(row[0], row[1], bool(row[2]), row[3]) if row else None


def check_values(terminal_id: str, merchant_id: str, merchant_name: str):
    if not TERMINAL_ID_RE.match(terminal_id or ""):
        raise LedgerError("terminal id: 1 to 16 letters or digits")
    if not MERCHANT_ID_RE.match(merchant_id or ""):
        raise LedgerError("merchant id: 1 to 15 printable ASCII characters")
    if not MERCHANT_NAME_RE.match(merchant_name or ""):
        raise LedgerError("merchant name: 1 to 22 printable ASCII characters")


def register(ledger, terminal_id: str, initial_key_id: bytes, merchant_id: str,
             merchant_name: str, *, utc_offset_min=None, force: bool = False,
             now=None) -> Terminal:
    """Register `terminal_id` with its initial key ID (BDK ID | derivation ID), merchant
    and (if provisioning gave one) the merchant's UTC offset in minutes. An initial key ID issued before (to any terminal) is refused; a terminal
    registered already is refused unless `force`, which re-keys it: its key is retired
    and the new one (a new derivation ID) takes its place."""
    check_values(terminal_id, merchant_id, merchant_name)
    if utc_offset_min is not None and not (isinstance(utc_offset_min, int)
                                           and -840 <= utc_offset_min <= 840):
        raise LedgerError("UTC offset: -840 to 840 minutes")
    if len(initial_key_id) != dukpt.INITIAL_KEY_ID_SIZE:
        raise LedgerError("initial key ID: 8 bytes (16 hex digits) expected")
    key_hex = bytes(initial_key_id).hex().upper()
    now = int(time.time() if now is None else now)
    with ledger.transaction():
        issued = _key(ledger, key_hex)
        if issued is not None:
            raise LedgerError(f"initial key ID {key_hex} was issued already (terminal "
                              f"{issued.terminal_id}): a derivation ID is issued once")
        if find(ledger, terminal_id) is not None:
            if not force:
                raise LedgerError(f"terminal {terminal_id} is registered already: --force "
                                  "re-keys it with a new derivation ID")
            ledger.execute("UPDATE terminal_keys SET active = 0, retired_at = ? "
                           "WHERE terminal_id = ? AND active = 1", (now, terminal_id))
            ledger.execute("UPDATE terminals SET merchant_id = ?, merchant_name = ?, "
                           "utc_offset_min = ?, rekeyed_at = ? WHERE terminal_id = ?",
                           (merchant_id, merchant_name, utc_offset_min, now, terminal_id))
        else:
            ledger.execute("INSERT INTO terminals (terminal_id, merchant_id, merchant_name, "
                           "utc_offset_min, registered_at) VALUES (?, ?, ?, ?, ?)",
                           (terminal_id, merchant_id, merchant_name, utc_offset_min, now))
        # a key registered for a terminal that already used it (a database from before
        # the registry) starts above the counters its journal holds
        used = ledger.execute("SELECT max(ksn) FROM transactions WHERE substr(ksn, 1, 16) = ?",
                              (key_hex,)).fetchone()[0]
        last = int(used[16:], 16) if used else 0
        ledger.execute("INSERT INTO terminal_keys (initial_key_id, terminal_id, active, "
                       "last_counter, issued_at) VALUES (?, ?, 1, ?, ?)",
                       (key_hex, terminal_id, last, now))
    return find(ledger, terminal_id)


def _refuse(request, why):
    # the KSN and the ids are no secret (the journal holds them); never a key
    log.warning("%s %s/%d refused: %s", request.name, request.terminal_id,
                request.trace_number, why)
    raise IssuerSecurityError(f"{request.name} refused: {why}")


def admit(ledger, request) -> Terminal:
    """The registered terminal a MAC-verified `request` is from, its KSN counter taken;
    IssuerSecurityError if the request is not that terminal's to make. Call it inside
    the request's transaction: the check and the counter's update are one."""
    key_id, counter = dukpt.parse_ksn(request.ksn)
    key_hex = key_id.hex().upper()
    terminal = find(ledger, request.terminal_id)
    if terminal is None:
        _refuse(request, f"terminal {request.terminal_id} is not registered")
    key = _key(ledger, key_hex)
    if key is None or key.terminal_id != request.terminal_id:
        owner = f" (it is terminal {key.terminal_id}'s)" if key else " (not registered)"
        _refuse(request, f"initial key ID {key_hex} is not terminal "
                         f"{request.terminal_id}'s{owner}")
    if not key.active:
        _refuse(request, f"initial key ID {key_hex} was retired (the terminal was re-keyed)")
    if request.kind == REVERSAL:
        try:
            original_id, original_counter = dukpt.parse_ksn(request.original_ksn)
        except dukpt.DukptError as exc:
            _refuse(request, f"original KSN: {exc}")
        original = _key(ledger, original_id.hex().upper())
        if original is None or original.terminal_id != request.terminal_id:
            _refuse(request, f"original KSN {request.original_ksn.hex().upper()} is not "
                             f"terminal {request.terminal_id}'s")
        if original_id == key_id and original_counter >= counter:
            _refuse(request, f"original KSN counter {original_counter} is not below the "
                             f"reversal's {counter}")
    if counter > key.last_counter:
        ledger.execute("UPDATE terminal_keys SET last_counter = ? WHERE initial_key_id = ?",
                       (counter, key_hex))
    elif not _made_ahead(ledger, request):
        _refuse(request, f"KSN counter {counter} of {key_hex} is not above the highest "
                         f"used, {key.last_counter}")
    if request.kind == PURCHASE and (request.merchant_id, request.merchant_name) != \
            (terminal.merchant_id, terminal.merchant_name):
        log.warning("%s %s/%d names merchant %r %r; the registry's %r %r is used",
                    request.name, request.terminal_id, request.trace_number,
                    request.merchant_id, request.merchant_name, terminal.merchant_id,
                    terminal.merchant_name)
    return terminal


def _made_ahead(ledger, request) -> bool:
    """A counter below the highest that is still unused, of a request the board made
    before later ones: a reversal, or a purchase its reversal named before it arrived."""
    if ledger.find_by_ksn(request.ksn) is not None:
        return False
    if request.kind == REVERSAL:
        return True
    return (request.kind == PURCHASE
            and ledger.find_reversal_of(request.terminal_id, request.ksn) is not None)
