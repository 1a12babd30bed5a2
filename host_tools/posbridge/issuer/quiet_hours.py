"""A cardholder's quiet hours: a daily window of local time, "22:00-07:00", during which
alerts other than security alerts wait (notify.py). The window may wrap midnight; its
start is inside it, its end is not."""
import datetime
import re
from dataclasses import dataclass

_WINDOW = re.compile(r"([0-9]{1,2}):([0-9]{2})-([0-9]{1,2}):([0-9]{2})")
_DAY = 24 * 60


@dataclass(frozen=True)
class QuietHours:
    start: int                  # minutes after local midnight, 0..1439
    end: int

    @classmethod
    def parse(cls, text: str) -> "QuietHours":
        """"22:00-07:00" -> QuietHours(1320, 420); ValueError for anything else."""
        match = _WINDOW.fullmatch(str(text).strip())
        if not match:
            raise ValueError(f"quiet hours {text!r}: HH:MM-HH:MM expected, e.g. 22:00-07:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"quiet hours {text!r}: hours 00..23, minutes 00..59")
        if (h1, m1) == (h2, m2):
            raise ValueError(f"quiet hours {text!r}: start and end are the same")
        return cls(h1 * 60 + m1, h2 * 60 + m2)

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"

    def contains(self, local: datetime.datetime) -> bool:
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end      # wraps midnight

    def end_after(self, local: datetime.datetime) -> datetime.datetime:
        """The first end of the window at or after `local` (same timezone, seconds 0)."""
        minute = local.hour * 60 + local.minute
        wait = (self.end - minute) % _DAY
        base = local.replace(second=0, microsecond=0)
        return base + datetime.timedelta(minutes=wait)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def local_datetime(unix_time: int, utc_offset_min: int) -> datetime.datetime:
    tz = datetime.timezone(datetime.timedelta(minutes=utc_offset_min))
    return datetime.datetime.fromtimestamp(unix_time, tz)
