"""One cardholder's visit, from the card read to the answer on the screen:

    menu -> [amount, for a purchase] -> PIN -> waiting for the issuer -> result
         -> (back to idle)

A tapped card (contactless) is read once the amount is known, since its cryptogram
covers it: menu -> [amount] -> the card read (emv.py, a visit of its own that this one
hands over to through `then`, so the two never share the heap) -> a new Transaction
with the card read -> [PIN: a balance inquiry, or a purchase above the contactless CVM
limit] -> waiting -> result.

A visit as the terminal drives it (the contract is in app.py). Cancel (X) works at
every step before the request leaves; once it has left, the answer is awaited and
shown, so the cardholder always learns what happened.

A purchase goes through the journal (journal.py, where its rules are): journaled before
it is sent, settled by a MAC-verified answer to its very bytes, reversed otherwise: no
answer in time, the link giving up, any ERROR (unauthenticated: it may stand where an
approval was), an answer that fails its checks. This module says which of those
happened; it never reads or writes a journal entry.

Each phase loads the code it needs and drops it after, so the peak is one phase's code
and not the sum (a 64 KiB heap; docs/benchmarks.md has the figures):
    amount      digit_entry, screens (the amount as money)
    PIN         digit_entry
    request     terminal_keys, dukpt, then financial, pinblock, cmac  (PIN entry
                unloaded)
    journal     journal
    answer      answer, cmac, then result (screens), then journal
    card read   (contactless) this module dropped; emv, pn532, tlv instead
Nothing of a phase's module may outlive it (an instance of one of its classes would
keep the whole module alive): what the visit keeps is plain values on this object.
"""
import gc
import sys
import time

import messages as m
import settings
import wallclock
from keypad import KEY_CANCEL, KEY_ENTER
from wipe import wipe
from micropython import const

# states; const() so the names cost no RAM on the board
_MENU = const(0)
_AMOUNT = const(1)
_PIN = const(2)
_WAIT = const(3)
_SHOWN = const(4)
_HANDED_OVER = const(5)

_MENU_TIMEOUT_MS = const(30000)
_RESULT_SHOW_MS = const(15000)
_MESSAGE_SHOW_MS = const(3000)
_MAX_REVERSALS = const(4)   # pending on flash; beyond, purchases wait for them to go
_K_RSP_CODE = const(3)      # purchase-response keys (docs/protocol.cddl)
_K_RSP_APPROVAL = const(4)
_KEY_1 = const(0x31)        # the menu's "1 Balance" and "2 Purchase"
_KEY_2 = const(0x32)
# why a purchase is reversed (docs/protocol.md, REVERSAL_REQUEST reason)
_NO_ANSWER = const(1)
_BAD_ANSWER = const(2)
_ERROR = const(4)


def _unload(*names):
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


class Transaction:
    def __init__(self, term, card, tg=0, amount=None):
        """card: (pan, expiry, service_code, masked pan) as the stripe reader checked
        them; None for a card tapped on the contactless reader (its target number tg),
        read later by emv.py; or, from emv.py, the tapped card read, with its ICC data
        as a fifth value, for the visit to go on from the PIN or the request with
        `amount` (None: a balance inquiry)."""
        self.term = term
        # the card fields financial.build_request reads (this object is its card)
        self.pan = self.expiry = self.service_code = self.icc = None
        self.card_pan_masked = ""
        self.tg = tg
        self.then = None         # the visit that follows: emv.py's read (app.py)
        self.entry = None        # the amount or PIN entry in progress
        self.amount = amount     # a purchase's, minor units of settings.CURRENCY
        self.amount_text = ""    # as the screens show it, e.g. "CNY 12.50"
        self.approved = False    # a purchase approved, its journal entry left to clear
        # the request in flight (answer.check_response reads them off this object)
        self.mtype = None
        self.trace = None
        self.ksn = None
        self.mac_key = None
        self.digest = None       # SHA-256 of the request's bytes, which its answer names
        if card is not None:
            self.pan, self.expiry, self.service_code, self.card_pan_masked = card[:4]
            if len(card) > 4:
                self.icc = card[4]
                if amount is not None:
                    self._amount()
                if amount is None or amount > term.cvm_limit:
                    self._start_pin()
                else:
                    self._send_request(None)   # at or below the CVM limit: no PIN
                return
        self._show(_MENU, _MENU_TIMEOUT_MS, "CARD" if card else "CONTACTLESS",
                   self.card_pan_masked, "", "1 Balance", "2 Purchase", "", "", "X Cancel")

    # -- driven by the terminal (app.py) --

    def step(self, now):
        state = self.state
        if state == _MENU:
            key = self.term.keys.poll()
            if key == KEY_CANCEL:
                self._end("Cancelled")
            elif key == _KEY_1 or key == KEY_ENTER:
                self._start_pin()
            elif key == _KEY_2:
                if self.term.reversals >= _MAX_REVERSALS:
                    self._end("Reversals due")
                else:
                    from digit_entry import AmountEntry
                    self.state = _AMOUNT
                    self.term.keys.flush()
                    self.entry = AmountEntry(self.term.keys, self.term.clock,
                                             settings.MAX_AMOUNT)
                    self._show_entry()
            elif time.ticks_diff(now, self.deadline) >= 0:
                self._end("Timed out")
        elif state == _WAIT:
            if time.ticks_diff(now, self.deadline) >= 0:
                self._finish_wait()
                if self.amount is not None:
                    self._reverse(_NO_ANSWER, "No answer", "")
                else:
                    self._message("NO ANSWER", "The issuer did", "not answer.",
                                  "Try again later")
        elif state == _HANDED_OVER:
            return False
        elif state == _SHOWN:
            key = self.term.keys.poll()
            if key is not None or time.ticks_diff(now, self.deadline) >= 0:
                if self.approved:
                    self._journal("end", self.trace)   # the approval was seen
                return False
        else:   # amount or PIN entry
            result = self.entry.poll()
            if result is None:
                if self.entry.take_changed():
                    self._show_entry()
            elif result[0] == "amount":
                self.amount = result[1]
                self._start_pin()
            elif result[0] == "pin":
                self._send_request(result[1])
            else:
                self._end("Cancelled" if result[0] == "cancel" else "Timed out")
        return True

    def on_message(self, mtype, body):
        # a request's response is the type after it (0x10 -> 0x11, 0x12 -> 0x13)
        if self.state != _WAIT or self.mtype is None or mtype != self.mtype + 1:
            return False
        self._on_response(body)
        return True

    def on_error(self, fields):
        # An ERROR about our request names its trace number; one that does not (or names
        # another) is about an earlier request, and must not end this one.
        if (self.state != _WAIT or fields.get(m.K_ERROR_TYPE) != self.mtype
                or fields.get(m.K_ERROR_TRACE) != self.trace):
            return False
        self._finish_wait()
        code = fields.get(m.K_ERROR_CODE)
        if code == m.ERR_ISSUER_UNAVAILABLE:
            why = ("NOT AVAILABLE", "Issuer", "unavailable", "Try again later")
        elif code == m.ERR_SECURITY:
            why = ("NOT COMPLETED", "Request failed", "security check", "Try again later")
        else:
            why = ("NOT COMPLETED", "Request refused", "by the bridge",
                   str(fields.get(m.K_ERROR_TEXT, ""))[:16])
        if self.amount is not None:
            # No MAC: anyone on the wire can send one in place of the issuer's approval.
            # Whatever its code, only a MAC-verified answer may say nothing was charged.
            self._reverse(_ERROR, why[1], why[2])
        else:
            self._message(*why)
        return True

    def on_link_failed(self, mtype):
        if self.state == _WAIT and mtype == self.mtype:
            self._finish_wait()
            if self.amount is not None:
                # the bridge may have had it and lost only its ACK: in doubt, reverse
                self._reverse(_NO_ANSWER, "Host offline", "")
            else:
                self._message("NOT SENT", "Host offline", "Request not sent",
                              "Try again later")

    # -- steps --

    def _amount(self):
        import screens
        amount, cur = screens.money(self.amount, settings.CURRENCY)
        self.amount_text = cur + " " + amount
        screens = None
        _unload("screens")

    def _start_pin(self):
        if self.amount is not None and not self.amount_text:
            self._amount()
        if self.pan is None:
            # a tapped card, not read yet: its read first (emv.py), now that the amount
            # is known, and then a new visit with the card goes on from here
            self.state = _HANDED_OVER
            self.then = (self.tg, self.amount, _right(self.amount_text))
            return
        from digit_entry import PinEntry
        self.state = _PIN
        self.term.keys.flush()   # keys pressed before the prompt was on the screen
        self.entry = PinEntry(self.term.keys, self.term.clock)
        self._show_entry()

    def _send_request(self, pin):
        term = self.term
        t0 = time.ticks_us()
        self.state = _WAIT
        self.entry = None
        _unload("digit_entry")
        term.display.show(self._title(), "", "Processing...", "", "Please wait")
        try:
            built = self._build_request(pin)
        finally:
            # the key, PIN block and MAC code leave the heap before the answer needs room
            _unload("financial", "terminal_keys", "dukpt", "pinblock", "cmac")
        if built is None:
            return
        if self.amount is not None:
            # on flash before it leaves: from here on a power cut reverses it at boot
            self._journal("begin", self.trace, self.ksn, self.amount, settings.CURRENCY)
        if not term.link.send(self.mtype, built):
            if self.amount is not None:
                self._journal("end", self.trace)   # it never left
            self._finish_wait()
            self._message("BUSY", "Link busy", "Try again", "")
            return
        built = None
        term.link.poll()   # framed and written now, as the step's end would
        self.deadline = time.ticks_add(term.clock(), settings.ANSWER_TIMEOUT_MS)
        _spent(term, "request", t0)

    def _build_request(self, pin):
        """The request's body, its identity kept on self; None (and the reason shown)
        when the terminal cannot make one. `pin` is wiped whatever happens."""
        term = self.term
        try:
            import terminal_keys
            try:
                keys = terminal_keys.take(term.store, True)
            except terminal_keys.Exhausted:
                self._message("OUT OF SERVICE", "Terminal keys", "exhausted",
                              "Call for service")
                return None
            except terminal_keys.NotProvisioned:
                self._message("OUT OF SERVICE", "Terminal not", "provisioned", "")
                return None
            # the key code leaves before the request code comes in
            terminal_keys = None
            _unload("terminal_keys", "dukpt")
            purchase = None
            if self.amount is not None:
                purchase = {8: self.amount, 9: settings.CURRENCY, 10: keys[3][:15],
                            11: keys[4][:22]}
            import financial
            body, pending = financial.build_request(
                term.terminal_id, wallclock.now() or 0, self, pin, keys, purchase)
        finally:
            # the PIN block code wiped the PIN; an error path may not have
            if pin is not None:
                wipe(pin)
        self.mtype, self.trace, self.ksn, self.mac_key, self.digest = (
            pending.mtype, pending.trace, pending.ksn, pending.mac_key, pending.digest)
        # the card is in the request now: its PAN and ICC data need not stay in RAM
        # (the screens show the masked PAN), and the answer's checks need the room
        self.pan = self.expiry = self.service_code = self.icc = None
        return body

    def _on_response(self, body):
        t0 = time.ticks_us()
        import answer
        try:
            f = answer.check_response(body, self, self.term.terminal_id)
        except answer.NotOurs:
            # a late answer to an earlier request: ours may still come
            answer = None
            _unload("answer", "cmac")
            return
        except answer.SecurityError:
            f = None
        answer = None
        self._finish_wait()
        _unload("answer", "cmac")
        if f is None:
            if self.amount is not None:
                # an approval that cannot be trusted is none
                self._reverse(_BAD_ANSWER, "Answer failed", "verification.")
            else:
                self._message("SECURITY ERROR", "Answer failed", "verification.",
                              "Nothing shown.")
            return
        import result
        lines = result.lines(f, self.amount_text, self.card_pan_masked)
        result = None
        _unload("result", "screens")
        if self.amount is not None:
            # on flash before the screen: an approval is never reversed once it may
            # have been seen, and one the power took is shown again at boot
            if f[_K_RSP_CODE] == "00":
                self.approved = True
                self._journal("approved", self.trace, str(f.get(_K_RSP_APPROVAL, "")))
            else:
                self._journal("end", self.trace)
        f = None
        self._show(_SHOWN, _RESULT_SHOW_MS, *lines)
        _spent(self.term, "answer", t0)

    def _reverse(self, reason, line1, line2):
        """The purchase's fate is unknown: a reversal, on flash before the screen, which
        says why (line1, line2) and that nothing stays charged."""
        self._journal("reverse", reason, self.trace)
        self._show(_SHOWN, _RESULT_SHOW_MS, "NOT COMPLETED", _right(self.amount_text),
                   line1, line2, "No charge", "", "Reversal will", "be sent")

    def _journal(self, name, *args):
        import journal
        try:
            getattr(journal, name)(self.term, *args)
        finally:
            journal = None
            _unload("journal")

    def wipe(self):
        if self.entry is not None:
            self.entry.wipe()
            self.entry = None
        if self.mac_key is not None:
            wipe(self.mac_key)
            self.mac_key = None

    def _finish_wait(self):
        self.wipe()
        self.mtype = None
        gc.collect()

    # -- screens --

    def _title(self):
        return "BALANCE" if self.amount is None else "PURCHASE"

    def _show_entry(self):
        e = self.entry
        if self.state == _AMOUNT:
            import screens
            amount, cur = screens.money(e.value(), settings.CURRENCY)
            screens = None
            self.term.display.show("PURCHASE", "Enter amount", "",
                                   _right(cur + " " + amount), "", "",
                                   "E Enter  C Clear", "X Cancel")
            return
        self.term.display.show(self._title(), self.amount_text, "Enter PIN",
                               "  " + e.masked(), "", "4-12 digits" if e.too_short else "",
                               "E Enter  C Clear", "X Cancel")

    def _show(self, state, ms, *lines):
        self.state = state
        self.term.keys.flush()
        self.deadline = time.ticks_add(self.term.clock(), ms)
        self.term.display.show(*lines)

    def _message(self, title, line1, line2, line3):
        self._show(_SHOWN, _RESULT_SHOW_MS, title, "", line1, line2, "", line3)

    def _end(self, line1):
        self._show(_SHOWN, _MESSAGE_SHOW_MS, "POS TERMINAL", "", line1)


def _spent(term, phase, t0):
    # the board's own time on a phase (request: built, journaled, framed and written;
    # answer: checked, journaled, shown), for make bench; only the emulator has a log
    log = term.fault_log
    if log is not None:
        log.write("compute %s %d\n" % (phase, time.ticks_diff(time.ticks_us(), t0)))


def _right(text):
    # MicroPython's str has no rjust
    return " " * (16 - len(text)) + text
