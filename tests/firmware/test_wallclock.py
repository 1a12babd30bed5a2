# The board's clock takes only plausible times from the link, and only plausible UTC
# offsets from the terminal's record.
import wallclock

NOV_2026 = 1795305600


def test_a_plausible_time_and_offset_are_taken():
    assert wallclock.set_time(NOV_2026)
    assert wallclock.set_utc_offset(480)
    assert wallclock.now() - NOV_2026 < 5
    assert wallclock.local_hhmm() == "08:00"


def test_implausible_times_are_refused_and_the_clock_kept():
    assert wallclock.set_time(NOV_2026)
    for bad in (0, -5, 2 ** 62, 4102444800, "1795305600", True, None):
        assert not wallclock.set_time(bad), bad
    assert wallclock.now() - NOV_2026 < 5


def test_implausible_offsets_are_refused_and_the_offset_kept():
    assert wallclock.set_time(NOV_2026) and wallclock.set_utc_offset(60)
    for bad in ("+08:00", 841, -721, 8.5, True, None):
        assert not wallclock.set_utc_offset(bad), bad
    assert wallclock.local_hhmm() == "01:00"


def test_a_new_time_keeps_the_offset():
    # the bridge's STATUS resets the time many times a day; the offset is the terminal's
    assert wallclock.set_utc_offset(-300) and wallclock.set_time(NOV_2026)
    assert wallclock.local_hhmm() == "19:00"
    assert wallclock.set_time(NOV_2026 + 3600) and wallclock.local_hhmm() == "20:00"


def test_offsets_across_midnight_and_in_half_hours():
    assert wallclock.set_time(NOV_2026 + 23 * 3600)     # 23:00 UTC
    for offset, shown in ((0, "23:00"), (330, "04:30"), (840, "13:00"), (-720, "11:00")):
        assert wallclock.set_utc_offset(offset)
        assert wallclock.local_hhmm() == shown, (offset, wallclock.local_hhmm())
