"""Small deterministic CBOR codec for the board (RFC 8949).

Profile (docs/protocol.md, "CBOR profile"): unsigned and negative
integers up to 64 bits, byte strings, UTF-8 text, arrays, maps, false/true/null.
No floats, no tags, no indefinite lengths, no other simple values.

encode(obj) -> bytes follows the core deterministic encoding requirements of
RFC 8949 section 4.2.1, so a MAC over the bytes can be recomputed by the peer.
Map keys are sorted bytewise on their encoded form (4.2.1), NOT length-first
(4.2.3, RFC 7049 "canonical"); the two agree while a map's keys share one major type.

decode(data, max_depth=8, max_items=256) accepts only that deterministic form
and refuses anything else with CBORError (a ValueError): every declared length
is checked against the bytes really left before anything is allocated,
nesting and the total number of data items are bounded, and trailing bytes
after the top-level item are refused.

Runs unchanged under MicroPython and CPython.
"""


class CBORError(ValueError):
    """Messages are a word or two: every long string costs the board RAM for as long as
    this module is loaded."""


_LIMIT = 1 << 64  # arguments are at most 64 bits (RFC 8949 section 3)
_ENC_DEPTH = 16  # bounds encoder recursion (a self-referencing list must not crash)


# ---- encoding -------------------------------------------------------------

def encode(obj):
    out = bytearray()
    _enc(out, obj, _ENC_DEPTH)
    return bytes(out)


def _head(out, mt, val):
    # Preferred serialization: the shortest argument form (RFC 8949 4.2.1, 3.1)
    mt <<= 5
    if val < 24:
        out.append(mt | val)
        return
    if val < 0x100:
        n, ai = 1, 24
    elif val < 0x10000:
        n, ai = 2, 25
    elif val < 0x100000000:
        n, ai = 4, 26
    else:
        n, ai = 8, 27
    out.append(mt | ai)
    out.extend(val.to_bytes(n, "big"))


def _key0(entry):
    return entry[0]


def _enc(out, obj, depth):
    # identity tests first: MicroPython's bool is not an int, CPython's is
    if obj is False:
        out.append(0xF4)
    elif obj is True:
        out.append(0xF5)
    elif obj is None:
        out.append(0xF6)
    elif isinstance(obj, int):
        if obj >= 0:
            if obj >= _LIMIT:
                raise CBORError("int range")
            _head(out, 0, obj)
        else:
            if obj < -_LIMIT:
                raise CBORError("int range")
            _head(out, 1, -1 - obj)
    elif isinstance(obj, str):
        try:
            b = obj.encode("utf-8")
        except UnicodeError:
            raise CBORError("not UTF-8")
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        if isinstance(obj, memoryview):
            obj = bytes(obj)  # len() of a memoryview counts items, not bytes
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, (list, tuple, dict)):
        if depth <= 0:
            raise CBORError("nesting")
        if isinstance(obj, dict):
            # Keys sorted by the bytewise order of their encodings (RFC 8949 4.2.1)
            items = []
            for k, v in obj.items():
                if isinstance(k, tuple):
                    raise CBORError("array key")
                kb = bytearray()
                _enc(kb, k, depth - 1)
                items.append((kb, v))
            items.sort(key=_key0)
            _head(out, 5, len(items))
            for kb, v in items:
                out.extend(kb)
                _enc(out, v, depth - 1)
        else:
            _head(out, 4, len(obj))
            for v in obj:
                _enc(out, v, depth - 1)
    else:
        raise CBORError("type " + type(obj).__name__)


# ---- decoding -------------------------------------------------------------

def decode(data, max_depth=8, max_items=256):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("decode needs bytes-like data")
    mv = memoryview(data)  # index arithmetic only, the input is never copied whole
    try:
        if not len(mv):
            raise CBORError("empty")
        st = [0, max_items]  # [read position, data items still allowed]
        obj = _item(mv, st, max_depth)
        if st[0] != len(mv):
            raise CBORError("trailing")
        return obj
    finally:
        # CPython: free the buffer export at once, or a bytearray input could not
        # be resized while a CBORError's traceback is still alive
        rel = getattr(mv, "release", None)
        if rel:
            rel()


_SIMPLE = {20: False, 21: True, 22: None}


def _item(mv, st, depth):
    if st[1] <= 0:
        raise CBORError("item count")
    st[1] -= 1
    end = len(mv)
    p = st[0]
    if p >= end:
        raise CBORError("truncated")
    ib = mv[p]
    p += 1
    mt = ib >> 5
    ai = ib & 31
    if mt == 7:
        # Major type 7 (RFC 8949 3.3): only false/true/null belong to the profile
        if ai in _SIMPLE:
            st[0] = p
            return _SIMPLE[ai]
        if 25 <= ai <= 27:
            raise CBORError("float")
        if ai == 31:
            raise CBORError("indefinite")
        if 28 <= ai <= 30:
            raise CBORError("reserved")
        raise CBORError("simple")
    if ai < 24:
        val = ai
    elif ai < 28:
        n = 1 << (ai - 24)
        if p + n > end:
            raise CBORError("truncated")
        val = 0
        for i in range(p, p + n):
            val = (val << 8) | mv[i]
        p += n
        # Shortest form only (RFC 8949 4.2.1), so equal values have equal bytes
        if val < (24 if n == 1 else 1 << (4 * n)):
            raise CBORError("not shortest")
    elif ai == 31:
        raise CBORError("indefinite")
    else:
        raise CBORError("reserved")
    if mt == 0:
        st[0] = p
        return val
    if mt == 1:
        st[0] = p
        return -1 - val
    if mt == 6:
        raise CBORError("tag")
    left = end - p
    if mt <= 3:
        # Check the declared length against the bytes really left before copying
        if val > left:
            raise CBORError("truncated")
        e = p + val
        st[0] = e
        if mt == 2:
            return bytes(mv[p:e])
        # RFC 8949 3.1: text must be valid UTF-8; check strictly (RFC 3629), since
        # MicroPython's own decoder lets overlong forms and surrogates through
        if not _utf8_ok(mv, p, e):
            raise CBORError("not UTF-8")
        return str(mv[p:e], "utf-8")
    if depth <= 0:
        raise CBORError("nesting")
    # Every array element and map key/value takes at least one byte
    count = val if mt == 4 else 2 * val
    if count > left:
        raise CBORError("truncated")
    if count > st[1]:
        raise CBORError("item count")
    st[0] = p
    depth -= 1
    if mt == 4:
        out = []
        for _ in range(val):
            out.append(_item(mv, st, depth))
        return out
    out = {}
    pk = pe = -1  # encoded extent of the previous key
    for i in range(val):
        ks = st[0]
        k = _item(mv, st, depth)
        ke = st[0]
        if isinstance(k, (list, dict)):
            raise CBORError("map key")
        # Keys strictly increasing in bytewise order (RFC 8949 4.2.1); this also
        # refuses duplicates (RFC 8949 5.6)
        if pk >= 0 and not _before(mv, pk, pe, ks, ke):
            raise CBORError("key order")
        pk, pe = ks, ke
        out[k] = _item(mv, st, depth)
        if len(out) != i + 1:
            # distinct in CBOR but equal in Python (1 and true, 0 and false)
            raise CBORError("key clash")
    return out


def _before(mv, a, ae, b, be):
    # True if bytes mv[a:ae] sort strictly before mv[b:be]; compared in place
    while a < ae and b < be:
        x = mv[a]
        y = mv[b]
        if x != y:
            return x < y
        a += 1
        b += 1
    return a == ae and b < be


def _utf8_ok(mv, p, e):
    # Well-formed UTF-8 per RFC 3629 section 4: no overlong forms, no surrogates,
    # nothing above U+10FFFF
    while p < e:
        b = mv[p]
        p += 1
        if b < 0x80:
            continue
        if 0xC2 <= b <= 0xDF:
            n, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= b <= 0xEF:
            n = 2
            lo = 0xA0 if b == 0xE0 else 0x80
            hi = 0x9F if b == 0xED else 0xBF
        elif 0xF0 <= b <= 0xF4:
            n = 3
            lo = 0x90 if b == 0xF0 else 0x80
            hi = 0x8F if b == 0xF4 else 0xBF
        else:
            return False
        if p + n > e or not lo <= mv[p] <= hi:
            return False
        for i in range(p + 1, p + n):
            if not 0x80 <= mv[i] <= 0xBF:
                return False
        p += n
    return True
