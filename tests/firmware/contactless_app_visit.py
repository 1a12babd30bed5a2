# A contactless purchase on the real application (app.Terminal), in one MicroPython
# process: the bridge is a peer Link over scripted streams, the reader a FakeChip with
# a FakeCard. Run by tests/firmware/test_contactless_app.py, which prepares the flash
# under CPython (keys.bin, and the MAC verification key of the first KSN in answer.key)
# so that no key derivation runs here:
#   micropython -X heapsize=64k contactless_app_visit.py STATE_DIR AMOUNT PIN
# Prints "SCREEN <heap free> <title>|<line>|..." for every screen, "REQUEST <mtype>
# <body bytes> <payload bytes> <frame bytes>", then "DONE".
import gc
import sys

import cbor
from app import Terminal
from link import Link
from fwtest import ScriptedStream, FakeClock
from store import Store

STATE, AMOUNT, PIN = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()


class Panel:
    def __init__(self):
        self.last = ""
        self.count = 0

    def show(self, buf, lines=()):
        gc.collect()
        self.last = "|".join(lines)
        self.count += 1
        print("SCREEN", gc.mem_free(), self.last)


def main():
    clock = FakeClock(1000)
    board = ScriptedStream()
    keys = ScriptedStream()
    panel = Panel()
    from nfc_fakes import FakeChip, FakeCard
    chip = FakeChip(FakeCard(), asleep=True)
    FakeChip = FakeCard = None
    term = Terminal(board, panel, clock=clock, store=Store(STATE), pinpad_stream=keys,
                    nfc_stream=chip)
    bridge = Link(ScriptedStream(), clock)
    sent = []

    def step(n=1):
        for _ in range(n):
            term.step()
            out = board.take_written()
            bridge.stream.feed(out)
            bridge.poll()
            board.feed(bridge.stream.take_written())
            clock.advance(20)
            while True:
                msg = bridge.receive()
                if msg is None:
                    break
                if msg[0] in (0x10, 0x12):
                    n_frame = len(out)
                    print("REQUEST", msg[0], len(msg[1]), len(msg[1]) + 4, n_frame)
                sent.append(msg)

    def until(text, limit=400):
        for _ in range(limit):
            if text in panel.last:
                return
            step()
        raise AssertionError("no screen with " + text + ", last: " + panel.last)

    step(3)
    bridge.send(0x02, cbor.encode({1: 1, 2: 1767225600, 3: "0.1.0"}))
    until("tap card")
    until("CONTACTLESS")
    keys.feed(b"2")
    until("Enter amount")
    keys.feed(AMOUNT + b"E")
    for _ in range(400):
        if "Enter PIN" in panel.last or "Processing" in panel.last:
            break
        step()
    if "Enter PIN" in panel.last:
        keys.feed(PIN + b"E")
        until("Processing")
    for _ in range(50):
        step()
        if sent and sent[-1][0] == 0x12:
            break
    request = sent[-1][1]
    # the issuer's approval, MAC'd under the first KSN's MAC verification key
    import hashlib
    import cmac
    with open(STATE + "/answer.key", "rb") as f:
        key = f.read()
    req = cbor.decode(request)
    rsp = {1: req[1], 2: req[2], 3: "00", 4: "123456", 5: 100000, 6: 100000, 7: 156,
           8: {1: 2, 2: "sms", 3: "138****5678"}, 9: req[6],
           17: hashlib.sha256(request).digest()}
    rsp[15] = cmac.aes_cmac(key, cbor.encode(rsp), 8)
    body = cbor.encode(rsp)
    req = rsp = key = hashlib = cmac = None
    sys.modules.pop("cmac", None)
    bridge.send(0x13, body)
    until("APPROVED")
    keys.feed(b"E")
    until("tap card")
    print("DONE")


main()
