"""The terminal application: boot handshake, idle screen, liveness, message dispatch.

A polled main loop: step() pumps the link, handles what arrived and runs the timers.
Nothing here blocks, so a slow or absent bridge never freezes the screen or the keys.

At idle the terminal runs at most one visit (self.txn): a cardholder's
(transaction.Transaction) or, before the next card, the reversal sender
(reversal.Sender). What the terminal and a visit owe each other:

    step(now)              called every loop while the visit lasts; never blocks.
                           False once it is over: the terminal drops it, unloads
                           VISIT_MODULES and shows the idle screen.
    on_message(mtype, body)
                           every message that arrives; True if it was the answer the
                           visit waits for (checked, MAC and identity, by the visit).
                           A financial answer no visit takes is late: dropped unread.
    on_error(fields)       every ERROR; True only if it names the type and trace of the
                           visit's request in flight (one about an earlier request must
                           not end this one).
    on_link_failed(mtype)  the link gave up on a message of type mtype: the visit's
                           request if the type is its own (it may have been received).
    then                   None, or the visit that follows this one (plain values): a
                           contactless visit hands over to its card read (emv.py) and
                           back (transaction.py), so their code never shares the heap.
    wipe()                 the visit ends by a fault (an exception in any of the above):
                           forget every key and digit it holds. The terminal then drops
                           it; the journal, not the visit, says what becomes of a
                           purchase it left in flight (journal.py).

A visit keeps plain values only: an object of a module it loaded would keep that
module's code in the heap after it is unloaded (docs/firmware-memory.md). The
reversal figures (self.reversals, reversal_due, reversal_tries, recover_reason) are
journal.py's: read here, written there only.
"""
import gc
import time

import sys

import cbor
import messages as m
import settings
import wallclock
from display import Display
from link import Link, PROTOCOL_VERSION
from micropython import const

# loaded for a visit only, and unloaded with it (see transaction.py for the phases)
VISIT_MODULES = ("transaction", "digit_entry", "terminal_keys", "financial", "pinblock",
                 "cmac", "dukpt", "answer", "result", "screens", "journal",
                 "reversal", "pn532", "emv", "tlv")
_HELLO_REPLY_WAIT_MS = const(5000)   # from sending HELLO until we retry it
_STATUS_REPLY_WAIT_MS = const(5000)


class Terminal:
    # the reversal figures: journal.py alone writes them (journal.boot first), the idle
    # loop reads them; declared for the type check only, a bare annotation compiles to
    # nothing on MicroPython
    reversals: int
    reversal_due: int
    reversal_tries: int
    recover_reason: int

    def __init__(self, link_stream, panel, clock=time.ticks_ms,
                 terminal_id=settings.TERMINAL_ID, card_stream=None, pinpad_stream=None,
                 store=None, nfc_stream=None):
        self.clock = clock
        self.store = store
        # a terminal record that does not parse puts the terminal out of service (no
        # card is taken: its keys are unknown), but it still boots, says HELLO and shows
        # why, rather than stopping with a blank screen
        self.out_of_service = None
        try:
            record = self._terminal_record()
        except Exception:  # store.StoreError
            record = None
            self.out_of_service = "record damaged"
        if record and record.get("terminal_id"):
            terminal_id = record["terminal_id"]
        # the screen shows the merchant's local time, whatever the bridge PC's zone is
        self.utc_offset_min = record.get("utc_offset_min") if record else None
        # contactless purchases above it ask for the PIN (terminal.json, provisioning)
        limit = record.get("cvm_limit") if record else None
        self.cvm_limit = limit if type(limit) is int and limit >= 0 else settings.CVM_LIMIT
        self.terminal_id = terminal_id
        import journal   # the reversal figures start as the journal's owner sets them
        journal.boot(self)
        journal = None
        sys.modules.pop("journal", None)
        self.link = Link(link_stream, clock, settings.LINK_TIMEOUT_MS, settings.LINK_RETRIES)
        self.display = Display(panel)
        self.card_reader = None
        self.keys = None
        self.card_stream = card_stream
        self.nfc = None                 # the contactless reader's driver, at idle only
        self.nfc_stream = nfc_stream
        self._card_reader_on()
        if pinpad_stream is not None:
            from keypad import KeyReader
            self.keys = KeyReader(pinpad_stream)
        self.txn = None
        self.notice_until = None
        self.faults = 0
        self.started = clock()
        self.state = "boot"
        self.host_online = False
        self.hello_tries = 0
        self.hello_due = self.started    # send the first HELLO at once
        self.hello_deadline = None
        self.status_due = None
        self.status_deadline = None
        self.shown_minute = None
        self.last_error = None
        self.heap_free = 0
        self.fault_log = None  # a stream for tracebacks: the emulator's stderr; on the
        # board none, since the REPL's UART is the link
        self.display.show("POS TERMINAL", "", "Starting...", "",
                          "fw " + settings.FIRMWARE_VERSION, "id " + terminal_id)

    # -- main loop --

    def run(self):
        while True:
            self.guarded_step()
            time.sleep_ms(settings.POLL_MS)

    def guarded_step(self):
        try:
            self.step()
        except Exception as exc:  # MemoryError included: the terminal keeps going
            self._fault(exc)

    def _fault(self, exc):
        """Whatever went wrong in a step ends the visit, never the terminal."""
        had_visit = self.txn is not None
        if had_visit:
            self.txn.wipe()
        self.txn = None
        self._unload_visit()
        self.faults += 1
        if self.fault_log is not None:
            sys.print_exception(exc, self.fault_log)
        self.last_error = (m.ERR_INTERNAL, repr(exc)[:60], 0)
        self.display.show("POS TERMINAL", "", "Terminal error", "Not completed" if had_visit
                          else "", "", "Please retry")
        self.notice_until = time.ticks_add(self.clock(), 3000)

    def step(self):
        link = self.link
        link.poll()
        while True:
            msg = link.receive()
            if msg is None:
                break
            self._dispatch(msg[0], msg[1])
        while True:
            failed = link.take_failure()
            if failed is None:
                break
            self._link_failed(failed)
        now = self.clock()
        self._timers(now)
        if self.state == "idle":
            self._cardholder(now)
        link.poll()  # send what the handlers queued without waiting a loop

    def _cardholder(self, now):
        if self.txn is not None:
            if not self.txn.step(now):
                then = getattr(self.txn, "then", None)
                self.txn = None
                self._unload_visit(then)
                if then is None:
                    self._show_idle()
                elif len(then) == 3:
                    from emv import Read
                    self.txn = Read(self, *then)
                else:
                    from transaction import Transaction
                    self.txn = Transaction(self, then[0], 0, then[1])
            return
        if self.notice_until is not None:
            if time.ticks_diff(now, self.notice_until) < 0:
                return
            self.notice_until = None
            self._show_idle()
        if self.keys is not None:
            self.keys.flush()  # keys pressed at the idle screen mean nothing
        if self.recover_reason or (self.reversals and self.host_online and
                                   time.ticks_diff(now, self.reversal_due) >= 0):
            # purchases left in flight, and reversals due, go before the next card
            self._card_reader_off()
            from reversal import Sender
            self.txn = Sender(self)
            return
        if self.out_of_service:
            return
        got = self.card_reader.poll() if self.card_reader is not None else None
        if got is None and self.nfc is not None:
            got = self.nfc.poll(now)
            if type(got) is int:
                # a card in the field: the visit reads it once it knows the amount
                self._card_reader_off()
                from transaction import Transaction
                self.txn = Transaction(self, None, got)
                return
            if got is not None:
                self.display.show("POS TERMINAL", "", got, "", "", "")
                self.notice_until = time.ticks_add(now, 3000)
                return
        if got is None:
            return
        if hasattr(got, "pan"):
            from card_reader import mask_pan
            # plain values: a live Card would keep the whole reader module in RAM
            card = (got.pan, got.expiry, got.service_code, mask_pan(got.pan))
            got = mask_pan = None
            self._card_reader_off()
            from transaction import Transaction
            self.txn = Transaction(self, card)
        else:
            self.display.show("POS TERMINAL", "", got.message, "Try again" if got.retry else "",
                              "", "")
            self.notice_until = time.ticks_add(now, 3000)

    def _card_reader_on(self):
        if self.card_stream is not None and self.card_reader is None:
            from card_reader import CardReader
            self.card_reader = CardReader(self.card_stream, now=wallclock.now)
        if self.nfc_stream is not None and self.nfc is None:
            # woken and set up again at its first look: the chip may have been reset
            from pn532 import PN532
            self.nfc = PN532(self.nfc_stream, self.clock)

    def _card_reader_off(self):
        # the readers' code and buffers make room for the visit's (64 KiB heap)
        self.card_reader = None
        self.nfc = None
        sys.modules.pop("card_reader", None)
        sys.modules.pop("pn532", None)
        gc.collect()

    def _unload_visit(self, then=None):
        # the visit's code (flow, texts, DUKPT, MAC, PIN block) leaves the heap with it:
        # the idle terminal keeps only what waits for the next card
        for name in VISIT_MODULES:
            sys.modules.pop(name, None)
        gc.collect()
        if then is None:   # no visit follows: the readers wait for the next card
            self._card_reader_on()

    # -- flash --

    def _terminal_record(self):
        if self.store is None:
            return None
        return self.store.load("terminal")

    # -- incoming --

    def _dispatch(self, mtype, body):
        try:
            fields = cbor.decode(body)
            if not isinstance(fields, dict):
                raise cbor.CBORError("body is not a map")
            if self.txn is not None and self.txn.on_message(mtype, body):
                return
            if m.BALANCE_RESPONSE <= mtype <= m.REVERSAL_RESPONSE and mtype & 1:
                # a late answer to a visit that already ended: nothing to show (a
                # purchase without its answer in time was reversed)
                return
            handler = self.HANDLERS.get(mtype)
            if handler is None:
                self._send_error(m.ERR_UNSUPPORTED_TYPE, "unsupported message type", mtype)
                return
            handler(self, fields)
        except (cbor.CBORError, KeyError, TypeError, ValueError) as exc:
            if mtype != m.ERROR:  # never answer an ERROR with an ERROR
                self._send_error(m.ERR_MALFORMED, "malformed: %s" % exc, mtype)

    def _on_hello_reply(self, f):
        version = f[m.K_PROTOCOL]
        if version != PROTOCOL_VERSION:
            self.hello_deadline = None
            self._offline("Bridge speaks", "protocol %d" % version)
            return
        self._set_time(f.get(m.K_TIME))
        self.hello_deadline = None
        self.hello_tries = 0
        self.host_online = True
        self.state = "idle"
        self.status_due = time.ticks_add(self.clock(), settings.STATUS_INTERVAL_MS)
        if self.txn is None:
            # a visit's screen stays: a HELLO_REPLY has no MAC, and one sent behind an
            # approval would take it off the screen of a purchase charged
            self._show_idle()

    def _on_status_request(self, f):
        gc.collect()
        self.heap_free = gc.mem_free()
        counters = self.link.counters()
        link = {}
        for name, key in m.LINK_COUNTER_KEYS:
            link[key] = counters[name]
        self._send(m.STATUS, {
            m.K_UPTIME: time.ticks_diff(self.clock(), self.started) // 1000,
            m.K_HEAP_FREE: self.heap_free,
            m.K_STATE: self.state,
            m.K_LINK: link,
        })

    def _on_status(self, f):
        self._set_time(f.get(m.K_STATUS_TIME))
        self.status_deadline = None
        if not self.host_online:
            self.host_online = True
            if self.state == "idle" and self.txn is None:
                self._show_idle()

    def _on_error(self, f):
        self.last_error = (f.get(m.K_ERROR_CODE), f.get(m.K_ERROR_TEXT), f.get(m.K_ERROR_TYPE))
        if self.txn is not None and self.txn.on_error(f):
            return
        if f.get(m.K_ERROR_TYPE) == m.HELLO:
            self.hello_deadline = None
            self._offline("Bridge refused", str(f.get(m.K_ERROR_TEXT, ""))[:16])

    HANDLERS = {
        m.HELLO_REPLY: _on_hello_reply,
        m.STATUS_REQUEST: _on_status_request,
        m.STATUS: _on_status,
        m.ERROR: _on_error,
    }

    # -- timers and failures --

    def _timers(self, now):
        if self.state == "boot":
            if self.hello_deadline is not None and time.ticks_diff(now, self.hello_deadline) >= 0:
                self.hello_deadline = None
                self._offline("Host offline", "retrying...")
            if self.hello_deadline is None and time.ticks_diff(now, self.hello_due) >= 0:
                self._send_hello(now)
            return
        if self.status_deadline is not None and time.ticks_diff(now, self.status_deadline) >= 0:
            self.status_deadline = None
            self._host_lost()
        if self.status_due is not None and time.ticks_diff(now, self.status_due) >= 0:
            self.status_due = time.ticks_add(now, settings.STATUS_INTERVAL_MS)
            if self.status_deadline is None and self._send(m.STATUS_REQUEST, {}):
                self.status_deadline = time.ticks_add(now, _STATUS_REPLY_WAIT_MS)
        if self.state == "idle" and self.txn is None and self.notice_until is None:
            minute = wallclock.local_hhmm()
            if minute != self.shown_minute:
                self._show_idle()

    def _send_hello(self, now):
        if not self._send(m.HELLO, {m.K_PROTOCOL: PROTOCOL_VERSION,
                                    m.K_FIRMWARE: settings.FIRMWARE_VERSION,
                                    m.K_TERMINAL_ID: self.terminal_id}):
            return
        self.hello_deadline = time.ticks_add(now, _HELLO_REPLY_WAIT_MS)
        backoff = settings.HELLO_RETRY_MS
        self.hello_due = time.ticks_add(now, backoff[min(self.hello_tries, len(backoff) - 1)])
        self.hello_tries += 1

    def _link_failed(self, mtype):
        if self.txn is not None:
            self.txn.on_link_failed(mtype)
        if mtype == m.HELLO:
            self.hello_deadline = None
            self._offline("Host offline", "retrying...")
        elif mtype == m.STATUS_REQUEST:
            self.status_deadline = None
            self._host_lost()

    def _host_lost(self):
        if self.host_online:
            self.host_online = False
            if self.state == "idle" and self.txn is None:
                self._show_idle()

    # -- output --

    def _send(self, mtype, fields):
        return self.link.send(mtype, cbor.encode(fields))

    def _send_error(self, code, text, about_type):
        self._send(m.ERROR, {m.K_ERROR_CODE: code, m.K_ERROR_TEXT: text[:60],
                             m.K_ERROR_TYPE: about_type})

    def _set_time(self, unix_seconds):
        if isinstance(unix_seconds, int) and unix_seconds > 0:
            # a record's offset the board cannot show is refused: the time alone then,
            # at the default offset
            (wallclock.set_time(unix_seconds, self.utc_offset_min)
             or wallclock.set_time(unix_seconds))

    def _offline(self, line1, line2):
        self.host_online = False
        if self.txn is not None:
            return   # never over a visit's screen (an approval): the idle one says it
        self.display.show("POS TERMINAL", "", line1, line2, "",
                          "id " + self.terminal_id)

    def _show_idle(self):
        self.shown_minute = wallclock.local_hhmm()
        gc.collect()  # the idle screen is where the heap gets tidied
        if self.out_of_service:
            self.display.show("OUT OF SERVICE", "", "Terminal", self.out_of_service, "",
                              "Call for service", "id " + self.terminal_id,
                              self.shown_minute + ("  online" if self.host_online
                                                   else " offline"))
            return
        self.display.show("POS TERMINAL", "", "  Insert card", "  or tap card" if
                          self.nfc_stream is not None else "",
                          "Reversal pending" if self.reversals else "", "",
                          "id " + self.terminal_id,
                          self.shown_minute + ("  online" if self.host_online else " offline"))
