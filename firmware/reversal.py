"""The reversal sender: sends the oldest reversal of the journal and shows what became
of it (docs/protocol.md, REVERSAL_REQUEST). What is sent, when, and what an answer does
to the journal are journal.py's rules; this module builds the request and reads the
answer. A reversal is built afresh at every try (its trace number and DUKPT counter
taken, its bytes MAC'd), here, at idle: the visit's code is gone from the heap by then,
and a counter taken with the purchase would have lost its key to the purchases made
since (dukpt.py). Nothing of a built reversal is saved: its MAC verification key is in
RAM for its try only, so a copy of the flash cannot forge its acknowledgement. The
issuer knows the purchase by its KSN and answers a repeated reversal 00, outcome 3.

The terminal runs a Sender in a visit's place (the contract is in app.py), at idle and
before the next card: at boot, after a fault that ended a visit, and whenever a
reversal is due. First, if the journal asks for it (term.recover_reason), purchases left
in flight become reversals and an approval the power may have taken off the screen is
shown again; then, if one is due and the host is online, one reversal goes.

    00, MAC verified     acknowledged: the entry leaves the journal; the screen shows
                         what became of the purchase and of the cardholder's alert of the
                         credit (key 8, as under a purchase's answer)
    anything else        (no answer, ERROR, a MAC that fails, 94, 96) the key is wiped;
                         the next try builds it anew under the next trace number and KSN
"""
import gc
import sys
import time

import journal
import messages as m
import settings
import wallclock
from wipe import wipe
from micropython import const

_SHOW_MS = const(3000)
_LAST_SHOW_MS = const(15000)
# reversal-request / reversal-response keys (docs/protocol.cddl)
_K_AMOUNT = const(8)
_K_CURRENCY = const(9)
_K_ORIGINAL_TRACE = const(12)
_K_ORIGINAL_KSN = const(13)
_K_REASON = const(14)
_K_RSP_CODE = const(3)
_K_RSP_NOTIFY = const(8)
_K_RSP_OUTCOME = const(16)

# reversal-outcome, as the merchant reads it
_OUTCOMES = ("", "Credited back", "Nothing charged", "Reversed before")


def _unload(*names):
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


class Sender:
    def __init__(self, term):
        self.term = term
        self.mtype = None
        self.mac_key = None
        self.amount_text = ""
        now = self.deadline = term.clock()   # done at once unless something is shown
        if term.recover_reason:
            seen = journal.recover(term)
            if seen is not None:
                # approved, and the power (or a fault) came before the result screen
                # went: charged, so the approval is shown once more
                trace, amount, currency, approval = seen
                self._amount(amount, currency)
                self.deadline = time.ticks_add(now, _LAST_SHOW_MS)
                term.display.show("LAST PURCHASE", "", "APPROVED", self.amount_text,
                                  "Approval " + str(approval), "", "Trace %d" % trace)
                return
        if not term.host_online:
            return
        due = journal.next_reversal(term, now)
        if due is None:
            return
        # the purchase's trace names the reversal in the journal and in its answer
        self.purchase, amount, currency, ksn, reason = due
        self._amount(amount, currency)
        term.display.show("REVERSAL", "", "Sending reversal", "of a purchase",
                          self.amount_text, "", "Please wait")
        body = self._build({_K_AMOUNT: amount, _K_CURRENCY: currency,
                            _K_ORIGINAL_TRACE: self.purchase, _K_ORIGINAL_KSN: ksn,
                            _K_REASON: reason})
        if body is None:
            return
        if term.link.send(m.REVERSAL_REQUEST, body):
            self.mtype = m.REVERSAL_REQUEST
            self.deadline = time.ticks_add(now, settings.ANSWER_TIMEOUT_MS)
        else:
            self._failed("Link busy")

    def _amount(self, amount, currency):
        import screens
        amount, cur = screens.money(amount, currency)
        screens = None
        _unload("screens")
        self.amount_text = cur + " " + amount

    def _build(self, fields):
        """This try's reversal bytes under the next identity (taken on flash before its
        key is used); its MAC verification key kept in RAM only, until the try ends.
        None (and the reason shown) if the terminal has no key left."""
        import terminal_keys
        try:
            keys = terminal_keys.take(self.term.store, False)
        except (terminal_keys.NotProvisioned, terminal_keys.Exhausted):
            # only new keys will send it: it waits on flash
            self._show("Not sent", "No terminal key", "Call for service")
            return None
        finally:
            terminal_keys = None
            _unload("terminal_keys", "dukpt")
        try:
            import financial
            body, pending = financial.build_reversal_request(
                self.term.terminal_id, wallclock.now() or 0, keys, fields)
        finally:
            _unload("financial", "cmac")
        # its identity and the bytes its answer must name, as the request code made them
        self.trace, self.ksn, self.mac_key, self.digest = (
            pending.trace, pending.ksn, pending.mac_key, pending.digest)
        return body

    def step(self, now):
        # over once the last screen's time is up, or a key was pressed on it
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
            if f.get(_K_ORIGINAL_TRACE) != self.purchase:
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
        if code == "00":
            journal.acknowledged(self.term, self.purchase)
            outcome = f.get(_K_RSP_OUTCOME)
            note = f.get(_K_RSP_NOTIFY)
            if note is not None:
                import result
                note = result.notification_lines(note)
                result = None
                _unload("result", "screens")
            self._show("Acknowledged", _OUTCOMES[outcome] if outcome in (1, 2, 3) else "",
                       "", note)
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

    def _show(self, line1, line2, line3="", note=None):
        # note: the two lines of the alert status, below the amount
        self.mtype = None
        self.deadline = time.ticks_add(self.term.clock(), _SHOW_MS)
        if note is None:
            self.term.display.show("REVERSAL", "", line1, line2, self.amount_text, "", line3)
        else:
            self.term.display.show("REVERSAL", "", line1, line2, self.amount_text, "",
                                   note[0], note[1])
