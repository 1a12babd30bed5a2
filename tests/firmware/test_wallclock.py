# The board's clock takes only plausible times from the link; the local time on the
# screen is at the terminal's own UTC offset (app.py sets it from the record).
import wallclock

NOV_2026 = 1795305600


def test_a_plausible_time_is_taken_and_shown_at_the_offset():
    assert wallclock.set_time(NOV_2026)
    wallclock.utc_offset_min = 480
    assert wallclock.now() - NOV_2026 < 5
    assert wallclock.local_hhmm() == "08:00"


def test_implausible_times_are_refused_and_the_clock_kept():
    assert wallclock.set_time(NOV_2026)
    for bad in (0, -5, 2 ** 62, 4102444800, "1795305600", True, None):
        assert not wallclock.set_time(bad), bad
    assert wallclock.now() - NOV_2026 < 5


def test_a_new_time_keeps_the_offset():
    # the bridge's STATUS resets the time many times a day; the offset is the terminal's
    wallclock.utc_offset_min = -300
    assert wallclock.set_time(NOV_2026) and wallclock.local_hhmm() == "19:00"
    assert wallclock.set_time(NOV_2026 + 3600) and wallclock.local_hhmm() == "20:00"


def test_offsets_across_midnight_and_in_half_hours():
    assert wallclock.set_time(NOV_2026 + 23 * 3600)     # 23:00 UTC
    for offset, shown in ((0, "23:00"), (330, "04:30"), (840, "13:00"), (-720, "11:00")):
        wallclock.utc_offset_min = offset
        assert wallclock.local_hhmm() == shown, (offset, wallclock.local_hhmm())
