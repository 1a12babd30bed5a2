"""The terminal's DUKPT key material and counters on flash (store.py records):

    terminal.json   terminal_id, initial_key, initial_key_id (hex), from provisioning
    counters.json   ksn_counter (last DUKPT transaction counter used), trace (last trace
                    number used)

Loaded only while a request is built: the idle terminal keeps no key in RAM."""
import binascii


class NotProvisioned(Exception):
    pass


class Exhausted(Exception):
    """No DUKPT transaction counter is left: the terminal needs a new initial key."""


class Keys:
    """The DUKPT initial key and initial key ID, as provisioned (X9.24-3-2017 6.5)."""

    def __init__(self, initial_key, initial_key_id):
        self.initial_key = initial_key
        self.initial_key_id = initial_key_id

    def wipe(self):
        key = self.initial_key
        for i in range(len(key)):
            key[i] = 0


def load(store):
    record = store.load("terminal") if store is not None else None
    if not record or "initial_key" not in record:
        raise NotProvisioned()
    return Keys(bytearray(binascii.unhexlify(record["initial_key"])),
                binascii.unhexlify(record["initial_key_id"]))


def next_counters(store):
    """The next DUKPT transaction counter and trace number, saved before they are used:
    a reset after this point skips them, it never reuses a key. Exhausted once no
    counter is left."""
    import dukpt  # not at the top: a live Keys would keep DUKPT's code in RAM
    if store is None:
        raise NotProvisioned()
    c = store.load("counters", {"ksn_counter": 0, "trace": 0})
    try:
        counter = dukpt.next_counter(c.get("ksn_counter", 0))
    except dukpt.DUKPTError:
        raise Exhausted()
    trace = c.get("trace", 0) % 999999 + 1
    store.save("counters", {"ksn_counter": counter, "trace": trace})
    return counter, trace
