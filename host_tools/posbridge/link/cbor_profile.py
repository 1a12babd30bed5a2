"""The link's CBOR profile on the host (docs/protocol.md, "CBOR profile"), over cbor2.

Integers, byte and text strings, arrays, maps, booleans, null; no floats, no tags;
deterministic encoding per RFC 8949 section 4.2.1. cbor2's canonical=True sorts map
keys length-first (RFC 8949 4.2.3), which differs from 4.2.1's bytewise order when a
map mixes key types, so keys are sorted here and cbor2 writes them in that order
(it already writes the shortest form of every argument)."""
import cbor2

INT_MIN = -(2 ** 64)
INT_MAX = 2 ** 64 - 1
MAX_DEPTH = 8      # arrays and maps inside one another, the top one included
MAX_ITEMS = 256    # data items in all: every key, value and container counts


class ProfileError(ValueError):
    pass


def _ordered(obj, depth=0):
    if depth > 16:
        raise ProfileError("nesting deeper than 16")
    if obj is None or isinstance(obj, (bool, str, bytes)):
        return obj
    if isinstance(obj, int):
        if not INT_MIN <= obj <= INT_MAX:
            raise ProfileError(f"integer {obj} is outside 64 bits")
        return obj
    if isinstance(obj, (list, tuple)):
        return [_ordered(x, depth + 1) for x in obj]
    if isinstance(obj, dict):
        pairs = sorted(((cbor2.dumps(_ordered(k, depth + 1)), k, _ordered(v, depth + 1))
                        for k, v in obj.items()), key=lambda t: t[0])
        return {k: v for _, k, v in pairs}
    raise ProfileError(f"{type(obj).__name__} is not in the profile")


def encode(obj) -> bytes:
    return cbor2.dumps(_ordered(obj))


def decode(data: bytes):
    """Decode one item; ProfileError for anything outside the profile or not encoded
    deterministically (a MAC over these bytes must mean one thing only)."""
    try:
        obj = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError) as exc:
        raise ProfileError(f"not CBOR: {exc}") from None
    _within_bounds(obj)
    if encode(obj) != bytes(data):
        raise ProfileError("not in deterministic encoding (or trailing bytes)")
    return obj


def _within_bounds(obj):
    """The decoder's limits, as the board's (firmware/cbor.py) and docs/protocol.md set
    them: nesting, item count, and map keys that are not arrays or maps (cbor2 gives
    those as tuples and frozen dicts, which the board refuses)."""
    left = [MAX_ITEMS]

    def walk(item, depth):
        left[0] -= 1
        if left[0] < 0:
            raise ProfileError(f"more than {MAX_ITEMS} data items")
        if _container(item):
            if depth >= MAX_DEPTH:
                raise ProfileError(f"nesting deeper than {MAX_DEPTH}")
            if isinstance(item, (list, tuple)):
                for x in item:
                    walk(x, depth + 1)
                return
            for k, v in item.items():
                if _container(k):
                    raise ProfileError("a map key that is an array or a map")
                walk(k, depth + 1)
                walk(v, depth + 1)
    walk(obj, 0)


def _container(item) -> bool:
    return isinstance(item, (list, tuple, dict, cbor2.frozendict))
