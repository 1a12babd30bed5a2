"""One cardholder's visit, from the card read to the answer on the screen:

    menu -> PIN -> waiting for the issuer -> result -> (back to idle)

Driven by the terminal's main loop (step, on_message, on_link_failed); never blocks.
Cancel (X) works at every step before the request leaves; once it has left, the answer
is awaited and shown, so the cardholder always learns what happened.
"""
import gc
import sys
import time

import messages as m
import wallclock
from pin_pad import PinEntry, KEY_CANCEL, KEY_ENTER
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


class Transaction:
    def __init__(self, term, card, pan_masked):
        self.term = term
        self.card = card
        self.state = "menu"
        self.deadline = time.ticks_add(term.clock(), MENU_TIMEOUT_MS)
        self.pin_entry = None
        self.pending = None
        self.card_pan_masked = pan_masked
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
        if self.state != "wait" or fields.get(m.K_ERROR_TYPE) != self.pending.mtype:
            return False
        self._finish_wait()
        if fields.get(m.K_ERROR_CODE) == m.ERR_ISSUER_UNAVAILABLE:
            self._show_message("NOT AVAILABLE", "Issuer", "unavailable", "Try again later")
        else:
            self._show_message("NOT COMPLETED", "Request refused", "by the bridge",
                               str(fields.get(m.K_ERROR_TEXT, ""))[:16])
        return True

    def on_link_failed(self, mtype):
        if self.state == "wait" and self.pending and mtype == self.pending.mtype:
            self._finish_wait()
            self._show_message("NOT SENT", "Host offline", "Request not sent", "Try again later")

    # -- steps --

    def _start_pin(self):
        self.state = "pin"
        self.term.keys.flush()
        self.pin_entry = PinEntry(self.term.keys, self.term.clock)
        self._show_pin()

    def _send_request(self, pin):
        import financial  # the DUKPT and MAC code loads only when a PIN is entered
        import dukpt
        term = self.term
        self.state = "wait"
        term.display.show("BALANCE", "", "Processing...", "", "Please wait")
        try:
            keys = term.keys_config()
            counter, trace = term.next_counters()
            body, self.pending = financial.build_balance_request(
                term.terminal_id, trace, wallclock.now() or 0, self.card, pin, keys, counter)
        except dukpt.DUKPTError:
            self._show_message("OUT OF SERVICE", "Terminal keys", "exhausted",
                               "Call for service")
            return
        except term.NotProvisioned:
            self._show_message("OUT OF SERVICE", "Terminal not", "provisioned", "")
            return
        finally:
            dukpt.wipe(pin)  # the PIN block code wiped it; an error path may not have
        # the PIN block and key derivation are done: their code leaves the heap before the
        # answer (MAC check, texts) needs room
        for name in ("pinblock", "dukpt"):
            sys.modules.pop(name, None)
        gc.collect()
        if not term.link.send(m.BALANCE_REQUEST, body):
            self._finish_wait()
            self._show_message("BUSY", "Link busy", "Try again", "")
            return
        self.deadline = time.ticks_add(term.clock(), ANSWER_TIMEOUT_MS)

    def _on_response(self, body):
        import financial
        import screens
        try:
            f = financial.check_response(body, self.pending, self.term.terminal_id)
        except financial.SecurityError:
            self._finish_wait()
            self._show_message("SECURITY ERROR", "Answer failed", "verification.",
                               "Nothing shown.")
            return
        self._finish_wait()
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

    def _finish_wait(self):
        if self.pending is not None:
            self.pending.wipe()
            self.pending = None
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
