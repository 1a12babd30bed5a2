"""A balance inquiry, a purchase, a purchase that is reversed, and contactless purchases
(a card tapped on the virtual PN532, below the CVM limit without PIN and above it with),
on the emulated board,
for the heap and size figures of make bench: heap free on each screen of the visit, the
request and response on the wire, and the smallest heap the visit still completes in."""
from pathlib import Path

from posbridge.board.emulator import Emulator, EmulatorError
from posbridge.link.framing import encode_frame
from posbridge.issuer.faults import corrupt_mac
from posbridge.board.peripherals import card_record
from posbridge.link import protocol as p

from .rig import bridged, demo_issuer

PAN = "4761730000000011"   # demo card: subscribed, SMS alerts (docs/issuer.md)


def balance_inquiry(firmware_dir: Path, heap: str = "64k"):
    """{'screens': [(title, heap free)], 'request': (payload, frame) bytes, 'response':
    ...} for one approved inquiry, or None if the board could not complete it."""
    def keys(emulator, start):
        emulator.answer_prompts([("1 Balance", "1"), ("Enter PIN", "1234E")], after=start)
        emulator.wait_for_screen("SMS sent to", timeout=30, after=start)
        emulator.pin_pad_sends(b"E")
    return _visit(firmware_dir, heap, keys, (p.BALANCE_REQUEST, p.BALANCE_RESPONSE))


# CNY 12.50 with the demo PIN
_PURCHASE = [("2 Purchase", "2"), ("Enter amount", "1250E"), ("Enter PIN", "1234E")]


def purchase(firmware_dir: Path, heap: str = "64k"):
    """The same for one approved purchase of CNY 12.50 with its SMS alert."""
    def keys(emulator, start):
        emulator.answer_prompts(_PURCHASE, after=start)
        emulator.wait_for_screen("SMS sent to", timeout=30, after=start)
        emulator.pin_pad_sends(b"E")
    return _visit(firmware_dir, heap, keys, (p.PURCHASE_REQUEST, p.PURCHASE_RESPONSE))


def reversed_purchase(firmware_dir: Path, heap: str = "64k"):
    """The same for a purchase whose answer fails its MAC on the way: the board records
    a reversal, shows "No charge", then sends the reversal and has it acknowledged."""
    def keys(emulator, start):
        emulator.answer_prompts(_PURCHASE, after=start)
        emulator.wait_for_screen("No charge", timeout=30, after=start)
        emulator.pin_pad_sends(b"E")
        emulator.wait_for_screen("Acknowledged", timeout=30, after=start)
    return _visit(firmware_dir, heap, keys, (p.REVERSAL_REQUEST, p.REVERSAL_RESPONSE),
                  issuer_wrapper=_DamagesPurchaseAnswers)


def contactless_purchase(firmware_dir: Path, heap: str = "64k"):
    """The same for a contactless purchase of CNY 25.00, at or below the terminal's CVM
    limit: the card tapped at idle and read once the amount is keyed, no PIN."""
    def keys(emulator, start):
        emulator.answer_prompts([("CONTACTLESS", "2"), ("Enter amount", "2500E")],
                                after=start, timeout=15)
        emulator.wait_for_screen("SMS sent to", timeout=30, after=start)
        emulator.pin_pad_sends(b"E")
    return _visit(firmware_dir, heap, keys, (p.PURCHASE_REQUEST, p.PURCHASE_RESPONSE),
                  tap=True)


def contactless_purchase_with_pin(firmware_dir: Path, heap: str = "64k"):
    """The same for CNY 1,500.00, above the CVM limit: the online PIN after the read."""
    def keys(emulator, start):
        emulator.answer_prompts([("CONTACTLESS", "2"), ("Enter amount", "150000E"),
                                 ("Enter PIN", "1234E")], after=start, timeout=15)
        emulator.wait_for_screen("SMS sent to", timeout=30, after=start)
        emulator.pin_pad_sends(b"E")
    return _visit(firmware_dir, heap, keys, (p.PURCHASE_REQUEST, p.PURCHASE_RESPONSE),
                  tap=True)


class _DamagesPurchaseAnswers:
    """The issuer, but every purchase answer leaves it with its MAC damaged (after the
    purchase was charged): the case the board reverses."""

    def __init__(self, issuer):
        self._issuer = issuer

    def __getattr__(self, name):
        return getattr(self._issuer, name)

    def handle(self, mtype, body):
        answer = self._issuer.handle(mtype, body)
        if mtype == p.PURCHASE_REQUEST:
            return corrupt_mac(p.PURCHASE_RESPONSE, answer)
        return answer


def _visit(firmware_dir, heap, keys, types, issuer_wrapper=None, tap=False):
    frames = {}

    def record(direction, mtype, seq, body):
        if mtype in types:
            payload = 4 + len(body)   # the link header and the body
            frames[mtype] = (payload, len(encode_frame(bytes(4) + bytes(body))))

    with demo_issuer() as issuer:
        emulator = Emulator(firmware_dir, heap=heap)
        try:
            with bridged(emulator, issuer_wrapper(issuer) if issuer_wrapper else issuer,
                         frame_log=record):
                # the idle screen comes twice at boot: after HELLO, and again once the
                # journal has been looked at for purchases a power cut left in flight
                first = emulator.wait_for_screen("Insert card", timeout=30)
                idle = emulator.wait_for_screen("Insert card", timeout=30,
                                                after=emulator.screens.index(first) + 1)
                start = emulator.screens.index(idle)
                if tap:
                    emulator.card_keys = issuer.ledger.keys
                    emulator.tap(PAN)
                else:
                    emulator.card_reader_sends(card_record(PAN, "3012"))
                keys(emulator, start)
                emulator.wait_for_screen("Insert card", after=len(emulator.screens) - 1)
        except EmulatorError:
            return None
        screens = [(s.lines[0] if s.lines else "", s.heap_free)
                   for s in emulator.screens[start:]]
        # a screen that shows a terminal error means the visit did not complete
        if any("Terminal error" in "\n".join(s.lines) for s in emulator.screens):
            return None
        return {"screens": screens, "request": frames.get(types[0]),
                "response": frames.get(types[1])}


def smallest_heap_kib(firmware_dir: Path, low: int = 32, high: int = 64, visit=None):
    """The smallest heap (KiB, to 1 KiB) in which the visit (a balance inquiry unless
    given) completes, or None if it does not complete in `high`."""
    visit = visit or balance_inquiry
    if visit(firmware_dir, f"{high}k") is None:
        return None
    while high - low > 1:
        mid = (low + high) // 2
        if visit(firmware_dir, f"{mid}k") is None:
            low = mid
        else:
            high = mid
    return high
