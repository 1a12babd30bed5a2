"""The terminal's keys and numbers on flash (store.py records), this module their only
reader and writer:

    terminal.json   terminal_id, merchant_id, merchant_name, utc_offset_min (app.py reads
                    it at boot: the merchant's local time on the screen), from provisioning
    keys.bin        the DUKPT registers, the next transaction counter and the last trace
                    number used (layout in dukpt.py), written by provisioning, then here

No initial key is ever on the board: provisioning writes the registers it fills from it
(dukpt.py). Loaded only while a request is built: the idle terminal keeps no key in RAM."""
import settings
from wipe import wipe
try:
    from micropython import const
except ImportError:  # CPython, in tests
    def const(x):  # type: ignore[misc]  # untyped stand-in for the stub's generic const
        return x

_TRACE = const(13)   # keys.bin offset of the last trace number (dukpt.py)


class NotProvisioned(Exception):
    pass


class Exhausted(Exception):
    """No DUKPT transaction counter is left: the terminal needs a new initial key."""


def take(store, pin):
    """The next transaction's identity and keys: (trace number, KSN, working keys,
    merchant id, merchant name). The working keys are bytearrays for the caller to wipe:
    PIN encryption (when `pin`), MAC generation, MAC verification. The merchant is what
    a purchase names (ISO 8583 fields 42 and 43). Plain values, so this module can leave
    the heap while they are used.

    keys.bin moves on before this returns: its counter and trace number are skipped by a
    reset, never reused, and the used register is gone from flash before its key is
    used. Raises NotProvisioned, or Exhausted once no counter is left."""
    import dukpt  # loaded for this only
    record = store.load("terminal") if store is not None else None
    # without keys.bin the counter would start again and reuse DUKPT keys, so a terminal
    # that lost it is out of service until re-keyed
    keys = bytearray(dukpt.RECORD_SIZE)
    if not record or store.read("keys.bin", keys) != len(keys) or keys[0] != 1:
        raise NotProvisioned()
    tk = None
    try:
        try:
            tk, ksn = dukpt.take(keys)
        except dukpt.DUKPTError:
            raise Exhausted()
        trace = int.from_bytes(keys[_TRACE:_TRACE + 4], "big") % 999999 + 1
        keys[_TRACE:_TRACE + 4] = trace.to_bytes(4, "big")
        store.write("keys.bin", keys)
        usages = (dukpt.KEY_USAGE_MAC_GENERATION, dukpt.KEY_USAGE_MAC_VERIFICATION)
        if pin:
            usages = (dukpt.KEY_USAGE_PIN_ENCRYPTION,) + usages
        return (trace, ksn, dukpt.working_keys(tk, ksn, usages),
                record.get("merchant_id") or settings.MERCHANT_ID,
                record.get("merchant_name") or settings.MERCHANT_NAME)
    finally:
        wipe(keys)
        if tk is not None:
            wipe(tk)
