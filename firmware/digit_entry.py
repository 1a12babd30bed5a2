"""Digits keyed on the PIN pad (keypad.py): DigitEntry is the state machine (clear,
backspace, cancel, enter, a timeout from the last key, a length limit) that PinEntry
specialises for the PIN and AmountEntry for a purchase's amount.

The clear PIN stays in this module until Enter hands it over, in a bytearray of its
own that pinblock.make_block() wipes. Every buffer here that held a digit is
overwritten as soon as the digit is consumed, erased, or the entry ends, however it
ends. Nothing here prints, logs or formats a digit: the display gets masked() only.
Loaded for a visit only: the terminal unloads it once the PIN is handed over.
"""
from time import ticks_diff

from keypad import KEY_BACKSPACE, KEY_CANCEL, KEY_CLEAR, KEY_ENTER
from wipe import wipe

CANCEL = ("cancel",)
TIMEOUT = ("timeout",)


def is_digit_key(key):
    return 0x30 <= key <= 0x39


class DigitEntry:
    """Digits keyed into a preallocated buffer, with the keys' common meaning.

    poll() returns None while entry goes on, or the entry's result once: CANCEL,
    TIMEOUT, or what on_enter() returns. Subclasses decide with two hooks:
      accept_digit(key) -> bool   may this digit be appended (default: room is left)
      on_enter() -> result|None   None keeps entering (set self.rejected to say why)
    `rejected` holds the reason of the last refused Enter until the next key.
    `timeout_ms` counts from the last key (a person pauses to think), on the
    ticks_ms `clock`. The buffer is wiped whenever the entry ends."""

    def __init__(self, keys, clock, max_len, timeout_ms):
        self.keys = keys
        self.clock = clock
        self.max_len = max_len
        self.timeout_ms = timeout_ms
        self.buf = bytearray(max_len)
        self.count = 0
        self.rejected = None
        self.done = False
        self.changed = True
        self.last_key_at = clock()

    def restart(self):
        """Start again with no digits (e.g. a second PIN try), timer from now."""
        self.wipe()
        self.rejected = None
        self.done = False
        self.changed = True
        self.last_key_at = self.clock()

    def poll(self):
        if self.done:
            return None
        while True:
            key = self.keys.poll()
            if key is None:
                break
            self.last_key_at = self.clock()
            result = self._key(key)
            if result is not None:
                return self._finish(result)
        if ticks_diff(self.clock(), self.last_key_at) >= self.timeout_ms:
            return self._finish(TIMEOUT)
        return None

    def take_changed(self):
        """True once after what the screen shows (count, rejected) has changed."""
        changed = self.changed
        self.changed = False
        return changed

    def masked(self):
        return "*" * self.count

    def wipe(self):
        wipe(self.buf)
        self.count = 0

    # -- hooks --

    def accept_digit(self, key):
        return self.count < self.max_len

    def on_enter(self):
        raise NotImplementedError

    # -- inside --

    def _key(self, key):
        if self.rejected is not None:
            self.rejected = None
            self.changed = True
        if is_digit_key(key):
            if self.accept_digit(key):       # beyond the limit a digit is ignored
                self.buf[self.count] = key
                self.count += 1
                self.changed = True
        elif key == KEY_BACKSPACE:
            if self.count:
                self.count -= 1
                self.buf[self.count] = 0
                self.changed = True
        elif key == KEY_CLEAR:
            self.wipe()
            self.changed = True
        elif key == KEY_CANCEL:
            return CANCEL
        elif key == KEY_ENTER:
            return self.on_enter()
        return None

    def _finish(self, result):
        self.wipe()
        self.done = True
        self.changed = True
        return result


class PinEntry(DigitEntry):
    """PIN entry: ('pin', bytearray of the ASCII digits) on Enter with min_len..max_len
    digits, CANCEL, or TIMEOUT. Enter with too few digits sets too_short and goes on.
    ISO 9564-1 allows 4 to 12 digits."""

    def __init__(self, keys, clock, min_len=4, max_len=12, timeout_ms=30000):
        if not 1 <= min_len <= max_len:
            raise ValueError("PIN length limits")
        DigitEntry.__init__(self, keys, clock, max_len, timeout_ms)
        self.min_len = min_len

    @property
    def too_short(self):
        return self.rejected == "too_short"

    def on_enter(self):
        n = self.count
        if n < self.min_len:
            self.rejected = "too_short"
            self.changed = True
            return None
        pin = bytearray(n)
        buf = self.buf
        for i in range(n):                   # byte by byte: a slice would leave a copy
            pin[i] = buf[i]
        return ("pin", pin)


class AmountEntry(DigitEntry):
    """A purchase amount keyed in minor units (1250 is 12.50 in a 2-decimal currency):
    ('amount', int) on Enter, CANCEL or TIMEOUT. A leading zero, and a digit that would
    take the amount past max_amount, are ignored: what the screen shows can always be
    paid. Enter with no digits keeps entering."""

    def __init__(self, keys, clock, max_amount, timeout_ms=60000):
        DigitEntry.__init__(self, keys, clock, len(str(max_amount)), timeout_ms)
        self.max_amount = max_amount

    def value(self):
        v = 0
        buf = self.buf
        for i in range(self.count):
            v = v * 10 + buf[i] - 0x30
        return v

    def accept_digit(self, key):
        v = self.value() * 10 + key - 0x30
        return 0 < v <= self.max_amount

    def on_enter(self):
        if not self.count:
            return None
        return ("amount", self.value())
