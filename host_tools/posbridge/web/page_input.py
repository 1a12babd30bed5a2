"""What a page may send, checked before anything acts on it. A page is not trusted: any
tab on the machine can open the websocket, so every message is bounded, parsed and held
to this list; anything else is refused with a reason and changes nothing.

    {"type": "key", "key": "5"}        a PIN pad key: 0-9, C (clear), B (backspace),
                                       X (cancel), E (enter)
    {"type": "swipe", "card": 3}       swipe the card with that number in the page's list
    {"type": "bad_swipe"}              a swipe the reader could not read
    {"type": "tap", "card": 3}         the card with that number enters the contactless
                                       reader's field
    {"type": "faults", "slow": true, "unavailable": false, "bad_mac": false}
    {"type": "power_cut"}              kill the firmware and boot it again on its flash
    {"type": "ping", "n": 7}           answered {"type": "pong", "n": 7} at once: the
                                       websocket's own round trip, the baseline of the
                                       key-to-display time (benchmarks/console_keys.py)

The page's Tap button is enabled when the terminal's hello says "contactless": true (the
emulated board has its contactless reader).
"""
import json
from dataclasses import dataclass

from ..board.peripherals import PIN_PAD_KEYS

MAX_MESSAGE = 512          # bytes: the largest legitimate message is some 80
FAULT_NAMES = ("slow", "unavailable", "bad_mac")


class PageInputError(ValueError):
    pass


@dataclass(frozen=True)
class Key:
    key: str


@dataclass(frozen=True)
class Swipe:
    card: int


@dataclass(frozen=True)
class Tap:
    card: int


@dataclass(frozen=True)
class BadSwipe:
    pass


@dataclass(frozen=True)
class SetFaults:
    slow: bool
    unavailable: bool
    bad_mac: bool


@dataclass(frozen=True)
class PowerCut:
    pass


@dataclass(frozen=True)
class Ping:
    n: int


def parse(raw, card_ids) -> object:
    """The command in the page's message `raw` (str or bytes), for a console whose cards
    are numbered `card_ids`; PageInputError says what is wrong."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise PageInputError("not UTF-8 text") from None
    if not isinstance(raw, str):
        raise PageInputError("not text")
    if len(raw.encode("utf-8", "replace")) > MAX_MESSAGE:
        raise PageInputError(f"message over {MAX_MESSAGE} bytes")
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError):
        raise PageInputError("not JSON") from None
    if not isinstance(msg, dict):
        raise PageInputError("not a JSON object")
    kind = msg.get("type")
    if kind == "key":
        key = msg.get("key")
        if not (isinstance(key, str) and len(key) == 1 and key in PIN_PAD_KEYS):
            raise PageInputError(f"key: one of {PIN_PAD_KEYS}")
        return Key(key)
    if kind in ("swipe", "tap"):
        card = msg.get("card")
        if isinstance(card, bool) or not isinstance(card, int) or card not in card_ids:
            raise PageInputError("card: the number of one of the listed cards")
        return Swipe(card) if kind == "swipe" else Tap(card)
    if kind == "bad_swipe":
        return BadSwipe()
    if kind == "faults":
        values = {name: msg.get(name, False) for name in FAULT_NAMES}
        if not all(isinstance(v, bool) for v in values.values()):
            raise PageInputError(f"faults: true or false for {', '.join(FAULT_NAMES)}")
        return SetFaults(**values)
    if kind == "power_cut":
        return PowerCut()
    if kind == "ping":
        n = msg.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 2 ** 31:
            raise PageInputError("ping: n, a number from 0 to 2**31 - 1")
        return Ping(n)
    raise PageInputError("type: key, swipe, tap, bad_swipe, faults, power_cut or ping")
