# Heap and time of the terminal's cryptography, under the real interpreter:
#   MICROPYPATH=firmware .venv/bin/micropython -X heapsize=64k \
#       tests/firmware/bench_crypto.py
# Reports only (no limits asserted). Uses the reference initial key; the test PIN is fixed
# test data and is never printed.
import gc
import time

gc.collect()
free_start = gc.mem_free()
import dukpt  # noqa: E402
import cmac  # noqa: E402
import pinblock  # noqa: E402
from wipe import wipe  # noqa: E402
gc.collect()
free_imported = gc.mem_free()

# the initial key and its ID of the X9.24-3-2017 test vector supplement, AES-128 BDK set;
# written here, not loaded, so that parsing the vectors file does not count in the heap
IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")
IKID = bytes.fromhex("1234567890123456")
PAN = "4111111111111111"
REQUEST = bytes(200)


def one_transaction(counter):
    pin_key, mac_key = dukpt.working_keys(
        IK, IKID, counter, (dukpt.KEY_USAGE_PIN_ENCRYPTION, dukpt.KEY_USAGE_MAC_GENERATION))
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

for counter in (1, 0x5555AAAA, 0xFFFF0000):
    gc.collect()
    before = gc.mem_free()
    result = one_transaction(counter)
    after = gc.mem_free()
    gc.collect()
    kept = gc.mem_free()
    print("counter %08X (%2d one-bits): one transaction (PIN+MAC keys, PIN block, CMAC of 200 B)"
          " allocated %d bytes; %d still held after gc.collect() (the 16-byte block and MAC)"
          % (counter, dukpt.one_bits(counter), before - after, before - kept))
    del result

ROUNDS = 200
for counter in (1, 0xFF, 0xFFFF, 0xFFFF0000):
    gc.collect()
    total = 0
    for _ in range(ROUNDS):
        total += us(dukpt.transaction_key, IK, IKID, counter)
    bits = dukpt.one_bits(counter)
    print("transaction_key(%08X): %d one-bits, %d us, %.2f us per derivation step"
          % (counter, bits, total // ROUNDS, total / ROUNDS / bits))

tk = dukpt.transaction_key(IK, IKID, 1)
total = 0
for _ in range(ROUNDS):
    total += us(dukpt.working_key, tk, IKID, 1, dukpt.KEY_USAGE_PIN_ENCRYPTION)
print("working_key: %d us" % (total // ROUNDS))
total = 0
for _ in range(ROUNDS):
    total += us(pinblock.make_block, IK, bytearray(b"1234"), PAN)
print("make_block: %d us" % (total // ROUNDS))
total = 0
for _ in range(ROUNDS):
    total += us(cmac.aes_cmac, IK, REQUEST)
print("aes_cmac(200 bytes): %d us" % (total // ROUNDS))
total = 0
for _ in range(ROUNDS):
    total += us(one_transaction, 0xFFFF0000)
print("whole transaction at 16 one-bits: %d us" % (total // ROUNDS))
