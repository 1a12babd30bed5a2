# Heap of the card reader and PIN pad drivers, under the real interpreter:
#   MICROPYPATH=firmware:tests/firmware .venv/bin/micropython -X heapsize=64k \
#       tests/firmware/bench_peripherals.py
# Reports only (no limits asserted). The card and PIN are made-up test data, never printed.
import gc
import time  # noqa: F401  (built in, no heap; imported here so it is not counted)

from fwtest import ScriptedStream, FakeClock

BODY = b";4000123456789017=2612201987650123?\x03"
LRC = 0
for b in BODY:
    LRC ^= b
RECORD = b"\x02" + BODY + bytes((LRC,))

gc.collect()
free_start = gc.mem_free()
import card_reader  # noqa: E402  (and wallclock, which it imports)
import digit_entry  # noqa: E402
import keypad  # noqa: E402
gc.collect()
free_imported = gc.mem_free()
free_ready = free_imported

reader = card_reader.CardReader(ScriptedStream(), now=lambda: None)
keys = keypad.KeyReader(ScriptedStream())
clock = FakeClock()
entry = digit_entry.PinEntry(keys, clock)
gc.collect()
free_drivers = gc.mem_free()

before = gc.mem_alloc()
reader.stream.feed(RECORD)
card = reader.poll()
swipe_alloc = gc.mem_alloc() - before

before = gc.mem_alloc()
keys.stream.feed(b"1234E")
result = entry.poll()
pin_alloc = gc.mem_alloc() - before
assert type(card) is card_reader.Card and result[0] == "pin"
gc.collect()
free_after = gc.mem_free()

print("heap (64k): free at start %d; after importing card_reader+keypad+digit_entry %d (modules %d bytes)"
      % (free_start, free_imported, free_start - free_imported))
print("drivers built (CardReader, KeyReader, PinEntry): %d bytes"
      % (free_ready - free_drivers))
print("one swipe allocated %d bytes (incl. the test stream's chunk), PIN entry %d bytes"
      % (swipe_alloc, pin_alloc))
print("after one swipe and one PIN entry, gc.collect(): free %d (%d below the import figure:"
      " the drivers, the Card and the PIN result)" % (free_after, free_imported - free_after))
del card, result
gc.collect()
print("results dropped, gc.collect(): free %d" % gc.mem_free())
