"""The purchase journal on flash: what makes a purchase happen exactly once.

One record (journal.json, store.py's write-temp-then-rename, so a power cut leaves the
old list or the new one) holding a list of entries of plain values. No card, PIN or
track data is ever in it:

    [state, trace, KSN (hex), amount, currency, reason or approval code,
     reversal trace, reversal DUKPT counter, reversal time]

    state 0  a purchase in flight: journaled before it is sent. A verified decline
             removes it before the answer is shown; a verified approval makes it 2.
    state 1  a purchase to reverse, until the issuer acknowledges the reversal (00 with
             a verified MAC); reason 1 no answer in time, 2 answer failed verification,
             3 found in flight at boot (power cut)
    state 2  approved, with its approval code: written before the approval is shown,
             removed when the visit's result screen goes. One found at boot was charged
             but perhaps never seen: the terminal shows it again, then removes it.

So whenever the power goes, a purchase ends either charged and shown approved (maybe
after the reboot), or reversed: never charged without the approval on the screen.

A reversal's own trace number and DUKPT counter are reserved with the purchase's (they
are on flash before the purchase leaves), its time is taken when it is recorded, so that
every try sends the same bytes (docs/protocol.md); a 94 makes it take a new trace and
counter (renew). reversal.py sends them.

Loaded for a moment by a purchase and by the reversal sender, dropped after.
"""
import binascii

import wallclock
try:
    from micropython import const
except ImportError:  # CPython, in tests
    def const(x):  # type: ignore[misc]  # untyped stand-in for the stub's generic const
        return x

_IN_FLIGHT = const(0)
_TO_REVERSE = const(1)
_APPROVED = const(2)


def load(store):
    return store.load("journal", {}).get("entries", [])


def save(term, entries):
    """Replace the journal; term.reversals counts what is left to reverse."""
    term.store.save("journal", {"entries": entries})
    _count(term, entries)


def _count(term, entries):
    n = 0
    for e in entries:
        if e[0] == _TO_REVERSE:
            n += 1
    term.reversals = n


def begin(term, trace, ksn, amount, currency, reserved):
    """A purchase about to be sent; `reserved` is the (DUKPT counter, trace number) its
    reversal would take, taken with the purchase's own (terminal_keys.next_counters)."""
    entries = load(term.store)
    entries.append([_IN_FLIGHT, trace, binascii.hexlify(ksn).decode(), amount, currency,
                    0, reserved[1], reserved[0], 0])
    save(term, entries)


def approved(term, trace, approval_code):
    """The purchase's verified approval is in, about to be shown."""
    entries = load(term.store)
    for e in entries:
        if e[0] == _IN_FLIGHT and e[1] == trace:
            e[0] = _APPROVED
            e[5] = approval_code
    save(term, entries)


def end(term, trace):
    """Nothing more to do for the purchase `trace`: declined (verified), never sent, or
    its approval shown. A reversal is never removed here."""
    save(term, [e for e in load(term.store) if e[0] == _TO_REVERSE or e[1] != trace])


def reverse(term, reason, trace=None):
    """The purchase `trace` got no answer the board can take, or (trace None, after a
    reboot or a fault that ended a visit) every purchase still in flight, since nothing
    waits for their answers any more: they become reversals, to be sent at once."""
    entries = load(term.store)
    found = False
    for e in entries:
        if e[0] == _IN_FLIGHT and (trace is None or e[1] == trace):
            e[0] = _TO_REVERSE
            e[5] = reason
            e[8] = wallclock.now() or 0   # its identity was reserved with the purchase
            found = True
    if found:
        save(term, entries)
        term.reversal_tries = 0
    _count(term, entries)
    term.reversal_due = term.clock()


def renew(term, e):
    """A new identity for reversal `e`: trace number and DUKPT counter saved before use,
    so a reset can skip them but never reuse them."""
    import terminal_keys
    counter, trace = terminal_keys.next_counters(term.store)[0]
    e[6] = trace
    e[7] = counter
    e[8] = wallclock.now() or 0
