"""The same seeded corpora (corpus.py) through the host's decoders, on CPython: the link
framing, the CBOR profile, and protocol.parse under every rule in turn. Each input ends
in a value or the documented error (FrameError, ProfileError, SchemaError); anything
else is a crash, kept with its input."""
import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path

from posbridge.link import cbor_profile, framing
from posbridge.link import protocol as p

from . import corpus

def _frames(data):
    splitter = framing.FrameSplitter()
    got = splitter.feed(data) + splitter.feed(b"\x00")
    for piece in bytes(data).split(b"\x00"):
        try:
            got.append(framing.decode_frame(piece))
        except framing.FrameError:
            pass
    for payload in got:
        if not 0 < len(payload) <= framing.MAX_PAYLOAD:
            raise AssertionError(f"a payload of {len(payload)} bytes")
    return bool(got)


def _board_cbor():
    """The board's decoder (firmware/cbor.py runs unchanged on CPython), to hold the
    host's to the same answers: a body one side takes and the other refuses is a bug."""
    path = Path(__file__).resolve().parents[1] / "firmware" / "cbor.py"
    spec = importlib.util.spec_from_file_location("board_cbor", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BOARD = _board_cbor()


def _cbor(data):
    try:
        _BOARD.decode(data)
        board = True
    except _BOARD.CBORError:
        board = False
    try:
        value = cbor_profile.decode(data)
    except cbor_profile.ProfileError:
        if board:
            raise AssertionError("the board decodes it, the host refuses it") from None
        return False
    if not board:
        raise AssertionError("the host decodes it, the board refuses it")
    if cbor_profile.encode(value) != data:
        raise AssertionError("decoded, but encodes to other bytes")
    return True


def _parse(data, n):
    """The first byte picks the rule (corpus.message_seed), the rest is the body."""
    rule = corpus.RULES[data[0] % len(corpus.RULES)] if data else corpus.RULES[0]
    try:
        fields = p.parse(rule, data[1:])
    except p.SchemaError:
        return False
    if not set(fields) <= set(p.KEYS[rule]):
        raise AssertionError("parse gave fields the rule does not have")
    return True


def _iso8583(data, n):
    """An ISO 8583 message from the issuer host's side: its fields, then the CBOR
    request they carry; Iso8583Error or MappingError, the documented errors."""
    from posbridge.link import iso8583_map, iso8583_spec
    from posbridge.link.iso8583_codecs import MappingError
    try:
        fields = iso8583_spec.unpack(data)
    except iso8583_spec.Iso8583Error:
        return False
    try:
        iso8583_map.iso_to_request(fields)
    except MappingError:
        return False
    return True


@dataclass
class HostResult:
    target: str
    inputs: int = 0
    values: int = 0
    errors: int = 0
    crashes: list = field(default_factory=list)   # (index, exception type, message)
    max_us: int = 0
    seconds: float = 0.0


TARGETS = {"host framing": ("framing", lambda d, n: _frames(d)),
           "host CBOR profile": ("cbor", lambda d, n: _cbor(d)),
           "host messages (protocol.parse, every rule)": ("messages", _parse),
           "host ISO 8583 parser (iso8583_spec.unpack, iso8583_map)": ("iso8583", _iso8583)}


def run(name: str, count: int, seed: int) -> tuple:
    corpus_name, check = TARGETS[name]
    items = list(corpus.inputs(corpus_name, count, seed))
    out = HostResult(name)
    t_start = time.monotonic()
    for n, data in enumerate(items):
        t0 = time.perf_counter()
        try:
            if check(data, n):
                out.values += 1
            else:
                out.errors += 1
        except Exception as exc:  # the finding itself: anything not documented
            out.crashes.append((n, type(exc).__name__, str(exc)[:200]))
        out.max_us = max(out.max_us, int((time.perf_counter() - t0) * 1e6))
        out.inputs += 1
    out.seconds = time.monotonic() - t_start
    return out, items
