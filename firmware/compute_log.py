"""The board's own compute times of a visit's phase, in µs, on the emulator's log stream,
for make bench (benchmarks/terminal_time.py). Loaded by transaction.py only when there is
a log stream (the emulator); the board has none and never loads it.

    compute request DISPLAY BUILD JOURNAL SEND
        the Processing screen; DUKPT, PIN block, MAC and CBOR; the journal on flash;
        framing and writing to the link
    compute answer 0 CHECK JOURNAL DISPLAY
        MAC and binding checks and the result lines; the journal on flash; the result
        screen"""
import time


def write(stream, phase, t0, t1, t2, t3, t4):
    stream.write("compute %s %d %d %d %d\n" % (phase, time.ticks_diff(t1, t0),
                                               time.ticks_diff(t2, t1),
                                               time.ticks_diff(t3, t2),
                                               time.ticks_diff(t4, t3)))
