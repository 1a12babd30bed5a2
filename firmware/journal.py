"""The purchase journal on flash: what makes a purchase happen exactly once.

This module alone reads and writes the journal's entries and the terminal's figures
about them (below). The purchase visit (transaction.py) and the reversal sender
(reversal.py) call its functions; neither holds an entry.

One record (journal.json, store.py's write-temp-then-rename, so a power cut leaves the
old list or the new one) holding a list of entries of plain values. No card, PIN or
track data is ever in it:

    [state, trace, KSN (hex), amount, currency, reason or approval code]

    state 0  in flight: journaled before it is sent
    state 1  to reverse, until the issuer acknowledges the reversal; reason 1 no answer
             in time (or the visit ended without one), 2 answer failed verification,
             3 found in flight at boot (power cut), 4 an ERROR instead of an answer
    state 2  approved, with its approval code, until the approval has been seen

No reversal request and no key is in it: the reversal sender builds each try afresh,
and the MAC verification key of its KSN stays in RAM for that try only, so a copy of
the flash holds no key of a request already sent (the terminal's DUKPT registers hold
no key of a counter already used, dukpt.py). Entries written by earlier firmware carry
two more slots, a built request and its key: they are read as the first six, and
recover writes the journal again without them.

A purchase meets the rules in this order:

1. begin: journaled before it is sent, so that from then on a power cut reverses it.
2. A MAC-verified answer to its very bytes settles it: a decline (end) removes it
   before it is shown; an approval (approved) is on flash before it is shown, and
   removed (end) once its screen goes. Never reversed once it may have been seen: it
   was charged.
3. Anything else reverses it (reverse): no answer in time, the link giving up, any
   ERROR (it carries no MAC), an answer that fails its checks. Unless a MAC-verified
   answer says otherwise, reverse.
4. recover: a purchase still in flight when its visit ended without settling it (a
   fault) or at boot (a power cut) is reversed; an approval not yet seen is shown
   again, not reversed.
5. next_reversal: the oldest reversal goes at idle, tries backing off by RETRY_MS. Each
   try builds it afresh under the next trace number and DUKPT counter (taken then, at
   idle, and on flash before the key is used: a counter reserved earlier would have
   lost its key to the purchases since). The issuer knows the purchase by its KSN and
   answers a repeated reversal 00, "already reversed", so a lost answer costs nothing.
   It stays on flash until the issuer acknowledges it (acknowledged, 00 with a
   verified MAC); anything else, 94 included, waits for the next try.

So whenever the power goes, a purchase ends either charged and shown approved (maybe
after the reboot), or reversed: never charged without the approval on the screen.

The terminal's figures stay attributes of the terminal object, written here only: this
module is loaded for a moment and dropped (a 64 KiB heap), and its globals would go
with it; they live as long as the terminal, which reads them at idle without loading
this code:

    term.reversals       reversals on flash (the idle screen, the purchase limit)
    term.reversal_due    ticks_ms when the next try may go
    term.reversal_tries  tries since the last acknowledgement (the back-off)
    term.recover_reason  nonzero while a purchase may be in flight or approved unseen
                         with no visit waiting for it: the terminal then runs the
                         reversal sender, which calls recover() with this reason
"""
import binascii
import time

from micropython import const

# entry slots
_STATE = const(0)
_TRACE = const(1)
_KSN = const(2)
_AMOUNT = const(3)
_CURRENCY = const(4)
_REASON = const(5)          # a reversal's reason, or an approval's code
_SLOTS = const(6)           # earlier firmware wrote two more: a built reversal and its key

# entry states
_IN_FLIGHT = const(0)
_TO_REVERSE = const(1)
_APPROVED = const(2)

# reversal reasons (docs/protocol.md, REVERSAL_REQUEST)
_NO_ANSWER = const(1)
_POWER_CUT = const(3)

# pauses before the next try, after the first, second... (the last one repeats)
RETRY_MS = (2000, 5000, 15000, 30000, 60000)


def boot(term):
    """The terminal's figures when it starts: the journal is read at the first idle
    screen (recover), for whatever the power cut left in flight."""
    term.reversals = 0
    term.reversal_due = 0
    term.reversal_tries = 0
    term.recover_reason = _POWER_CUT if term.store is not None else 0


def load(store):
    return store.load("journal", {}).get("entries", [])


def save(term, entries):
    """Replace the journal, and count what it holds."""
    # an entry of earlier firmware loses its reversal and key at its first write
    term.store.save("journal", {"entries": [e[:_SLOTS] for e in entries]})
    _count(term, entries)


def _count(term, entries):
    n = 0
    unsettled = False
    for e in entries:
        if e[_STATE] == _TO_REVERSE:
            n += 1
        else:
            unsettled = True
    term.reversals = n
    if not unsettled:
        term.recover_reason = 0
    elif not term.recover_reason:
        term.recover_reason = _NO_ANSWER


# -- a purchase --

def begin(term, trace, ksn, amount, currency):
    """A purchase about to be sent."""
    # before the write: if the visit ends by a fault from here on, the terminal
    # recovers the journal at idle
    if not term.recover_reason:
        term.recover_reason = _NO_ANSWER
    entries = load(term.store)
    entries.append([_IN_FLIGHT, trace, binascii.hexlify(ksn).decode(), amount, currency,
                    0])
    save(term, entries)


def approved(term, trace, approval_code):
    """The purchase's verified approval is in, about to be shown."""
    entries = load(term.store)
    for e in entries:
        if e[_STATE] == _IN_FLIGHT and e[_TRACE] == trace:
            e[_STATE] = _APPROVED
            e[_REASON] = approval_code
    save(term, entries)


def end(term, trace):
    """Nothing more to do for the purchase `trace`: declined (verified), never sent, or
    its approval seen. A reversal is never removed here."""
    save(term, [e for e in load(term.store)
                if e[_STATE] == _TO_REVERSE or e[_TRACE] != trace])


def reverse(term, reason, trace):
    """The purchase `trace` got no answer the board can take: a reversal, to be sent at
    once."""
    entries = load(term.store)
    for e in entries:
        if e[_STATE] == _IN_FLIGHT and e[_TRACE] == trace:
            e[_STATE] = _TO_REVERSE
            e[_REASON] = reason
    save(term, entries)
    term.reversal_tries = 0
    term.reversal_due = term.clock()


def recover(term):
    """No visit waits for an answer any more (boot, or a visit that ended by a fault):
    every purchase in flight becomes a reversal (term.recover_reason says why), and
    the first approval not yet seen leaves the journal, returned as (trace, amount,
    currency, approval code) for the terminal to show again; None if there is none."""
    reason = term.recover_reason
    term.recover_reason = 0   # once: a journal that cannot be read is not retried
    entries = load(term.store)
    found = False
    seen = None
    old = False
    for e in entries:
        old = old or len(e) > _SLOTS   # earlier firmware's: its key is to leave the flash
        if e[_STATE] == _IN_FLIGHT:
            e[_STATE] = _TO_REVERSE
            e[_REASON] = reason
            found = True
        elif e[_STATE] == _APPROVED and seen is None:
            seen = e
    if seen is not None:
        entries.remove(seen)
    if found or seen is not None or old:
        save(term, entries)   # another approval left makes the terminal recover again
    else:
        _count(term, entries)   # nothing changed: nothing to write
    if found:
        term.reversal_tries = 0
    term.reversal_due = term.clock()
    if seen is None:
        return None
    return seen[_TRACE], seen[_AMOUNT], seen[_CURRENCY], seen[_REASON]


# -- its reversal --

def next_reversal(term, now):
    """The oldest reversal if one is due, as (purchase trace, amount, currency, purchase
    KSN, reason), to be built afresh for this try; None if none is due. The try after
    it is booked first: whatever happens to this one, the terminal backs off rather
    than retrying in a tight loop."""
    if not term.reversals or time.ticks_diff(now, term.reversal_due) < 0:
        return None
    term.reversal_due = time.ticks_add(
        now, RETRY_MS[min(term.reversal_tries, len(RETRY_MS) - 1)])
    term.reversal_tries += 1
    for e in load(term.store):
        if e[_STATE] == _TO_REVERSE:
            return (e[_TRACE], e[_AMOUNT], e[_CURRENCY], binascii.unhexlify(e[_KSN]),
                    e[_REASON])
    return None


def acknowledged(term, trace):
    """The issuer acknowledged the reversal of purchase `trace` (00, MAC verified): it
    leaves the journal, and the next one may go at once. Nothing else removes one."""
    save(term, [e for e in load(term.store)
                if e[_STATE] != _TO_REVERSE or e[_TRACE] != trace])
    term.reversal_tries = 0
    term.reversal_due = term.clock()
