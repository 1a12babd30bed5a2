"""The bridge (posbridge/bridge.py) with a mocked HostLink: handshake, liveness, errors
as data; the host's protocol tables against the board's (firmware/messages.py); how
messages are shown to a person (protocol.describe, masking)."""
import importlib.util
import logging
import sys
import threading
from pathlib import Path

import pycddl
import pytest

from tests.cpython_shims import install as install_cpython_shims
from hypothesis import given, settings
from hypothesis import strategies as st

import posbridge
from posbridge.link import pan as masking
from posbridge.link import protocol as p
from posbridge.bridge import Bridge
from posbridge.console import MaskingFilter
from posbridge.link.host_link import HostLink, LinkClosed, LinkFailed

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
CDDL = (ROOT / "docs" / "protocol.cddl").read_text()
CDDL_RULES = {p.HELLO: "hello", p.HELLO_REPLY: "hello-reply",
              p.STATUS_REQUEST: "status-request", p.STATUS: "status", p.ERROR: "error"}
NOW = 1_763_771_479.75  # the injected clock's time
HELLO_BODY = {1: 1, 2: "0.1.0", 3: "T0001"}
PAN = "4761739001010010"


def load_board_module(alias, filename):
    spec = importlib.util.spec_from_file_location(alias, FIRMWARE / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


board_messages = load_board_module("board_messages", "messages.py")


def board_link_module():
    """firmware/link.py under CPython, with MicroPython's tick functions on `time`."""
    install_cpython_shims()
    return load_board_module("board_link", "link.py")


def validate(mtype, body):
    pycddl.Schema(f"root = {CDDL_RULES[mtype]}\n" + CDDL).validate_cbor(bytes(body))


@pytest.fixture
def link(mocker):
    return mocker.Mock(spec=HostLink)


@pytest.fixture
def bridge(link):
    return Bridge(link, clock=lambda: NOW)


def replies(link):
    """What the bridge sent, decoded; every body checked to be deterministic CBOR."""
    out = []
    for call in link.send.call_args_list:
        mtype, body = call.args
        fields = p.decode_body(body)
        assert p.encode_body(fields) == body
        out.append((mtype, fields))
    return out


def only_reply(link):
    sent = replies(link)
    assert len(sent) == 1, sent
    return sent[0]


# ---- handshake ------------------------------------------------------------------

@pytest.fixture
def pc_time_zone(monkeypatch):
    """Set the bridge PC's time zone (TZ) for one test, and put it back after."""
    import time

    def set_zone(zone):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
    yield set_zone
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ["UTC0", "CST-8", "EST5EDT", "IST-5:30"])
def test_hello_gets_hello_reply_with_protocol_time_and_version_whatever_the_pc_zone(
        link, pc_time_zone, zone):
    # the board shows the merchant's local time from its own setting: the bridge PC's
    # zone must not reach it
    pc_time_zone(zone)
    bridge = Bridge(link, clock=lambda: NOW)
    bridge.handle(p.HELLO, p.encode_body(HELLO_BODY))
    mtype, fields = only_reply(link)
    assert mtype == p.HELLO_REPLY
    assert fields == {1: 1, 2: int(NOW), 3: posbridge.__version__}
    validate(mtype, link.send.call_args.args[1])


def test_hello_records_the_board_by_field_name(bridge):
    bridge.handle(p.HELLO, p.encode_body(HELLO_BODY))
    assert bridge.board == {"protocol": 1, "firmware": "0.1.0", "terminal_id": "T0001"}
    assert bridge.hello_count == 1


def test_hello_with_protocol_2_gets_error_3_about_hello(bridge, link):
    bridge.handle(p.HELLO, p.encode_body({**HELLO_BODY, 1: 2}))
    mtype, fields = only_reply(link)
    assert mtype == p.ERROR
    assert fields[1] == p.ERR_PROTOCOL_VERSION == 3
    assert fields[3] == p.HELLO == 1
    assert fields[2] == "bridge speaks protocol 1, not 2"
    validate(mtype, link.send.call_args.args[1])
    assert bridge.hello_count == 0 and bridge.board == {}


def test_error_text_fits_the_schema_whatever_the_hello_says(bridge, link):
    bridge.handle(p.HELLO, p.encode_body({**HELLO_BODY, 1: "v" * 80}))
    mtype, fields = only_reply(link)
    assert mtype == p.ERROR and fields[1] == p.ERR_PROTOCOL_VERSION
    assert len(fields[2].encode()) <= 60, f"{len(fields[2])} characters"
    validate(mtype, link.send.call_args.args[1])


def test_the_schema_refuses_the_retired_utc_offset_in_hello_reply():
    # key 4 (the bridge PC's UTC offset) is retired: a bridge that sends it is wrong
    body = p.encode_body({1: 1, 2: int(NOW), 3: posbridge.__version__, 4: 480})
    with pytest.raises(pycddl.ValidationError, match="unexpected key"):
        validate(p.HELLO_REPLY, body)


# ---- liveness -------------------------------------------------------------------

def test_status_request_gets_status_with_uptime_state_and_time(bridge, link):
    bridge.handle(p.STATUS_REQUEST, p.encode_body({}))
    mtype, fields = only_reply(link)
    assert mtype == p.STATUS
    assert set(fields) == {1, 3, 6}
    assert fields[3] == "ready"
    assert fields[6] == int(NOW)
    assert isinstance(fields[1], int) and fields[1] >= 0
    validate(mtype, link.send.call_args.args[1])


def test_board_status_is_stored_with_named_fields_and_not_answered(bridge, link):
    counters = {k: 10 * k for k in range(1, 11)}
    bridge.handle(p.STATUS, p.encode_body({1: 42, 2: 81234, 3: "idle", 4: counters}))
    assert bridge.board_status == {
        "uptime_s": 42, "heap_free": 81234, "state": "idle",
        "link": {"tx": 10, "rx": 20, "retransmits": 30, "duplicates": 40, "crc_errors": 50,
                 "framing_errors": 60, "oversize": 70, "bad_header": 80, "failures": 90,
                 "short_writes": 100}}
    link.send.assert_not_called()


def test_request_status_sends_an_empty_map(bridge, link):
    bridge.request_status()
    link.send.assert_called_once_with(p.STATUS_REQUEST, b"\xa0")
    validate(p.STATUS_REQUEST, b"\xa0")


# ---- errors as data ----------------------------------------------------------------

@pytest.mark.parametrize("mtype", [0x02, 0x05, 0x7E, 0xFF],
                         ids=["hello-reply-is-bridge-to-board", "0x05", "0x7e", "0xff"])
def test_unknown_type_gets_error_1_about_that_type(bridge, link, mtype):
    bridge.handle(mtype, p.encode_body({1: 2}))
    kind, fields = only_reply(link)
    assert kind == p.ERROR
    assert fields == {1: p.ERR_UNSUPPORTED_TYPE, 2: f"unsupported message type {mtype:#04x}",
                      3: mtype}
    validate(kind, link.send.call_args.args[1])


MALFORMED = [
    # name, type, body
    ("not-cbor", p.HELLO, b"\xff"),
    ("empty", p.HELLO, b""),
    ("truncated-map", p.HELLO, b"\xa1\x01"),
    ("array", p.STATUS_REQUEST, b"\x80"),
    ("integer", p.STATUS_REQUEST, b"\x01"),
    ("text", p.STATUS_REQUEST, b"\x62hi"),
    ("trailing-byte", p.STATUS_REQUEST, b"\xa0\x00"),
    ("map-length-not-shortest", p.STATUS_REQUEST, b"\xb8\x00"),
    ("keys-unsorted", p.HELLO, b"\xa3\x02\x650.1.0\x01\x01\x03\x65T0001"),
    ("float", p.HELLO, b"\xa3\x01\xf9\x3c\x00\x02\x650.1.0\x03\x65T0001"),
    ("tag", p.HELLO, b"\xa3\x01\xc1\x01\x02\x650.1.0\x03\x65T0001"),
    ("hello-without-protocol", p.HELLO, p.encode_body({2: "0.1.0", 3: "T0001"})),
]


@pytest.mark.parametrize("mtype, body", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_body_that_is_not_a_profile_map_gets_error_2(bridge, link, mtype, body):
    bridge.handle(mtype, body)
    kind, fields = only_reply(link)
    assert kind == p.ERROR
    assert fields[1] == p.ERR_MALFORMED
    assert fields[3] == mtype
    assert fields[2].startswith("malformed message")
    validate(kind, link.send.call_args.args[1])
    assert bridge.hello_count == 0


@pytest.mark.parametrize("body", [p.encode_body({1: 1, 2: "unsupported message type", 3: 0x7E}),
                                  b"\xff", b"\x80"], ids=["good", "not-cbor", "not-a-map"])
def test_error_from_the_board_is_never_answered(bridge, link, body):
    bridge.handle(p.ERROR, body)
    link.send.assert_not_called()


def test_link_failure_on_a_reply_is_logged_not_raised(bridge, link, caplog):
    link.send.side_effect = LinkFailed("no acknowledgement for message type 0x02 after 6 tries")
    with caplog.at_level(logging.ERROR, logger="posbridge"):
        bridge.handle(p.HELLO, p.encode_body(HELLO_BODY))
    assert "board did not take HELLO_REPLY" in caplog.text


def test_lost_port_on_a_reply_stops_the_bridge(bridge, link):
    link.send.side_effect = LinkClosed("port closed: gone")
    with pytest.raises(LinkClosed, match="gone"):
        bridge.handle(p.HELLO, p.encode_body(HELLO_BODY))


def test_serve_answers_until_the_port_goes_away(bridge, link):
    link.receive.side_effect = [(p.HELLO, p.encode_body(HELLO_BODY)), None,
                                (p.STATUS_REQUEST, b"\xa0"), LinkClosed("port closed: gone")]
    with pytest.raises(LinkClosed):
        bridge.serve(threading.Event())
    assert [mtype for mtype, _ in replies(link)] == [p.HELLO_REPLY, p.STATUS]


def test_serve_answers_status_while_the_issuer_is_still_working(link, mocker):
    working, release = threading.Event(), threading.Event()

    def slow_issuer(mtype, body):
        working.set()
        release.wait(5)
        return b"\xa0"
    issuer = mocker.Mock(handle=mocker.Mock(side_effect=slow_issuer),
                         reachable=mocker.Mock(return_value=True))
    bridge = Bridge(link, clock=lambda: NOW, issuer=issuer)
    stop = threading.Event()
    status_answered = threading.Event()
    sent_types = []

    def record(mtype, body):
        sent_types.append(mtype)
        if mtype == p.STATUS:
            status_answered.set()
            release.set()        # the issuer answers only once STATUS has gone out
        if mtype == p.BALANCE_RESPONSE:
            stop.set()
    link.send.side_effect = record
    script = [(p.BALANCE_REQUEST, b"\xa1\x01\x01"), None, (p.STATUS_REQUEST, b"\xa0")]

    def receive(timeout=None):
        if script:
            return script.pop(0)
        stop.wait(0.01)      # as the real receive waits for its timeout
        return None
    link.receive.side_effect = receive
    bridge.serve(stop)
    assert working.is_set() and status_answered.is_set()
    assert sent_types == [p.STATUS, p.BALANCE_RESPONSE]


def test_serve_returns_when_stopped(bridge, link):
    stop = threading.Event()
    stop.set()
    bridge.serve(stop)
    link.receive.assert_not_called()


# ---- financial requests: to the issuer whole, its errors as ERROR messages ---------

ROUTES = [(p.BALANCE_REQUEST, p.BALANCE_RESPONSE), (p.PURCHASE_REQUEST, p.PURCHASE_RESPONSE),
          (p.REVERSAL_REQUEST, p.REVERSAL_RESPONSE)]
ROUTE_IDS = ["balance", "purchase", "reversal"]
REQUEST_BODY = b"\xa1\x01\x68T0000001"       # the issuer parses it, not the bridge


@pytest.fixture
def issuer(mocker):
    issuer = mocker.Mock(spec=["handle", "reachable"])
    issuer.handle.return_value = b"\xa1\x03\x6200"
    return issuer


def test_the_bridge_routes_what_the_issuers_table_routes():
    from posbridge.issuer.messages import ROUTES as ISSUER_ROUTES
    assert {request: response for request, (response, _) in ISSUER_ROUTES.items()} == \
        dict(ROUTES)


@pytest.mark.parametrize("mtype, reply", ROUTES, ids=ROUTE_IDS)
def test_financial_request_goes_to_the_issuer_and_its_answer_back(link, issuer, mtype, reply):
    Bridge(link, clock=lambda: NOW, issuer=issuer).handle(mtype, REQUEST_BODY)
    issuer.handle.assert_called_once_with(mtype, REQUEST_BODY)
    link.send.assert_called_once_with(reply, b"\xa1\x03\x6200")     # the bytes, untouched


def _issuer_errors():
    from posbridge.issuer import (IssuerInternalError, IssuerRequestError,
                                  IssuerSecurityError, IssuerUnavailable)
    return [
        (IssuerRequestError("purchase-request: field 8 (amount) is out of range"),
         p.ERR_MALFORMED, "purchase-request: field 8 (amount) is out of range"),
        (IssuerSecurityError("request MAC does not match"), p.ERR_SECURITY,
         "request refused: security"),
        (IssuerUnavailable("issuer unavailable"), p.ERR_ISSUER_UNAVAILABLE, "issuer unavailable"),
        (IssuerInternalError("issuer database: locked"), p.ERR_INTERNAL, "issuer failed"),
        (RuntimeError("bug"), p.ERR_INTERNAL, "issuer failed"),
    ]


@pytest.mark.parametrize("error_index", range(5), ids=["request", "security", "unavailable",
                                                       "internal", "bug"])
@pytest.mark.parametrize("mtype, reply", ROUTES, ids=ROUTE_IDS)
def test_issuer_errors_become_error_messages_about_the_request(link, issuer, mtype, reply,
                                                               error_index):
    exc, code, text = _issuer_errors()[error_index]
    issuer.handle.side_effect = exc
    Bridge(link, clock=lambda: NOW, issuer=issuer).handle(mtype, REQUEST_BODY)
    kind, fields = only_reply(link)
    assert (kind, fields) == (p.ERROR, {1: code, 2: text, 3: mtype})
    validate(kind, link.send.call_args.args[1])


@pytest.mark.parametrize("mtype, reply", ROUTES, ids=ROUTE_IDS)
def test_an_error_about_a_request_names_its_trace_number(link, issuer, mtype, reply):
    # so the board can tell it from a late ERROR about an earlier request
    from posbridge.issuer import IssuerUnavailable
    issuer.handle.side_effect = IssuerUnavailable("down")
    body = p.encode_body({1: "T0000001", 2: 17, 3: 1795305600})
    Bridge(link, clock=lambda: NOW, issuer=issuer).handle(mtype, body)
    kind, fields = only_reply(link)
    assert (kind, fields) == (p.ERROR, {1: p.ERR_ISSUER_UNAVAILABLE, 2: "issuer unavailable",
                                        3: mtype, 4: 17})
    validate(kind, link.send.call_args.args[1])


@pytest.mark.parametrize("mtype", [m for m, _ in ROUTES], ids=ROUTE_IDS)
def test_financial_request_without_an_issuer_gets_error_5(bridge, link, mtype):
    bridge.handle(mtype, REQUEST_BODY)
    assert only_reply(link) == (p.ERROR, {1: p.ERR_ISSUER_UNAVAILABLE,
                                          2: "no issuer behind this bridge", 3: mtype})


# ---- the host's tables against the board's ------------------------------------------

TYPES = ["HELLO", "HELLO_REPLY", "STATUS_REQUEST", "STATUS", "ERROR", "BALANCE_REQUEST",
         "BALANCE_RESPONSE"]
# a message type may be on the host and in docs/protocol.md before firmware/messages.py
# has it; each is held equal to the board's once the board defines it
PURCHASE_TYPES = ["PURCHASE_REQUEST", "PURCHASE_RESPONSE", "REVERSAL_REQUEST",
                  "REVERSAL_RESPONSE"]
BOARD_TYPES = TYPES + [n for n in PURCHASE_TYPES if hasattr(board_messages, n)]
ERRORS = ["ERR_UNSUPPORTED_TYPE", "ERR_MALFORMED", "ERR_PROTOCOL_VERSION", "ERR_INTERNAL",
          "ERR_ISSUER_UNAVAILABLE", "ERR_SECURITY"]
OTHER_CONSTANTS = ["MAC_LEN"]


def board_names(prefix=""):
    return {n for n, v in vars(board_messages).items()
            if n.isupper() and n.startswith(prefix) and isinstance(v, int)}


@pytest.mark.parametrize("name", BOARD_TYPES + ERRORS + OTHER_CONSTANTS)
def test_message_type_and_error_code_equal_the_boards(name):
    assert getattr(p, name) == getattr(board_messages, name)


def test_no_type_or_error_code_exists_on_one_side_only():
    board_plain = board_names() - board_names("K_")
    assert board_plain == set(BOARD_TYPES + ERRORS + OTHER_CONSTANTS)
    assert set(p.TYPE_NAMES.values()) == {"ACK", *TYPES, *PURCHASE_TYPES}
    assert {getattr(p, n) for n in TYPES + PURCHASE_TYPES} == set(p.TYPE_NAMES) - {p.TYPE_ACK}


def test_purchase_types_are_the_documented_ones():
    assert [getattr(p, n) for n in PURCHASE_TYPES] == [0x12, 0x13, 0x14, 0x15]
    assert p.FIELDS[p.PURCHASE_RESPONSE] == p.FIELDS[p.BALANCE_RESPONSE]


def test_link_counter_keys_equal_the_boards():
    board_table = {key: name for name, key in board_messages.LINK_COUNTER_KEYS}
    assert board_table == p.LINK_COUNTERS


def test_board_link_counters_all_have_a_key():
    link_module = board_link_module()
    counters = link_module.Link(stream=None, clock=lambda: 0).counters()
    assert set(counters) == set(p.LINK_COUNTERS.values())


@pytest.mark.parametrize("name", ["PROTOCOL_VERSION", "HEADER_SIZE", "TYPE_ACK", "FLAG_SYN"])
def test_link_header_constants_equal_the_boards(name):
    assert getattr(p, name) == getattr(board_link_module(), name)


# the body keys (firmware/messages.py and the financial modules' const() keys) are held
# to the host's schema and to protocol.cddl in test_schema.py


def test_the_retired_hello_reply_key_4_is_named_by_neither_side():
    assert 4 not in p.KEYS["hello-reply"].values()
    assert not hasattr(board_messages, "K_UTC_OFFSET")


# ---- what a person reads: describe, masking ------------------------------------------

@pytest.fixture
def purchase(monkeypatch):
    """A made-up message type with a card number, registered the way a new type is added."""
    monkeypatch.setitem(p.TYPE_NAMES, 0x30, "PURCHASE")
    monkeypatch.setitem(p.FIELDS, 0x30, {1: "pan", 2: "amount", 3: "currency"})
    return 0x30


def test_describe_masks_the_pan_field(purchase):
    line = p.describe(purchase, p.encode_body({1: PAN, 2: 1250, 3: 978}))
    assert line == "PURCHASE pan='476173******0010' amount=1250 currency=978"
    assert PAN not in line


def test_named_masks_a_pan_given_as_an_integer(purchase):
    assert p.named(purchase, {1: int(PAN)}) == {"pan": "476173******0010"}


@pytest.mark.parametrize("mtype, body, line", [
    (p.TYPE_ACK, b"", "ACK"),
    (p.HELLO, p.encode_body(HELLO_BODY), "HELLO protocol=1 firmware='0.1.0' terminal_id='T0001'"),
    (p.STATUS_REQUEST, b"\xa0", "STATUS_REQUEST"),
    (p.STATUS, p.encode_body({1: 5, 4: {1: 2, 9: 1}}),
     "STATUS uptime_s=5 link={'tx': 2, 'failures': 1}"),
    (p.ERROR, p.encode_body({1: 1, 2: "no", 3: 0x7E}), "ERROR code=1 text='no' about_type=126"),
    (0x7E, p.encode_body({1: 2}), "TYPE_0x7e 1=2"),
], ids=["ack", "hello", "status-request", "status-with-link", "error", "unknown-type"])
def test_describe_names_the_type_and_fields(mtype, body, line):
    assert p.describe(mtype, body) == line


def test_describe_says_why_a_body_is_unreadable():
    line = p.describe(p.HELLO, b"\xff")
    assert line.startswith("HELLO <undecodable: ") and line.endswith("(1 bytes)")


MASK_PAN = [
    ("4761739001010010", "476173******0010"),
    ("4761739001010", "476173***1010"),
    ("4761739001010010123", "476173*********0123"),
    (4761739001010010, "476173******0010"),
    ("476173900101", "********0101"),      # under 13 digits: the last four only
    ("4761", "****"),
    ("", ""),
]


@pytest.mark.parametrize("pan, shown", MASK_PAN)
def test_mask_pan_keeps_first_six_and_last_four_only(pan, shown):
    assert masking.mask_pan(pan) == shown


MASK_TEXT = [
    ("card 4761739001010010 approved", "card 476173******0010 approved"),
    ("pan=4761739001010010,pan=5413330089010012", "pan=476173******0010,pan=541333******0012"),
    ("x4761739001010010y", "x476173******0010y"),
    ("4761739001010", "476173***1010"),
    ("476173900101 is 12 digits", "********0101 is 12 digits"),   # the shortest PAN taken
    ("47617390010 is 11 digits", "47617390010 is 11 digits"),
    ("47617390010100101234 is 20 digits", "47617390010100101234 is 20 digits"),
    ("amount 1250 currency 978", "amount 1250 currency 978"),
]


@pytest.mark.parametrize("text, shown", MASK_TEXT)
def test_mask_pans_in_text_masks_12_to_19_digit_runs(text, shown):
    assert masking.mask_pans_in_text(text) == shown


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=13, max_size=19),
       st.text(alphabet="abc =:,'", max_size=5), st.text(alphabet="abc =:,'", max_size=5))
def test_any_pan_in_text_shows_only_its_first_six_and_last_four(pan, before, after):
    shown = masking.mask_pans_in_text(before + pan + after)
    assert shown == before + pan[:6] + "*" * (len(pan) - 10) + pan[-4:] + after
    assert masking.mask_pan(pan) == pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


@pytest.mark.parametrize("text", ["card 4761 7390 0101 0010", "card 4761-7390-0101-0010"])
def test_pan_written_in_groups_is_masked_too(text):
    digits = "".join(ch for ch in masking.mask_pans_in_text(text) if ch.isdigit())
    assert digits == "4761730010"


def test_log_filter_masks_a_pan_in_a_traceback_too():
    try:
        raise ValueError(f"card {PAN} not on file")
    except ValueError:
        record = logging.LogRecord("posbridge", logging.ERROR, __file__, 1, "issuer failed",
                                   (), sys.exc_info())
    assert MaskingFilter().filter(record)
    assert record.exc_info is None                 # nothing left for the handler to print
    text = record.getMessage()
    assert "issuer failed" in text and "ValueError: card 476173******0010" in text
    assert PAN not in text


def test_log_filter_masks_a_pan_in_any_log_line():
    record = logging.LogRecord("posbridge", logging.INFO, __file__, 1, "%s  seq=%-3d %s",
                               ("board -> bridge", 7, f"TYPE_0x30 1={PAN!r}"), None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "board -> bridge  seq=7   TYPE_0x30 1='476173******0010'"
