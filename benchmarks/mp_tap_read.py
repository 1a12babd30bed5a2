# Runs under MicroPython: the board's PN532 driver and EMV read (firmware/pn532.py,
# emv.py) on the reader's stream (a file descriptor, non-blocking, as unix_main --nfc
# gets it), from the first look for a card to the card read. Prints key=value pairs for
# benchmarks/tap_to_pan.py.
import gc
import sys
import time

import emv
import pn532
import wallclock


class Terminal:   # what the read takes from the terminal: its contactless CVM limit
    cvm_limit = 100000


stream = open(int(sys.argv[1]), "r+b")
reader = pn532.PN532(stream)
gc.collect()
free_before = gc.mem_free()
tg = None
t_poll = time.ticks_ms()
while not isinstance(tg, int) or not tg:
    tg = reader.poll(time.ticks_ms())
    if isinstance(tg, str):
        print("error=" + tg.replace(" ", "_"))
        sys.exit(1)
    time.sleep_ms(5)
t0 = time.ticks_us()
wallclock.set_time(time.time() if time.time() > 1577836800 else 1795334400)
pan, expiry, service_code, masked, icc = emv.read(reader, tg, 2500, Terminal())
t1 = time.ticks_us()
reader.release(tg)
reader.wipe()
print("read_us=%d icc_bytes=%d heap_low=%d poll_ms=%d" % (
    time.ticks_diff(t1, t0), len(icc), free_before - gc.mem_free(),
    time.ticks_diff(time.ticks_ms(), t_poll)))
