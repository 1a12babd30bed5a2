"""Wall-clock time as told by the bridge.

The board has no battery-backed clock we can trust, and MicroPython's epoch differs
between ports (2000 on the ESP32, 1970 on unix), so the time is kept as the bridge's
unix seconds plus the ticks elapsed since it was told. The local time on the screen is
the merchant's: the UTC offset is a setting of the terminal (its provisioning record,
which app.py passes with each time), not of the PC the bridge runs on, so the screen
agrees with the cardholder's alert."""
import time

_base_unix = None
_base_ticks = 0
_utc_offset_min = 480   # the demo merchant's (UTC+8), for a record without one


# What may be set: a time between 2020 and 2100 (the bridge's), an offset between UTC-12
# and UTC+14 in minutes (the record's). Anything else is refused and the clock kept: a
# far-future time would make date arithmetic crawl, and a text offset would break every
# idle screen.
_EARLIEST = 1577836800   # 2020-01-01T00:00:00Z
_LATEST = 4102444800     # 2100-01-01T00:00:00Z


def set_time(unix_seconds, utc_offset_min=None):
    """True if taken. utc_offset_min None keeps the offset last set."""
    global _base_unix, _base_ticks, _utc_offset_min
    if not (type(unix_seconds) is int and _EARLIEST <= unix_seconds < _LATEST):
        return False
    if utc_offset_min is not None and not (type(utc_offset_min) is int
                                           and -720 <= utc_offset_min <= 840):
        return False
    _base_unix = unix_seconds
    _base_ticks = time.ticks_ms()
    if utc_offset_min is not None:
        _utc_offset_min = utc_offset_min
    return True


def is_set():
    return _base_unix is not None


def now():
    """Unix seconds UTC, or None until the bridge has told the time."""
    if _base_unix is None:
        return None
    return _base_unix + time.ticks_diff(time.ticks_ms(), _base_ticks) // 1000


def local_now():
    """The merchant's local time as seconds since 1970, or None until told."""
    t = now()
    return None if t is None else t + _utc_offset_min * 60


def local_hhmm():
    t = local_now()
    if t is None:
        return "--:--"
    minutes = (t // 60) % 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)
