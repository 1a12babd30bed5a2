"""Hostile bytes at the host's decoders, with hypothesis: the link framing
(posbridge/link/framing.py), the CBOR profile (cbor_profile.py), the message parsers
(protocol.parse, every rule of SCHEMA) and the bridge that answers the board
(bridge.py). Every input ends in a value or the module's documented error (FrameError,
ProfileError, SchemaError; the bridge answers an ERROR), never anything else.

FUZZ_EXAMPLES sets the examples per property (make fuzz: 10,000; make test: a few
hundred). CALLS counts the inputs each property really ran, by its name, for make
fuzz's report. The ISO 8583 messages between the bridge and the issuer host are here
too: pyiso8583 under the project's spec, then the lossless mapping back to CBOR."""
import os
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posbridge.bridge import Bridge
from posbridge.link import cbor_profile, framing, iso8583_map, iso8583_spec
from posbridge.link import protocol as p
from posbridge.link.iso8583_codecs import MappingError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
CALLS: Counter = Counter()


def _flip(args):
    data, where, bit = args
    if not data:
        return data
    out = bytearray(data)
    out[where % len(out)] ^= 1 << bit
    return bytes(out)


def mutated(valid):
    """Valid inputs, some with a bit flipped or cut short: the inputs that get furthest."""
    flipped = st.tuples(valid, st.integers(0, 10 ** 6), st.integers(0, 7)).map(_flip)
    cut = st.tuples(valid, st.integers(0, 600)).map(lambda a: a[0][:a[1]])
    return st.one_of(valid, flipped, cut)


# ---- framing ----

payloads = st.binary(min_size=1, max_size=framing.MAX_PAYLOAD)
frames = payloads.map(lambda b: framing.encode_frame(b)[1:-1])   # between delimiters


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(frames)))
def test_a_frame_decodes_to_a_payload_or_a_frame_error(data):
    CALLS["test_a_frame_decodes_to_a_payload_or_a_frame_error"] += 1
    try:
        payload = framing.decode_frame(data)
    except framing.FrameError:
        return
    assert 0 < len(payload) <= framing.MAX_PAYLOAD
    assert framing.decode_frame(framing.encode_frame(payload)[1:-1]) == payload


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=300), mutated(frames.map(lambda f: f + b"\0"))),
                max_size=6))
def test_the_frame_splitter_takes_any_stream(chunks):
    CALLS["test_the_frame_splitter_takes_any_stream"] += 1
    splitter = framing.FrameSplitter()
    for chunk in chunks:
        for payload in splitter.feed(chunk):
            assert 0 < len(payload) <= framing.MAX_PAYLOAD


# ---- the CBOR profile ----

profile_values = st.recursive(
    st.one_of(st.integers(-2 ** 64, 2 ** 64 - 1), st.binary(max_size=40),
              st.text(max_size=20), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.integers(0, 30), inner, max_size=5)),
    max_leaves=20)
encodings = profile_values.map(cbor_profile.encode)


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(encodings)))
def test_cbor_decodes_to_a_value_or_a_profile_error(data):
    CALLS["test_cbor_decodes_to_a_value_or_a_profile_error"] += 1
    try:
        value = cbor_profile.decode(data)
    except cbor_profile.ProfileError:
        return
    # only the deterministic form is accepted: the value encodes back to the input
    assert cbor_profile.encode(value) == data


# ---- the message parsers ----

def _field_value(field):
    """Values of the field's type and some of others: what a peer might put there."""
    right = {"uint": st.integers(0, 2 ** 64 - 1), "int": st.integers(-2 ** 63, 2 ** 63),
             "tstr": st.text(max_size=40), "bstr": st.binary(max_size=40),
             "bool": st.booleans()}.get(field.type)
    if field.type == "map":
        right = bodies_for(field.limits)
    wrong = st.one_of(st.integers(-5, 2 ** 64 - 1), st.binary(max_size=8), st.text(max_size=8),
                      st.none(), st.lists(st.integers(), max_size=2))
    return st.one_of(right, right, wrong) if right is not None else wrong


def bodies_for(rule):
    """Maps with the rule's keys (some left out) and a stray key now and then."""
    table = p.TABLES[rule]
    known = st.fixed_dictionaries({}, optional={k: _field_value(f) for k, f in table.items()})
    stray = st.dictionaries(st.one_of(st.integers(0, 40), st.text(max_size=3)),
                            st.integers(0, 9), max_size=2)
    return st.tuples(known, stray).map(lambda t: {**t[1], **t[0]})


rules = st.sampled_from(sorted(p.SCHEMA))


@st.composite
def rule_and_body(draw):
    rule = draw(rules)
    fields = draw(bodies_for(rule))
    try:
        body = cbor_profile.encode(fields)
    except cbor_profile.ProfileError:
        body = b""
    return rule, draw(st.one_of(st.just(body), mutated(st.just(body)), st.binary(max_size=200)))


@FUZZ
@given(rule_and_body())
def test_a_message_parses_to_its_fields_or_a_schema_error(case):
    CALLS["test_a_message_parses_to_its_fields_or_a_schema_error"] += 1
    rule, body = case
    try:
        fields = p.parse(rule, body)
    except p.SchemaError:
        return
    assert set(fields) <= set(p.KEYS[rule])


# ---- the bridge, the board's peer ----

class _Link:
    def __init__(self):
        self.sent = []

    def send(self, mtype, body):
        self.sent.append((mtype, body))


types = st.one_of(st.sampled_from(sorted(p.TYPE_NAMES)), st.integers(0, 255))


@FUZZ
@given(types, st.one_of(st.binary(max_size=200), rule_and_body().map(lambda c: c[1])))
def test_the_bridge_answers_any_message_without_failing(mtype, body):
    CALLS["test_the_bridge_answers_any_message_without_failing"] += 1
    link = _Link()
    Bridge(link).handle(mtype, body)   # no issuer: a request gets ERROR 5
    for sent_type, sent in link.sent:
        assert sent_type in (p.ERROR, p.HELLO_REPLY, p.STATUS)
        p.parse("error" if sent_type == p.ERROR else
                "hello-reply" if sent_type == p.HELLO_REPLY else "bridge-status", sent)


# ---- ISO 8583, between the bridge and the issuer host ----

def _packed_request(case):
    """The ISO 8583 message of a request body the schema accepts, when the mapping
    carries it; the CBOR bytes themselves otherwise (still hostile input)."""
    rule, body = case
    mtype = p.SCHEMA[rule]["type"]
    try:
        return iso8583_spec.pack(iso8583_map.request_to_iso(mtype, body))
    except (MappingError, iso8583_spec.Iso8583Error, TypeError):
        return body


requests = st.sampled_from(["balance-request", "purchase-request", "reversal-request"])


@st.composite
def iso_messages(draw):
    rule = draw(requests)
    try:
        body = cbor_profile.encode(draw(bodies_for(rule)))
    except cbor_profile.ProfileError:   # a value out of the profile's range
        return b""
    return _packed_request((rule, body))


@FUZZ
@given(st.one_of(st.binary(max_size=300), mutated(iso_messages())))
def test_an_iso8583_message_parses_or_is_refused_as_a_format_error(data):
    CALLS["test_an_iso8583_message_parses_or_is_refused_as_a_format_error"] += 1
    try:
        fields = iso8583_spec.unpack(data)
    except iso8583_spec.Iso8583Error:
        return
    try:
        mtype, body = iso8583_map.iso_to_request(fields)
    except MappingError:
        return
    # what the host accepts is a request the board's schema accepts, and maps back
    p.parse(p.RULES[mtype][0], body)
    assert iso8583_map.request_to_iso(mtype, body) == fields
