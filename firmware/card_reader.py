"""Magnetic-stripe card reader on a UART: records in, a checked Card or a CardError out.
docs/peripherals.md is the specification of the reader's bytes.

Record:   STX (0x02) | track 2 as ASCII, ';' ... '?' | ETX (0x03) | LRC
Bad read: STX | 'E' | ETX | LRC
LRC = XOR of every byte after STX up to and including ETX.

Track 2 (ISO/IEC 7813): ';' PAN '=' YYMM service-code discretionary-data '?'.
Only the PAN, the expiry and the service code leave this module. The discretionary
data (CVV and the issuer's own fields) is never copied out: the record buffer and the
receive buffer are overwritten as soon as a record is parsed or dropped.

poll() is called from the main loop; it reads what the stream has, never waits, and
allocates nothing per byte (one Card or CardError per record).
Nothing here prints or logs: repr(Card) masks the PAN.
"""
import wallclock
from wipe import wipe as _wipe

from micropython import const

# const() with a leading underscore: inlined by MicroPython's compiler, no heap at all
_STX = const(0x02)
_ETX = const(0x03)
_ERROR_MARK = const(0x45)        # 'E': the reader could not read the stripe
_START_SENTINEL = const(0x3B)    # ';'
_END_SENTINEL = const(0x3F)      # '?'
_SEPARATOR = const(0x3D)         # '='

# ISO/IEC 7813 allows 40 characters on track 2 including sentinels and the track's own
# LRC, so a record is at most 42 bytes; 48 leaves slack for readers that pad.
MAX_RECORD = const(48)
MAX_TRACK = const(45)               # MAX_RECORD less STX, ETX and LRC
PAN_MIN = const(12)
PAN_MAX = const(19)                 # ISO/IEC 7812-1
# ISO/IEC 7813 service code, first digit: 1 international interchange, 2 international
# with IC where feasible, 5 national only, 6 national with IC where feasible, 7 private
# (bilateral agreement). 0, 3, 4, 8 are reserved and 9 is test: not accepted.
# (2 and 6 ask for the chip where feasible; this terminal has no chip reader.)
_SERVICE_FIRST_OK = b"12567"
# A card is valid through the last day of its expiry month in local time. The terminal
# knows UTC; it refuses only once the month has ended in the westernmost time zone
# (UTC-12), and the issuer makes the exact decision (response code 54).
EXPIRY_GRACE_S = const(43200)   # 12 hours

_IDLE = const(0)        # waiting for STX
_DATA = const(1)        # collecting track bytes until ETX
_LRC = const(2)         # the next byte is the LRC
_DISCARD = const(3)     # record too long: dropped until the next STX


class Card:
    """A checked track 2: pan (str of digits), expiry ('YYMM'), service_code (3 digits)."""

    def __init__(self, pan, expiry, service_code):
        self.pan = pan
        self.expiry = expiry
        self.service_code = service_code

    def __repr__(self):
        return "Card(%s, %s, %s)" % (mask_pan(self.pan), self.expiry, self.service_code)


# CardError.reason values
NO_READ = "no_read"              # the reader sent its error record
BAD_LRC = "lrc"
BAD_FORMAT = "format"            # sentinels, separator, non-digits, fields too short
TOO_LONG = "too_long"
BAD_PAN_LENGTH = "pan_length"
BAD_LUHN = "luhn"
BAD_EXPIRY = "expiry"            # month not 01..12
EXPIRED = "expired"
BAD_SERVICE_CODE = "service_code"
_READ_ERRORS = (NO_READ, BAD_LRC, BAD_FORMAT, TOO_LONG)


class CardError:
    """Why a swipe gave no card. Returned, not raised: a bad swipe is an everyday event.
    reason: one of the codes above; message: fits one 16-column line; retry: swiping
    again may help (show "Try again"). Made per bad swipe rather than kept as constants:
    nine resident instances would cost ~1.5 KB of heap for something rare."""

    def __init__(self, reason):
        self.reason = reason
        self.retry = reason in _READ_ERRORS
        if self.retry:
            self.message = "Read error"
        elif reason == EXPIRED:
            self.message = "Card expired"
        else:
            self.message = "Invalid card"

    def __repr__(self):
        return "CardError(%s)" % self.reason


def mask_pan(pan):
    """For people to read: first 6 and last 4 digits (PCI DSS 3.4), as the host masks;
    a PAN under 13 digits shows its last 4 only."""
    n = len(pan)
    if n >= 13:
        return pan[:6] + "*" * (n - 10) + pan[-4:]
    if n > 4:
        return "*" * (n - 4) + pan[-4:]
    return "*" * n


def luhn_ok(digits, start, end):
    """ISO/IEC 7812-1 Annex B check on ASCII digits digits[start:end] (check digit last):
    from the right, every second digit is doubled (minus 9 above 9); the sum ends in 0."""
    total = 0
    double = False
    i = end - 1
    while i >= start:
        d = digits[i] - 0x30
        if double:
            d += d
            if d > 9:
                d -= 9
        total += d
        double = not double
        i -= 1
    return total % 10 == 0


def _digits(buf, start, end):
    for i in range(start, end):
        b = buf[i]
        if b < 0x30 or b > 0x39:
            return False
    return True


def _two(buf, i):
    return (buf[i] - 0x30) * 10 + buf[i + 1] - 0x30


def _is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = bytes((31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31))


def year_month(unix_seconds):
    """(year, month) in UTC of a unix time. Written out rather than time.gmtime, whose
    epoch is 2000 on the ESP32 and 1970 on unix."""
    days = unix_seconds // 86400
    year = 1970
    while True:
        n = 366 if _is_leap(year) else 365
        if days < n:
            break
        days -= n
        year += 1
    month = 0
    while True:
        n = _MONTH_DAYS[month] + (1 if month == 1 and _is_leap(year) else 0)
        if days < n:
            break
        days -= n
        month += 1
    return year, month + 1


def expired(yy, mm, now_unix):
    """True when expiry year 20yy, month mm has ended (with EXPIRY_GRACE_S); False when
    now_unix is None (clock not told yet: the issuer checks the expiry as well)."""
    if now_unix is None or now_unix < 0:
        return False
    year, month = year_month(now_unix - EXPIRY_GRACE_S)
    # YY is two digits (ISO/IEC 7813); cards are issued for a few years, so 20YY.
    return (2000 + yy) * 12 + mm < year * 12 + month


def parse_track2(track, n, now_unix):
    """Card or CardError from track[:n], the bytes between STX and ETX. Reads only."""
    if n == 1 and track[0] == _ERROR_MARK:
        return CardError(NO_READ)
    if n < 2 or track[0] != _START_SENTINEL or track[n - 1] != _END_SENTINEL:
        return CardError(BAD_FORMAT)
    end = n - 1                              # index of the end sentinel
    sep = 1
    while sep < end and track[sep] != _SEPARATOR:
        sep += 1
    # after '=': YYMM, service code, then discretionary data, all digits (ISO/IEC 7813)
    if sep == end or end - sep - 1 < 7:
        return CardError(BAD_FORMAT)
    if not _digits(track, 1, sep) or not _digits(track, sep + 1, end):
        return CardError(BAD_FORMAT)
    pan_len = sep - 1
    if pan_len < PAN_MIN or pan_len > PAN_MAX:
        return CardError(BAD_PAN_LENGTH)
    if not luhn_ok(track, 1, sep):
        return CardError(BAD_LUHN)
    yy = _two(track, sep + 1)
    mm = _two(track, sep + 3)
    if mm < 1 or mm > 12:
        return CardError(BAD_EXPIRY)
    if expired(yy, mm, now_unix):
        return CardError(EXPIRED)
    if track[sep + 5] not in _SERVICE_FIRST_OK:
        return CardError(BAD_SERVICE_CODE)
    mv = memoryview(track)
    return Card(str(mv[1:sep], "ascii"), str(mv[sep + 1:sep + 5], "ascii"),
                str(mv[sep + 5:sep + 8], "ascii"))


class CardReader:
    """Polled reader driver. `stream` has readinto() returning None or 0 when empty;
    `now` gives unix seconds or None (default: the bridge's wall clock)."""

    def __init__(self, stream, now=None, rx_size=16):
        self.stream = stream
        self.now = now if now is not None else wallclock.now
        self.buf = bytearray(MAX_TRACK)     # the record being assembled
        self.n = 0
        self.rx = bytearray(rx_size)
        self.rx_pos = 0
        self.rx_len = 0
        self.state = _IDLE
        self.lrc = 0
        # counters, for the diagnostics screen
        self.records = 0                    # complete records, good or not
        self.lrc_errors = 0
        self.overlong = 0
        self.restarts = 0                   # STX inside a record: the previous one was cut

    def poll(self):
        """Card or CardError for the next complete record, or None."""
        rx = self.rx
        while True:
            if self.rx_pos >= self.rx_len:
                try:
                    got = self.stream.readinto(rx)
                except OSError:              # e.g. EIO from a pseudo-terminal with no peer
                    got = None
                if not got:
                    return None
                self.rx_pos = 0
                self.rx_len = got
            while self.rx_pos < self.rx_len:
                b = rx[self.rx_pos]
                rx[self.rx_pos] = 0          # no track byte lingers in the receive buffer
                self.rx_pos += 1
                result = self._byte(b)
                if result is not None:
                    return result

    def _byte(self, b):
        state = self.state
        if state == _LRC:
            self.state = _IDLE
            self.records += 1
            if b != self.lrc:
                self.lrc_errors += 1
                result = CardError(BAD_LRC)
            else:
                result = parse_track2(self.buf, self.n, self.now())
            self._clear()
            return result
        if b == _STX:
            if state == _DATA:
                self.restarts += 1
                self._clear()
            self.state = _DATA
            self.n = 0
            self.lrc = 0
            return None
        if state != _DATA:                   # noise between records, or a dropped one
            return None
        self.lrc ^= b
        if b == _ETX:
            self.state = _LRC
            return None
        if self.n == MAX_TRACK:
            self.overlong += 1
            self.state = _DISCARD
            self._clear()
            return CardError(TOO_LONG)
        self.buf[self.n] = b
        self.n += 1
        return None

    def _clear(self):
        _wipe(self.buf)
        self.n = 0
        self.lrc = 0                         # a checksum of the track says something too
