"""The terminal's DUKPT key material and counters on flash (store.py records):

    terminal.json   terminal_id, initial_key, initial_key_id (hex), merchant_id,
                    merchant_name, utc_offset_min (app.py reads it at boot: the
                    merchant's local time on the screen), from provisioning
    counters.json   ksn_counter (last DUKPT transaction counter used), trace (last trace
                    number used)

Loaded only while a request is built: the idle terminal keeps no key in RAM."""
import binascii

import settings


class NotProvisioned(Exception):
    pass


class Exhausted(Exception):
    """No DUKPT transaction counter is left: the terminal needs a new initial key."""


def load(store):
    """(initial key, initial key ID, merchant id, merchant name): the DUKPT initial key
    (a bytearray, for the caller to wipe) and initial key ID as provisioned (X9.24-3-2017
    6.5), and the merchant a purchase names (ISO 8583 fields 42 and 43). Plain values,
    so this module can leave the heap while they are used."""
    record = store.load("terminal") if store is not None else None
    if not record or "initial_key" not in record:
        raise NotProvisioned()
    return (bytearray(binascii.unhexlify(record["initial_key"])),
            binascii.unhexlify(record["initial_key_id"]),
            record.get("merchant_id") or settings.MERCHANT_ID,
            record.get("merchant_name") or settings.MERCHANT_NAME)


def next_counters(store, n=1):
    """The next `n` (DUKPT transaction counter, trace number) pairs, saved before they
    are used: a reset after this point skips them, it never reuses a key. A purchase
    takes two, the second kept for its reversal, so that reversing it needs no counter
    code at a moment the heap is full. Exhausted once no counter is left."""
    import dukpt  # loaded for this only
    if store is None:
        raise NotProvisioned()
    # provisioning writes this record: without it the counter would start again and
    # reuse DUKPT keys, so a terminal that lost it is out of service until re-keyed
    c = store.load("counters")
    if c is None:
        raise NotProvisioned()
    counter = c.get("ksn_counter", 0)
    trace = c.get("trace", 0)
    pairs = []
    try:
        for _ in range(n):
            counter = dukpt.next_counter(counter)
            trace = trace % 999999 + 1
            pairs.append((counter, trace))
    except dukpt.DUKPTError:
        raise Exhausted()
    store.save("counters", {"ksn_counter": counter, "trace": trace})
    return pairs
