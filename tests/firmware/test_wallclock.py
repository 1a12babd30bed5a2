# The board's clock takes only plausible times (the bridge's) and UTC offsets (the
# terminal record's, which app.py passes with each time).
import wallclock

NOV_2026 = 1795305600


def test_a_plausible_time_and_offset_are_taken():
    assert wallclock.set_time(NOV_2026, 480)
    assert wallclock.now() - NOV_2026 < 5
    assert wallclock.local_hhmm() == "08:00"


def test_implausible_times_are_refused_and_the_clock_kept():
    assert wallclock.set_time(NOV_2026, 0)
    for bad in (0, -5, 2 ** 62, 4102444800, "1795305600", True, None):
        assert not wallclock.set_time(bad), bad
    assert wallclock.now() - NOV_2026 < 5


def test_implausible_offsets_are_refused_and_the_clock_kept():
    assert wallclock.set_time(NOV_2026, 60)
    for bad in ("+08:00", 841, -721, 8.5, True):
        assert not wallclock.set_time(NOV_2026 + 3600, bad), bad
    assert wallclock.now() - NOV_2026 < 5
    assert wallclock.local_hhmm() == "01:00"
    assert wallclock.set_time(NOV_2026, None) and wallclock.local_hhmm() == "01:00"


def test_without_an_offset_the_demo_merchants_is_shown():
    # a terminal record without one: UTC+8, where the demo issuer's alerts are written
    assert wallclock.set_time(NOV_2026) and wallclock.local_hhmm() == "08:00"


def test_offsets_across_midnight_and_in_half_hours():
    for offset, shown in ((0, "23:00"), (330, "04:30"), (840, "13:00"), (-720, "11:00")):
        assert wallclock.set_time(NOV_2026 + 23 * 3600, offset)     # 23:00 UTC
        assert wallclock.local_hhmm() == shown, (offset, wallclock.local_hhmm())
