# Heap and time of the terminal's cryptography, under the real interpreter:
#   MICROPYPATH=firmware:tests/firmware .venv/bin/micropython -X heapsize=64k \
#       tests/firmware/bench_crypto.py
# Reports only (no limits asserted). Uses the reference initial key to make the register
# records (key_loading.py, before anything is measured); the test PIN is fixed test data
# and is never printed.
import gc
import time

from key_loading import record_at
from wipe import wipe

# the initial key and its ID of the X9.24-3-2017 test vector supplement, AES-128 BDK set;
# written here, not loaded, so that parsing the vectors file does not count in the heap
IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")
IKID = bytes.fromhex("1234567890123456")
PAN = "4111111111111111"
REQUEST = bytes(200)
# the counter's lowest set bit is how many future keys its transaction derives (none at
# 16 one-bits)
COUNTERS = (1, 0x100, 0x80000000, 0xFFFF0000)
RECORDS = [bytes(record_at(IK, IKID, c)) for c in COUNTERS]

gc.collect()
free_start = gc.mem_free()
import dukpt  # noqa: E402
import cmac  # noqa: E402
import pinblock  # noqa: E402
gc.collect()
free_imported = gc.mem_free()


def one_transaction(record):
    tk, ksn = dukpt.take(record)
    pin_key, mac_key = dukpt.working_keys(
        tk, ksn, (dukpt.KEY_USAGE_PIN_ENCRYPTION, dukpt.KEY_USAGE_MAC_GENERATION))
    wipe(tk)
    block = pinblock.make_block(pin_key, bytearray(b"1234"), PAN)
    mac = cmac.aes_cmac(mac_key, REQUEST)
    wipe(pin_key)
    wipe(mac_key)
    return block, mac


def us(fn, *args):
    t = time.ticks_us()
    fn(*args)
    return time.ticks_diff(time.ticks_us(), t)


print("heap (64k): free at start %d, after importing dukpt+cmac+pinblock %d (modules %d bytes)"
      % (free_start, free_imported, free_start - free_imported))

for counter, record in zip(COUNTERS, RECORDS):
    record = bytearray(record)
    gc.collect()
    before = gc.mem_free()
    result = one_transaction(record)
    after = gc.mem_free()
    gc.collect()
    kept = gc.mem_free()
    print("counter %08X: one transaction (registers, PIN+MAC keys, PIN block, CMAC of 200 B)"
          " allocated %d bytes; %d still held after gc.collect() (the block and MAC)"
          % (counter, before - after, before - kept))
    del result

ROUNDS = 100
for counter, record in zip(COUNTERS, RECORDS):
    gc.collect()
    total = 0
    for _ in range(ROUNDS):
        total += us(dukpt.take, bytearray(record))
    print("take(%08X): %d us" % (counter, total // ROUNDS))
