"""The reversal sender: sends the oldest reversal of the journal (journal.py) and keeps
it there until the issuer acknowledges it (docs/protocol.md, REVERSAL_REQUEST).

The terminal runs a Sender in a visit's place, at idle and before the next card: at
boot, after a fault that ended a visit, and whenever a reversal is due. First, after a
boot or a fault (term.recover_reason), it turns purchases left in flight into reversals
and shows again an approval the power may have taken off the screen; then it sends one
reversal. Tries back off (RETRY_MS); an acknowledged reversal lets the next go at once.

    00, MAC verified     acknowledged: the entry leaves the journal
    94                   its identity was used by another request: a new trace number
                         and KSN, sent at the next try
    anything else        (no answer, ERROR, a MAC that fails, 96) the same bytes again
                         at the next try
"""
import binascii
import gc
import sys
import time

import journal
import messages as m
import settings
from wipe import wipe
try:
    from micropython import const
except ImportError:  # CPython, in tests
    def const(x):  # type: ignore[misc]  # untyped stand-in for the stub's generic const
        return x

# pauses before the next try, after the first, second... (the last one repeats)
RETRY_MS = (2000, 5000, 15000, 30000, 60000)
_TO_REVERSE = const(1)      # journal entry states (journal.py)
_APPROVED = const(2)
_SHOW_MS = const(3000)
_LAST_SHOW_MS = const(15000)
# reversal-request / reversal-response keys (docs/protocol.cddl)
_K_AMOUNT = const(8)
_K_CURRENCY = const(9)
_K_ORIGINAL_TRACE = const(12)
_K_ORIGINAL_KSN = const(13)
_K_REASON = const(14)
_K_RSP_CODE = const(3)
_K_RSP_OUTCOME = const(16)

# reversal-outcome, as the merchant reads it
_OUTCOMES = ("", "Credited back", "Nothing charged", "Reversed before")


def _unload(*names):
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


class Sender:
    """A visit's interface (step, on_message, on_error, on_link_failed, wipe) so the
    terminal drives it like one."""

    def __init__(self, term):
        self.term = term
        self.mtype = None
        self.mac_key = None
        self.amount_text = ""
        now = self.deadline = term.clock()   # done at once unless a reversal goes
        if term.recover_reason:
            reason = term.recover_reason
            term.recover_reason = 0   # once: a journal that cannot be read is not retried
            journal.reverse(term, reason)
            for e in journal.load(term.store):
                if e[0] == _APPROVED:
                    # approved, and the power (or a fault) came before the result
                    # screen went: charged, so the approval is shown once more
                    journal.end(term, e[1])
                    self._amount(e)
                    self.deadline = time.ticks_add(now, _LAST_SHOW_MS)
                    term.display.show("LAST PURCHASE", "", "APPROVED", self.amount_text,
                                      "Approval " + str(e[5]), "", "Trace %d" % e[1])
                    return
        if not (term.reversals and term.host_online and
                time.ticks_diff(now, term.reversal_due) >= 0):
            return
        # the next try is booked first: whatever happens to this one, the terminal
        # backs off rather than retrying in a tight loop
        term.reversal_due = time.ticks_add(
            now, RETRY_MS[min(term.reversal_tries, len(RETRY_MS) - 1)])
        term.reversal_tries += 1
        self.entry = None
        for e in journal.load(term.store):
            if e[0] == _TO_REVERSE:
                self.entry = e
                break
        if self.entry is None:
            return
        self._amount(self.entry)
        term.display.show("REVERSAL", "", "Sending reversal", "of a purchase",
                          self.amount_text, "", "Please wait")
        body = self._build()
        if term.link.send(m.REVERSAL_REQUEST, body):
            self.mtype = m.REVERSAL_REQUEST
            self.deadline = time.ticks_add(now, settings.ANSWER_TIMEOUT_MS)
        else:
            self._failed("Link busy")

    def _amount(self, e):
        import screens
        amount, cur = screens.money(e[3], e[4])
        screens = None
        _unload("screens")
        self.amount_text = cur + " " + amount

    def _build(self):
        import terminal_keys
        e = self.entry
        keys = terminal_keys.load(self.term.store)
        terminal_keys = None
        try:
            _unload("terminal_keys")
            import financial
            body, pending = financial.build_reversal_request(
                self.term.terminal_id, e[6], e[8], keys, e[7],
                {_K_AMOUNT: e[3], _K_CURRENCY: e[4], _K_ORIGINAL_TRACE: e[1],
                 _K_ORIGINAL_KSN: binascii.unhexlify(e[2]), _K_REASON: e[5]})
        finally:
            wipe(keys[0])
            _unload("financial", "dukpt", "cmac")
        self.trace, self.ksn, self.mac_key = pending.trace, pending.ksn, pending.mac_key
        return body

    def step(self, now):
        """False once done and the idle screen may come back: the last screen's time
        is up, or a key was pressed on it."""
        keys = self.term.keys   # None on a terminal without a PIN pad
        if self.mtype is None:
            return ((keys is None or keys.poll() is None) and
                    time.ticks_diff(now, self.deadline) < 0)
        if time.ticks_diff(now, self.deadline) >= 0:
            self._failed("No answer")
        if keys is not None:
            keys.flush()  # nobody is served while it is sent
        return True

    def on_message(self, mtype, body):
        if self.mtype is None or mtype != m.REVERSAL_RESPONSE:
            return False
        import answer
        try:
            f = answer.check_response(body, self, self.term.terminal_id)
            if f.get(_K_ORIGINAL_TRACE) != self.entry[1]:
                f = None
        except answer.NotOurs:
            # a late answer to an earlier sending: this one's may still come
            answer = None
            _unload("answer", "cmac")
            return True
        except answer.SecurityError:
            f = None
        answer = None
        self.wipe()
        _unload("answer", "cmac")
        code = f and f.get(_K_RSP_CODE)
        if code == "00" or code == "94":
            term = self.term
            entries = journal.load(term.store)
            for e in entries:
                if e[0] == _TO_REVERSE and e[1] == self.entry[1]:
                    if code == "94":
                        journal.renew(term, e)
                    else:
                        entries.remove(e)
                    break
            journal.save(term, entries)
            _unload("terminal_keys", "dukpt")
            if code == "00":
                term.reversal_tries = 0
                term.reversal_due = term.clock()  # the next one, if any, at once
                outcome = f.get(_K_RSP_OUTCOME)
                self._show("Acknowledged", _OUTCOMES[outcome] if outcome in (1, 2, 3)
                           else "")
                return True
        self._failed("Refused " + code if code else "Bad answer")
        return True

    def on_error(self, fields):
        # only an ERROR naming this sending's trace is about it (see transaction.py)
        if (self.mtype is None or fields.get(m.K_ERROR_TYPE) != self.mtype
                or fields.get(m.K_ERROR_TRACE) != self.trace):
            return False
        self._failed("Host error %s" % fields.get(m.K_ERROR_CODE))
        return True

    def on_link_failed(self, mtype):
        if self.mtype is not None and mtype == self.mtype:
            self._failed("Host offline")

    def wipe(self):
        if self.mac_key is not None:
            wipe(self.mac_key)
            self.mac_key = None
        self.mtype = None

    def _failed(self, why):
        self.wipe()
        self._show("Not acknowledged", why, "Will retry")

    def _show(self, line1, line2, line3=""):
        self.mtype = None
        self.deadline = time.ticks_add(self.term.clock(), _SHOW_MS)
        self.term.display.show("REVERSAL", "", line1, line2, self.amount_text, "", line3)
