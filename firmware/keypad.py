"""PIN pad on a UART: one ASCII byte per key press. docs/peripherals.md has the keys.

    '0'..'9' digit    'C' clear (all digits)    'B' backspace (last digit)
    'X' cancel        'E' enter                 any other byte: ignored (line noise)

KeyReader turns the stream into key events. It stays loaded while the terminal is
idle (keys pressed there are dropped); the digit entry that can hold a PIN
(digit_entry.py) is loaded only for a visit. The receive buffer is zeroed byte by
byte as keys are taken, so no PIN digit is left behind in it.
"""
from micropython import const

KEY_CLEAR = const(0x43)        # 'C'
KEY_BACKSPACE = const(0x42)    # 'B'
KEY_CANCEL = const(0x58)       # 'X'
KEY_ENTER = const(0x45)        # 'E'


def _is_key(b):
    return (0x30 <= b <= 0x39 or b == KEY_ENTER or b == KEY_CLEAR
            or b == KEY_BACKSPACE or b == KEY_CANCEL)


class KeyReader:
    """Key events from a stream whose readinto() returns None or 0 when empty."""

    def __init__(self, stream, rx_size=8):
        self.stream = stream
        self.rx = bytearray(rx_size)
        self.pos = 0
        self.len = 0

    def poll(self):
        """The next key (an int, one of the bytes above), or None when none is waiting."""
        rx = self.rx
        while True:
            while self.pos < self.len:
                b = rx[self.pos]
                rx[self.pos] = 0             # a PIN digit is not left behind in here
                self.pos += 1
                if _is_key(b):
                    return b
            try:
                got = self.stream.readinto(rx)
            except OSError:                  # e.g. EIO from a pseudo-terminal with no peer
                got = None
            if not got:
                return None
            self.pos = 0
            self.len = got

    def flush(self):
        """Drop keys pressed before a prompt was on the screen."""
        while self.poll() is not None:
            pass
