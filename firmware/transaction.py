"""One cardholder's visit, from the card read to the answer on the screen:

    menu -> PIN -> waiting for the issuer -> result -> (back to idle)

Driven by the terminal's main loop (step, on_message, on_link_failed); never blocks.
Cancel (X) works at every step before the request leaves; once it has left, the answer
is awaited and shown, so the cardholder always learns what happened.

Each phase loads the code it needs and drops it after, so the peak is one phase's code
and not the sum (a 64 KiB heap; docs/benchmarks.md has the figures):
    PIN         digit_entry
    request     terminal_keys, financial, dukpt, pinblock, cmac  (PIN entry unloaded)
    answer      financial, cmac, then screens
Nothing of a phase's module may outlive it (an instance of one of its classes would
keep the whole module alive): what the visit keeps is plain values on this object.
"""
import gc
import sys
import time

import messages as m
import wallclock
from keypad import KEY_CANCEL, KEY_ENTER
try:
    from micropython import const
except ImportError:  # CPython, in tests
    def const(x):
        return x

# body keys (docs/protocol.cddl); const() so they cost no RAM on the board
_K_RSP_CODE = const(3)
_K_RSP_AVAILABLE = const(5)
_K_RSP_LEDGER = const(6)
_K_RSP_CURRENCY = const(7)
_K_RSP_NOTIFY = const(8)
_K_RSP_PIN_TRIES = const(10)

MENU_TIMEOUT_MS = 30000
ANSWER_TIMEOUT_MS = 20000  # the bridge answers ERROR 5 sooner if the issuer is down
RESULT_SHOW_MS = 15000
MESSAGE_SHOW_MS = 3000


def _unload(*names):
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


class Transaction:
    def __init__(self, term, card):
        """card: (pan, expiry, service_code, masked pan) as the reader checked them."""
        self.term = term
        # the card fields financial.build_balance_request reads (this object is its card)
        self.pan, self.expiry, self.service_code, self.card_pan_masked = card
        self.state = "menu"
        self.deadline = time.ticks_add(term.clock(), MENU_TIMEOUT_MS)
        self.pin_entry = None
        # the request in flight (financial.check_response reads them off this object)
        self.mtype = None
        self.trace = None
        self.ksn = None
        self.mac_key = None
        self._show_menu()

    # -- driven by the terminal --

    def step(self, now):
        """False once the visit is over and the idle screen may come back."""
        if self.state == "menu":
            key = self.term.keys.poll()
            if key == KEY_CANCEL:
                return self._end_with("Cancelled", "")
            if key in (ord("1"), KEY_ENTER):
                self._start_pin()
            elif time.ticks_diff(now, self.deadline) >= 0:
                return self._end_with("Timed out", "")
        elif self.state == "pin":
            result = self.pin_entry.poll()
            if result is None:
                if self.pin_entry.take_changed():
                    self._show_pin()
            elif result[0] == "pin":
                self._send_request(result[1])
            elif result[0] == "cancel":
                return self._end_with("Cancelled", "")
            else:
                return self._end_with("Timed out", "")
        elif self.state == "wait":
            if time.ticks_diff(now, self.deadline) >= 0:
                self._finish_wait()
                self._show_message("NO ANSWER", "The issuer did", "not answer.",
                                   "Try again later")
        elif self.state == "shown":
            key = self.term.keys.poll()
            if key is not None or time.ticks_diff(now, self.deadline) >= 0:
                return False
        return True

    def on_message(self, mtype, body):
        """True if the message was this visit's answer."""
        if self.state != "wait":
            return False
        if mtype == m.BALANCE_RESPONSE:
            self._on_response(body)
            return True
        return False

    def on_error(self, fields):
        if self.state != "wait" or fields.get(m.K_ERROR_TYPE) != self.mtype:
            return False
        self._finish_wait()
        code = fields.get(m.K_ERROR_CODE)
        if code == m.ERR_ISSUER_UNAVAILABLE:
            self._show_message("NOT AVAILABLE", "Issuer", "unavailable", "Try again later")
        elif code == m.ERR_SECURITY:
            # the issuer could not verify our request (its MAC): altered on the way
            self._show_message("NOT COMPLETED", "Request failed", "security check",
                               "Try again later")
        else:
            self._show_message("NOT COMPLETED", "Request refused", "by the bridge",
                               str(fields.get(m.K_ERROR_TEXT, ""))[:16])
        return True

    def on_link_failed(self, mtype):
        if self.state == "wait" and mtype == self.mtype:
            self._finish_wait()
            self._show_message("NOT SENT", "Host offline", "Request not sent", "Try again later")

    # -- steps --

    def _start_pin(self):
        from digit_entry import PinEntry
        self.state = "pin"
        self.term.keys.flush()
        self.pin_entry = PinEntry(self.term.keys, self.term.clock)
        self._show_pin()

    def _send_request(self, pin):
        term = self.term
        self.state = "wait"
        self.pin_entry = None
        _unload("digit_entry")
        term.display.show("BALANCE", "", "Processing...", "", "Please wait")
        try:
            body = self._build_request(pin)
        finally:
            # the key, PIN block and MAC code leave the heap before the answer needs room
            _unload("financial", "terminal_keys", "dukpt", "pinblock", "cmac")
        if body is None:
            return
        if not term.link.send(m.BALANCE_REQUEST, body):
            self._finish_wait()
            self._show_message("BUSY", "Link busy", "Try again", "")
            return
        self.deadline = time.ticks_add(term.clock(), ANSWER_TIMEOUT_MS)

    def _build_request(self, pin):
        """The request's body, its identity kept on self; None (and the reason shown)
        when the terminal cannot make one. `pin` is wiped whatever happens."""
        import terminal_keys
        term = self.term
        keys = None
        try:
            keys = terminal_keys.load(term.store)
            counter, trace = terminal_keys.next_counters(term.store)
            _unload("dukpt")  # the request code loads it again, without the counter code
            import financial
            body, pending = financial.build_balance_request(
                term.terminal_id, trace, wallclock.now() or 0, self, pin, keys, counter)
        except terminal_keys.Exhausted:
            self._show_message("OUT OF SERVICE", "Terminal keys", "exhausted",
                               "Call for service")
            return None
        except terminal_keys.NotProvisioned:
            self._show_message("OUT OF SERVICE", "Terminal not", "provisioned", "")
            return None
        finally:
            # the PIN block code wiped the PIN; an error path may not have
            for i in range(len(pin)):
                pin[i] = 0
            if keys is not None:
                keys.wipe()
        self.mtype, self.trace, self.ksn, self.mac_key = (
            pending.mtype, pending.trace, pending.ksn, pending.mac_key)
        return body

    def _on_response(self, body):
        import financial
        try:
            f = financial.check_response(body, self, self.term.terminal_id)
        except financial.SecurityError:
            f = None
        financial = None
        self._finish_wait()
        _unload("financial", "cmac")
        if f is None:
            self._show_message("SECURITY ERROR", "Answer failed", "verification.",
                               "Nothing shown.")
            return
        import screens
        code = f[_K_RSP_CODE]
        note1, note2 = screens.notification_lines(f.get(_K_RSP_NOTIFY))
        if code == "00":
            currency = f.get(_K_RSP_CURRENCY, 0)
            avail, cur = screens.money(f.get(_K_RSP_AVAILABLE, 0), currency)
            ledger, cur = screens.money(f.get(_K_RSP_LEDGER, 0), currency)
            self._show_result("BALANCE " + cur, "Available",
                              _right(avail), "Ledger", _right(ledger), note1, note2,
                              "Card " + self.card_pan_masked[-8:])
        else:
            reason1, reason2 = screens.decline_lines(code)
            tries = f.get(_K_RSP_PIN_TRIES)
            self._show_result("DECLINED " + code, reason1, reason2,
                              ("%d tries left" % tries) if isinstance(tries, int) else "",
                              "", note1, note2, "Card " + self.card_pan_masked[-8:])

    def wipe(self):
        """Forget the request's key (the terminal calls it when a visit ends by fault)."""
        key = self.mac_key
        if key is not None:
            for i in range(len(key)):
                key[i] = 0
            self.mac_key = None

    def _finish_wait(self):
        self.wipe()
        self.mtype = None
        gc.collect()

    # -- screens --

    def _show_menu(self):
        self.term.display.show("CARD", self.card_pan_masked, "", "1 Balance", "",
                               "", "", "X Cancel")

    def _show_pin(self):
        e = self.pin_entry
        self.term.display.show("BALANCE", "Enter PIN", "", "  " + e.masked(), "",
                               "4-12 digits" if e.too_short else "",
                               "E Enter  C Clear", "X Cancel")

    def _show_result(self, *lines):
        self.state = "shown"
        self.term.keys.flush()
        self.deadline = time.ticks_add(self.term.clock(), RESULT_SHOW_MS)
        self.term.display.show(*lines)

    def _show_message(self, title, line1, line2, line3):
        self._show_result(title, "", line1, line2, "", line3)

    def _end_with(self, line1, line2):
        self.state = "shown"
        self.deadline = time.ticks_add(self.term.clock(), MESSAGE_SHOW_MS)
        self.term.display.show("POS TERMINAL", "", line1, line2)
        return True


def _right(text):
    # MicroPython's str has no rjust
    return " " * (16 - len(text)) + text
