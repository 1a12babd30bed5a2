# Atomic persistent state: save replaces, a leftover temp file is ignored, corruption is loud.
import os

from store import Store, StoreError
from fwtest import raises

DIR = "/tmp/pos-store-test-%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/pos-store-test"


def fresh():
    try:
        os.mkdir(DIR)
    except OSError:
        pass
    for name in os.listdir(DIR):
        os.remove(DIR + "/" + name)
    return Store(DIR)


def test_missing_gives_default():
    s = fresh()
    assert s.load("counters") is None
    assert s.load("counters", {"trace": 0}) == {"trace": 0}


def test_save_then_load_and_replace():
    s = fresh()
    s.save("counters", {"trace": 1, "ksn_counter": 7})
    s.save("counters", {"trace": 2, "ksn_counter": 8})
    assert s.load("counters") == {"trace": 2, "ksn_counter": 8}
    assert sorted(os.listdir(DIR)) == ["counters.json"]


def test_half_written_temp_file_does_not_replace_the_record():
    s = fresh()
    s.save("counters", {"trace": 5})
    with open(s.path("counters") + ".tmp", "w") as f:
        f.write('{"trace": 6')  # power cut mid-write: rename never happened
    assert s.load("counters") == {"trace": 5}
    s.save("counters", {"trace": 6})
    assert s.load("counters") == {"trace": 6}


def test_corrupt_record_is_an_error_not_a_reset():
    s = fresh()
    with open(s.path("counters"), "w") as f:
        f.write("not json")
    raises(StoreError, s.load, "counters")
    with open(s.path("counters"), "w") as f:
        f.write("[1, 2]")
    raises(StoreError, s.load, "counters")


def test_a_binary_record_is_read_into_the_callers_buffer_and_replaced_whole():
    s = fresh()
    buf = bytearray(4)
    assert s.read("keys.bin", buf) == 0            # none yet
    s.write("keys.bin", bytearray(b"\x01\x02\x03\x04"))
    with open(DIR + "/keys.bin.tmp", "wb") as f:
        f.write(b"\x09")                           # a write the power cut short
    assert s.read("keys.bin", buf) == 4 and buf == bytearray(b"\x01\x02\x03\x04")
    s.write("keys.bin", b"\x05\x06\x07\x08")
    assert s.read("keys.bin", buf) == 4 and buf == bytearray(b"\x05\x06\x07\x08")
    assert sorted(os.listdir(DIR)) == ["keys.bin"]
