"""The CBOR <-> ISO 8583 mapping (link/iso8583_map.py): every financial message type
crosses and comes back byte for byte (so the MACs over the CBOR still verify), what
cannot come back equal is refused, and the ISO side is exactly the documented spec."""
import hashlib
import re
from pathlib import Path

import iso8583
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posbridge.link import cbor_profile
from posbridge.link import iso8583_map as m
from posbridge.link import iso8583_spec as spec
from posbridge.link import protocol as p

DOC = Path(__file__).resolve().parents[2] / "docs" / "iso8583.md"

def _inner_spaces(limit):
    # ASCII with spaces inside, none at the end: what a padded ans field gives back
    return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1,
                   max_size=limit).filter(lambda s: s[-1] != " ")


digits = lambda lo, hi: st.from_regex(rf"[0-9]{{{lo},{hi}}}", fullmatch=True)  # noqa: E731
trace = st.integers(1, 999_999)
time = st.integers(0, 253_402_300_799)            # to 9999-12-31, what gmtime takes
ksn = st.binary(min_size=12, max_size=12)
mac = st.binary(min_size=8, max_size=8)
optional = lambda s: st.one_of(st.none(), s)      # noqa: E731


def _body(rule, **values):
    fields = p.build(rule, **{k: v for k, v in values.items() if k != "mac"})
    return p.with_mac(rule, fields, values["mac"])


card_request = dict(
    terminal_id=_inner_spaces(8), trace=trace, time=time,
    card=st.fixed_dictionaries({1: digits(12, 19), 2: digits(4, 4), 3: digits(3, 3)}),
    pin_block=st.binary(min_size=16, max_size=16), ksn=ksn, mac=mac,
    entry_mode=optional(st.integers(1, 99)), icc=optional(st.binary(min_size=1, max_size=255)))


@st.composite
def balance_requests(draw):
    return _body("balance-request", **{k: draw(v) for k, v in card_request.items()})


@st.composite
def purchase_requests(draw):
    values = {k: draw(v) for k, v in card_request.items()}
    values.update(amount=draw(st.integers(1, 999_999_999_999)),
                  currency=draw(st.integers(1, 999)),
                  merchant_id=draw(_inner_spaces(15)),
                  merchant_name=draw(_inner_spaces(22)))
    return _body("purchase-request", **values)


@st.composite
def reversal_requests(draw):
    return _body("reversal-request", terminal_id=draw(_inner_spaces(8)), trace=draw(trace),
                 time=draw(time), ksn=draw(ksn), mac=draw(mac),
                 amount=draw(st.integers(1, 999_999_999_999)),
                 currency=draw(st.integers(1, 999)), original_trace=draw(trace),
                 original_ksn=draw(ksn), reason=draw(st.integers(1, 4)))


notification = st.builds(
    lambda status, channel, destination, detail: {
        k: v for k, v in {1: status, 2: channel, 3: destination, 4: detail}.items()
        if v is not None},
    st.integers(1, 11), optional(st.sampled_from(["sms", "app"])),
    optional(st.text(min_size=1, max_size=24).filter(lambda s: len(s.encode()) <= 24)),
    optional(st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) <= 40)))
balance = st.integers(-999_999_999_999, 999_999_999_999)


@pytest.mark.parametrize("mtype, requests", [
    (p.BALANCE_REQUEST, balance_requests()),
    (p.PURCHASE_REQUEST, purchase_requests()),
    (p.REVERSAL_REQUEST, reversal_requests())], ids=["0100", "0200", "0400"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_request_crosses_and_comes_back_byte_for_byte(mtype, requests, data):
    body = data.draw(requests)
    iso = m.request_to_iso(mtype, body)
    assert m.iso_to_request(iso) == (mtype, body)
    # and over the wire, through pyiso8583 against the spec
    assert m.iso_to_request(spec.unpack(spec.pack(iso))) == (mtype, body)


def _response_for(mtype, body, draw):
    digest = hashlib.sha256(body).digest()
    request = p.decode_body(body)
    common = dict(terminal_id=request[1], trace=request[2], ksn=request[6],
                  request_digest=digest, response_code=draw(digits(2, 2)))
    if mtype == p.REVERSAL_REQUEST:
        code = common["response_code"]
        return _body("reversal-response", **common, mac=draw(mac),
                     original_trace=request[12],
                     outcome=draw(optional(st.integers(1, 3))) if code == "00" else None,
                     notification=draw(optional(notification)))
    return _body(
        p.RULES[mtype + 1][0], **common, mac=draw(mac),
        approval_code=draw(optional(st.from_regex(r"[0-9A-Z]{6}", fullmatch=True))),
        available=draw(optional(balance)), ledger=draw(optional(balance)),
        currency=draw(optional(st.integers(1, 999))), notification=draw(notification),
        pin_tries_left=draw(optional(st.integers(0, 999))),
        arpc=draw(optional(st.binary(min_size=4, max_size=8))))


@pytest.mark.parametrize("mtype, requests", [
    (p.BALANCE_REQUEST, balance_requests()),
    (p.PURCHASE_REQUEST, purchase_requests()),
    (p.REVERSAL_REQUEST, reversal_requests())], ids=["0110", "0210", "0410"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_response_crosses_and_comes_back_byte_for_byte(mtype, requests, data):
    body = data.draw(requests)
    request_iso = m.request_to_iso(mtype, body)
    response = _response_for(mtype, body, data.draw)
    iso = m.response_to_iso(mtype + 1, response, request_iso)
    wire = spec.unpack(spec.pack(iso))
    assert m.has_mac(wire)
    assert m.iso_to_response(wire, hashlib.sha256(body).digest()) == (mtype + 1, response)
    # the digest is not on the link; the MAC sits in 64, or 128 with a secondary bitmap
    assert ("128" in wire) == any(int(f) > 64 for f in wire if f.isdigit() and f != "128")


# ---- what cannot come back equal is refused, never altered -------------------------

def _purchase(**change):
    values = dict(terminal_id="T0000001", trace=1, time=1795334400,
                  card={1: "4761730000000011", 2: "3012", 3: "201"},
                  pin_block=bytes(16), ksn=bytes(12), mac=bytes(8), amount=1250,
                  currency=156, merchant_id="104110070110001", merchant_name="DEMO SHOP")
    values.update(change)
    return _body("purchase-request", **values)


@pytest.mark.parametrize("change, field", [
    (dict(terminal_id="TERMINAL00000001"), "field 41"),     # over 8 characters
    (dict(terminal_id="T1 "), "field 41"),                  # a trailing space
    (dict(merchant_name="CAFÉ"), "field 43"),               # not ASCII
    (dict(merchant_id="SHOP 1 "), "field 42"),              # a trailing space
])
def test_what_would_not_come_back_equal_is_refused(change, field):
    with pytest.raises(m.MappingError, match=field):
        m.request_to_iso(p.PURCHASE_REQUEST, _purchase(**change))


def test_a_body_not_in_the_schema_is_refused():
    fields = p.decode_body(_purchase())
    del fields[p.KEYS["purchase-request"]["amount"]]
    with pytest.raises(m.MappingError, match="amount"):
        m.request_to_iso(p.PURCHASE_REQUEST, cbor_profile.encode(fields))


def test_a_balance_beyond_12_digits_is_refused():
    body = _purchase()
    iso = m.request_to_iso(p.PURCHASE_REQUEST, body)
    response = _body("purchase-response", terminal_id="T0000001", trace=1, ksn=bytes(12),
                     response_code="00", notification={1: 10}, available=10 ** 12,
                     request_digest=hashlib.sha256(body).digest(), mac=bytes(8))
    with pytest.raises(m.MappingError, match="12 digits"):
        m.response_to_iso(p.PURCHASE_RESPONSE, response, iso)


def test_a_response_to_other_request_bytes_is_refused():
    body = _purchase()
    iso = m.request_to_iso(p.PURCHASE_REQUEST, body)
    response = _body("purchase-response", terminal_id="T0000001", trace=1, ksn=bytes(12),
                     response_code="00", notification={1: 10}, request_digest=bytes(32),
                     mac=bytes(8))
    with pytest.raises(m.MappingError, match="bytes"):
        m.response_to_iso(p.PURCHASE_RESPONSE, response, iso)


@pytest.mark.parametrize("field, value", [
    ("54", "0002156C00000000100"),           # a block cut short
    ("54", "0003156C000000001000"),          # amount type 03
    ("54", "0002840C000000001000"),          # another currency than field 49's
    ("54", "0002156D000000000000"),          # D with zero
    ("54", "0002156C0000000010000001156C000000001000"),   # available before ledger
    ("60", "0A"),                            # BCD that is not digits
    ("64", "00" * 8),                        # the MAC where a secondary bitmap puts 128
])
def test_a_malformed_response_field_is_a_mapping_error(field, value):
    body = _purchase()
    iso = m.request_to_iso(p.PURCHASE_REQUEST, body)
    response = _body("purchase-response", terminal_id="T0000001", trace=1, ksn=bytes(12),
                     response_code="00", notification={1: 10}, available=1000, ledger=1000,
                     currency=156, pin_tries_left=3,
                     request_digest=hashlib.sha256(body).digest(), mac=bytes(8))
    answer = m.response_to_iso(p.PURCHASE_RESPONSE, response, iso)
    answer[field] = value
    with pytest.raises(m.MappingError):
        m.iso_to_response(answer, hashlib.sha256(body).digest())


def test_entry_mode_and_icc_data_go_in_22_and_55_and_the_arpc_in_tag_91():
    body = _purchase(entry_mode=7, icc=bytes.fromhex("9F2608" + "11" * 8))
    iso = m.request_to_iso(p.PURCHASE_REQUEST, body)
    assert iso["22"] == "071" and iso["55"] == "9F26081111111111111111"
    assert "22" not in m.request_to_iso(p.PURCHASE_REQUEST, _purchase())   # absent: absent
    response = _body("purchase-response", terminal_id="T0000001", trace=1, ksn=bytes(12),
                     response_code="00", notification={1: 10}, arpc=bytes.fromhex("A1B2C3D4"),
                     request_digest=hashlib.sha256(body).digest(), mac=bytes(8))
    assert m.response_to_iso(p.PURCHASE_RESPONSE, response, iso)["55"] == "9104A1B2C3D4"


def test_refusal_echoes_only_what_is_readable():
    assert m.refusal({"t": "0200", "11": "000017", "41": "T0000001", "4": "x"}, "30") == {
        "t": "0210", "39": "30", "11": "000017", "41": "T0000001"}
    assert m.refusal({"t": "0100", "11": "00001A"}, "30") == {"t": "0110", "39": "30"}


# ---- the documented spec is the spec -----------------------------------------------

_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|", re.M)


def _format(field):
    """The format column docs/iso8583.md must give for a field of SPEC."""
    f = spec.SPEC[field]
    kind = {"b": "b", "ascii": "ans", "utf-8": "ans (UTF-8)"}[f["data_enc"]]
    if f["data_enc"] == "b" and f.get("len_count") == "nibbles":
        kind = "n"
    var = {0: "", 1: "LLVAR ", 2: "LLLVAR "}[f["len_type"]]
    return f"{var}{kind} {'..' if f['len_type'] else ''}{f['max_len']}"


def test_docs_list_every_field_of_the_spec_with_its_format():
    text = DOC.read_text()
    section = text[text.index("## Fields"):text.index("## Messages")]
    documented = {n: fmt for n, _, fmt in _ROW.findall(section)}
    assert set(documented) == {str(n) for n in spec.FIELDS}
    for number, fmt in documented.items():
        assert fmt == _format(number), number


def test_pyiso8583_decodes_the_spec_it_encodes():
    iso = m.request_to_iso(p.PURCHASE_REQUEST, _purchase())
    data = spec.pack(iso)
    assert data[:2] == b"\x02\x00"               # MTI in BCD
    decoded, _ = iso8583.decode(data, spec.SPEC)
    assert {k: v for k, v in decoded.items() if k not in ("p", "h")} == iso
