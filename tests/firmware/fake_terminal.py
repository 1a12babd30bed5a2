# A fake of app.Terminal for the purchase, journal and reversal tests, and the issuer's
# side of a financial message for them (CPython and MicroPython alike). The terminal is
# provisioned with the standard's test key set on a flash of its own (a fresh directory
# under /tmp): its DUKPT registers as provisioning writes them, no initial key.
import binascii
import gc
import os
import sys

from fwtest import FakeClock, ScriptedStream
from keypad import KeyReader
from store import Store

TERMINAL_ID = "T0000001"
MERCHANT_ID = "104110070110001"
MERCHANT_NAME = "TEST SHOP"
PAN = "4761730000000011"
CARD = (PAN, "3012", "201", "476173******0011")


_KEYS = []


def standard_keys():
    """(initial key, initial key ID) of the standard's test key set, as hex; read once:
    a 64 KiB heap has no room to parse the vectors file for every message."""
    if not _KEYS:
        # ANSI X9.24-3-2017 supplement test vectors, AES-128 BDK set (reference_vectors.py)
        from reference_vectors import load
        ref = load()
        _KEYS.append(ref["initial_key"])
        _KEYS.append(ref["initial_key_id"])
        ref = load = None
        # its code is some 3 KB of a 64 KiB heap the visit under test needs
        sys.modules.pop("reference_vectors", None)
        gc.collect()
    return _KEYS


def fresh_dir():
    path = "/tmp/pos-fake-terminal-" + binascii.hexlify(os.urandom(4)).decode()
    os.mkdir(path)
    return path


def remove_dir(path):
    for name in os.listdir(path):
        os.remove(path + "/" + name)
    os.rmdir(path)


class Display:
    def __init__(self):
        self.screens = []

    def show(self, *lines):
        self.screens.append(lines)

    def text(self):
        return "\n".join(self.screens[-1]) if self.screens else ""

    def all_text(self):
        return "\n".join("\n".join(s) for s in self.screens)


class Link:
    """Takes what is sent; `journal_at_send` is the journal as it was on flash at the
    moment each message was handed over (the order matters: journal first)."""

    def __init__(self, store):
        self.store = store
        self.sent = []
        self.journal_at_send = []
        self.accept = True

    def send(self, mtype, body):
        if not self.accept:
            return False
        self.sent.append((mtype, bytes(body)))
        self.journal_at_send.append(self.store.load("journal", {}).get("entries", []))
        return True

    def poll(self):
        pass   # what was sent is taken at once: nothing waits to be framed


class FakeTerminal:
    """Stands in for app.Terminal: the attributes the visit and reversal code reads."""

    def __init__(self, directory=None):
        self.directory = directory or fresh_dir()
        self.store = Store(self.directory)
        self.store.save("terminal", {"terminal_id": TERMINAL_ID,
                                     "merchant_id": MERCHANT_ID,
                                     "merchant_name": MERCHANT_NAME})
        if not self.store.read("keys.bin", bytearray(1)):
            self.provision()
        self.terminal_id = TERMINAL_ID
        self.clock = FakeClock(1000)
        self.display = Display()
        self.keys = KeyReader(ScriptedStream())
        self.link = Link(self.store)
        self.host_online = True
        self.fault_log = None   # the emulator's log stream; none here, as on the board
        # as app.Terminal starts: the journal not yet looked at. Not kept loaded: the
        # visits under test load it when they need it, as on the board
        import journal
        journal.boot(self)
        journal = None
        sys.modules.pop("journal", None)

    def provision(self, counter=1, trace=0):
        """keys.bin with `counter` next and `trace` the last trace number used."""
        from key_loading import record_at
        key, key_id = standard_keys()
        self.store.write("keys.bin", record_at(bytes.fromhex(key), bytes.fromhex(key_id),
                                               counter, trace))

    def next_identity(self):
        """(next DUKPT counter, last trace number) on flash."""
        record = bytearray(17)
        self.store.read("keys.bin", record)
        return (int.from_bytes(bytes(record[9:13]), "big"),
                int.from_bytes(bytes(record[13:17]), "big"))

    def press(self, keys):
        self.keys.stream.feed(keys)

    def journal(self):
        return self.store.load("journal", {}).get("entries", [])

    def holds(self, secret):
        """Whether any file on the flash holds `secret`, as bytes or as hex."""
        text = binascii.hexlify(secret)
        for name in os.listdir(self.directory):
            with open(self.directory + "/" + name, "rb") as f:
                data = f.read()
            if secret in data or text in data \
                    or text in binascii.hexlify(data):
                return True
        return False

    def close(self):
        remove_dir(self.directory)


def answer_for(request, fields, mac_ok=True):
    """The issuer's response to the request body `request`: its terminal id, trace and
    KSN echoed, the SHA-256 of its bytes named (key 17), `fields` added (or put in
    their place), MAC'd under the MAC verification key of its KSN (one bit off when not
    mac_ok)."""
    import cbor
    import cmac
    import hashlib
    req = cbor.decode(request)
    key = ksn_key(req[6], 0x2001)   # MAC verification
    rsp = {1: req[1], 2: req[2], 9: req[6], 17: hashlib.sha256(request).digest()}
    for k in fields:
        rsp[k] = fields[k]
    mac = bytearray(cmac.aes_cmac(key, cbor.encode(rsp), 8))
    if not mac_ok:
        mac[0] ^= 1
    rsp[15] = bytes(mac)
    return cbor.encode(rsp)


def request_mac_ok(request):
    """True if the request's MAC (key 7) verifies under its KSN's MAC generation key."""
    import cbor
    import cmac
    req = cbor.decode(request)
    mac = req.pop(7)
    key = ksn_key(req[6], 0x2000)   # MAC generation
    return cmac.aes_cmac(key, cbor.encode(req), 8) == mac


def ksn_key(ksn, usage):
    """The working key `usage` of a KSN of the standard's test key set, walked from its
    initial key as the issuer does (key_loading.py)."""
    from key_loading import working_key
    key, key_id = standard_keys()
    assert bytes(ksn[:8]) == bytes.fromhex(key_id)
    return working_key(bytes.fromhex(key), bytes.fromhex(key_id),
                       int.from_bytes(bytes(ksn[8:12]), "big"), usage)
