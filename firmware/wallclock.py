"""Wall-clock time as told by the bridge.

The board has no battery-backed clock we can trust, and MicroPython's epoch differs
between ports (2000 on the ESP32, 1970 on unix), so the time is kept as the bridge's
unix seconds plus the ticks elapsed since it was told. The local time on the screen is
the merchant's: the UTC offset is a setting of the terminal (its provisioning record),
not of the PC the bridge runs on, so the screen agrees with the cardholder's alert."""
import time

_base_unix = None
_base_ticks = 0
# minutes east of UTC: the merchant's, which app.py sets from the terminal's record at
# boot; until then (or for a record without one) the demo merchant's, UTC+8. A variable,
# not a setter: a setter's new name and function object pushed a purchase's smallest
# heap past 60 KiB (make bench)
utc_offset_min = 480


# What the link may set: a time between 2020 and 2100. Anything else is refused and the
# clock kept: a far-future time would make date arithmetic crawl.
_EARLIEST = 1577836800   # 2020-01-01T00:00:00Z
_LATEST = 4102444800     # 2100-01-01T00:00:00Z


def set_time(unix_seconds):
    """The bridge's time, unix seconds UTC: True if taken."""
    global _base_unix, _base_ticks
    if not (type(unix_seconds) is int and _EARLIEST <= unix_seconds < _LATEST):
        return False
    _base_unix = unix_seconds
    _base_ticks = time.ticks_ms()
    return True


def is_set():
    return _base_unix is not None


def now():
    """Unix seconds UTC, or None until the bridge has told the time."""
    if _base_unix is None:
        return None
    return _base_unix + time.ticks_diff(time.ticks_ms(), _base_ticks) // 1000


def local_hhmm():
    t = now()
    if t is None:
        return "--:--"
    minutes = (t // 60 + utc_offset_min) % 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)
