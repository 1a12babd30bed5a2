"""The host's one message schema (posbridge/link/protocol.py SCHEMA) against
docs/protocol.cddl, both ways, and against the board's key constants; messages made from
the table's own limits validated by pycddl; the table-driven parser and builder."""
import re
from pathlib import Path

import pytest

from posbridge.link import protocol as p
from tests.schema import RULES as CDDL_RULES
from tests.schema import schema_for

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
CDDL_TEXT = (ROOT / "docs" / "protocol.cddl").read_text()


# ---- protocol.cddl, read as text -------------------------------------------------

def _cddl_rules(text: str) -> dict:
    """rule name -> its definition, comments removed."""
    rules, name = {}, None
    for line in text.splitlines():
        line = line.split(";", 1)[0].rstrip()
        start = re.match(r"^([a-z][a-z0-9-]*)\s*=\s*(.*)$", line)
        if start:
            name = start.group(1)
            rules[name] = start.group(2)
        elif name and line.strip():
            rules[name] += "\n" + line
    return rules


CDDL = _cddl_rules(CDDL_TEXT)
ENTRY = re.compile(r"(\?\s*)?\b(\d+)\s*=>\s*([a-z][a-z0-9-]*)?")


def cddl_map(rule: str) -> dict:
    """key -> (optional, the type's rule name or None) of a map rule; an alias
    (purchase-response = balance-response) is followed."""
    body = CDDL[rule].strip()
    if re.fullmatch(r"[a-z][a-z0-9-]*", body):
        return cddl_map(body)
    assert body.startswith("{") and body.endswith("}"), f"{rule} is not a map: {body!r}"
    return {int(key): (bool(opt), kind) for opt, key, kind in ENTRY.findall(body)}


CDDL_MAPS = sorted(rule for rule, body in CDDL.items() if body.strip().startswith("{"))


@pytest.mark.parametrize("rule", sorted(p.SCHEMA))
def test_every_table_rule_is_in_the_cddl_with_the_same_keys(rule):
    assert rule in CDDL, f"{rule} is not a rule of protocol.cddl"
    expected = {key: (f.presence == p.OPTIONAL) for key, f in p.TABLES[rule].items()}
    assert {k: opt for k, (opt, _) in cddl_map(rule).items()} == expected


@pytest.mark.parametrize("rule", CDDL_MAPS)
def test_every_cddl_map_is_in_the_table(rule):
    assert rule in p.SCHEMA
    assert set(cddl_map(rule)) == set(p.TABLES[rule])


@pytest.mark.parametrize("rule", sorted(p.SCHEMA))
def test_a_nested_map_is_the_same_rule_in_both(rule):
    entries = cddl_map(rule)
    for key, field in p.TABLES[rule].items():
        if field.type == "map":
            assert entries[key][1] == field.limits, f"{rule} key {key}"


@pytest.mark.parametrize("mtype", sorted(CDDL_RULES), ids=lambda t: f"{t:#04x}")
def test_each_message_type_has_the_bodies_of_its_cddl_rule(mtype):
    # status = board-status / bridge-status: one type, two bodies
    rule = CDDL_RULES[mtype]
    choice = [name.strip() for name in CDDL[rule].split("/")]
    bodies = set(choice) if len(choice) > 1 else {rule}
    assert set(p.RULES[mtype]) == bodies
    assert set(p.RULES) == set(CDDL_RULES)


@pytest.mark.parametrize("rule", sorted(p.SCHEMA))
def test_table_rows_are_well_formed(rule):
    table = p.TABLES[rule]
    names = [f.name for f in table.values()]
    assert len(names) == len(set(names)), "a field name twice"
    macs = [f.key for f in table.values() if f.mac == p.MAC]
    assert len(macs) <= 1
    for field in table.values():
        assert field.type in ("uint", "int", "tstr", "bstr", "bool", "map")
        assert field.presence in (p.REQUIRED, p.OPTIONAL)
        if field.type == "map":
            assert field.limits in p.SCHEMA and p.SCHEMA[field.limits]["type"] is None
        # a MAC covers all of its message or it covers nothing worth having
        assert field.mac == (p.MAC if field.key in macs else p.SIGNED if macs else None)


# ---- the board's key constants -------------------------------------------------------

REQUESTS = ("balance-request", "purchase-request", "reversal-request")
CARD_REQUESTS = ("balance-request", "purchase-request")
RESPONSES = ("balance-response", "purchase-response", "reversal-response")
CARD_RESPONSES = ("balance-response", "purchase-response")
STATUSES = ("board-status", "bridge-status")

# board constant -> (the rules it is a key of, the field's name in the table)
BOARD_KEYS = {
    "K_PROTOCOL": (("hello", "hello-reply"), "protocol"),
    "K_FIRMWARE": (("hello",), "firmware"),
    "K_TERMINAL_ID": (("hello",), "terminal_id"),
    "K_TIME": (("hello-reply",), "time"),
    "K_BRIDGE": (("hello-reply",), "bridge"),
    "K_UTC_OFFSET": (("hello-reply",), "utc_offset_min"),
    "K_UPTIME": (STATUSES, "uptime_s"),
    "K_HEAP_FREE": (("board-status",), "heap_free"),
    "K_STATE": (STATUSES, "state"),
    "K_LINK": (("board-status",), "link"),
    "K_ISSUER_ONLINE": (("bridge-status",), "issuer_online"),
    "K_STATUS_TIME": (("bridge-status",), "time"),
    "K_ERROR_CODE": (("error",), "code"),
    "K_ERROR_TEXT": (("error",), "text"),
    "K_ERROR_TYPE": (("error",), "about_type"),
    "K_ERROR_TRACE": (("error",), "trace"),
    "_K_REQ_TERMINAL": (REQUESTS, "terminal_id"),
    "_K_REQ_TRACE": (REQUESTS, "trace"),
    "_K_REQ_TIME": (REQUESTS, "time"),
    "_K_REQ_CARD": (CARD_REQUESTS, "card"),
    "_K_REQ_PIN_BLOCK": (CARD_REQUESTS, "pin_block"),
    "_K_REQ_KSN": (REQUESTS, "ksn"),
    "_K_REQ_MAC": (REQUESTS, "mac"),
    "_K_CARD_PAN": (("card",), "pan"),
    "_K_CARD_EXPIRY": (("card",), "expiry"),
    "_K_CARD_SERVICE_CODE": (("card",), "service_code"),
    "_K_AMOUNT": (("purchase-request", "reversal-request"), "amount"),
    "_K_CURRENCY": (("purchase-request", "reversal-request"), "currency"),
    "_K_ORIGINAL_TRACE": (("reversal-request", "reversal-response"), "original_trace"),
    "_K_ORIGINAL_KSN": (("reversal-request",), "original_ksn"),
    "_K_REASON": (("reversal-request",), "reason"),
    "_K_RSP_TERMINAL": (RESPONSES, "terminal_id"),
    "_K_RSP_TRACE": (RESPONSES, "trace"),
    "_K_RSP_CODE": (RESPONSES, "response_code"),
    "_K_RSP_APPROVAL": (CARD_RESPONSES, "approval_code"),
    "_K_RSP_AVAILABLE": (CARD_RESPONSES, "available"),
    "_K_RSP_LEDGER": (CARD_RESPONSES, "ledger"),
    "_K_RSP_CURRENCY": (CARD_RESPONSES, "currency"),
    "_K_RSP_NOTIFY": (RESPONSES, "notification"),
    "_K_RSP_KSN": (RESPONSES, "ksn"),
    "_K_RSP_PIN_TRIES": (CARD_RESPONSES, "pin_tries_left"),
    "_K_RSP_MAC": (RESPONSES, "mac"),
    "_K_RSP_OUTCOME": (("reversal-response",), "outcome"),
    "_K_RSP_REQUEST": (RESPONSES, "request_digest"),
    "K_ENTRY_MODE": (CARD_REQUESTS, "entry_mode"),
    "K_ICC": (CARD_REQUESTS, "icc"),
    "K_ARPC": (CARD_RESPONSES, "arpc"),
    "_K_REQ_ENTRY_MODE": (CARD_REQUESTS, "entry_mode"),
    "_K_REQ_ICC": (CARD_REQUESTS, "icc"),
    "_K_RSP_ARPC": (CARD_RESPONSES, "arpc"),
}

_BOARD_KEY = re.compile(r"^(_?K_[A-Z0-9_]+)\s*=\s*(?:const\(\s*)?(\d+)\s*\)?", re.M)


def board_key_constants():
    """(module, constant, value) of every body key the firmware defines: K_* in
    messages.py, _K_* const() in the modules that use them."""
    found = []
    for path in sorted(FIRMWARE.glob("*.py")):
        for name, value in _BOARD_KEY.findall(path.read_text()):
            found.append((path.name, name, int(value)))
    return found


BOARD_CONSTANTS = board_key_constants()


def test_the_firmware_defines_body_keys_where_they_are_looked_for():
    modules = {module for module, _, _ in BOARD_CONSTANTS}
    assert "messages.py" in modules and len(modules) > 1, modules


@pytest.mark.parametrize("module, constant, value", BOARD_CONSTANTS,
                         ids=[f"{m}-{c}" for m, c, _ in BOARD_CONSTANTS])
def test_board_key_is_the_tables_and_the_cddls(module, constant, value):
    assert constant in BOARD_KEYS, (f"{module}: {constant} is new: say in BOARD_KEYS which "
                                    f"field of the schema it is")
    rules, name = BOARD_KEYS[constant]
    for rule in rules:
        assert p.KEYS[rule][name] == value, f"{rule}.{name}"
        assert value in cddl_map(rule), f"protocol.cddl {rule} has no key {value}"


# ---- messages made from the table's limits, validated by protocol.cddl ----------------

def _pattern_ends(pattern: str):
    """The shortest and the longest text of one of the table's patterns, and a text
    just outside each end (None where there is none)."""
    if re.fullmatch(r"[a-z|]+", pattern):                 # a choice of words
        words = pattern.split("|")
        return (words[0], words[-1]), ("x", None)
    m = re.fullmatch(r"\[0-9\]\{(\d+)(?:,(\d+))?\}", pattern)
    assert m, f"teach this test the pattern {pattern!r}"
    low, high = int(m.group(1)), int(m.group(2) or m.group(1))
    return ("1" * low, "9" * high), ("1" * (low - 1), "9" * (high + 1))


def ends(field):
    """(lowest, highest) value of a field, and (just below, just above) or None."""
    kind, limits = field.type, field.limits
    if kind == "bool":
        return (False, True), (None, None)
    if kind in ("uint", "int"):
        if limits is None:
            return ((0, 2 ** 64 - 1), (-1, None)) if kind == "uint" else \
                ((-2 ** 63, 2 ** 63 - 1), (None, None))
        return limits, (limits[0] - 1, limits[1] + 1)
    if kind == "tstr" and isinstance(limits, str):
        return _pattern_ends(limits)
    if kind == "tstr":
        return ("x" * limits[0], "x" * limits[1]), \
            ("x" * (limits[0] - 1) if limits[0] else None, "x" * (limits[1] + 1))
    return (bytes(limits[0]), bytes(limits[1])), \
        (bytes(limits[0] - 1) if limits[0] else None, bytes(limits[1] + 1))


def example(rule: str, end: int) -> dict:
    """A `rule` map (keyed by number): end 0 the required fields at their lowest, end 1
    every field at its highest."""
    out = {}
    for key, field in p.TABLES[rule].items():
        if end == 0 and field.presence == p.OPTIONAL:
            continue
        out[key] = example(field.limits, end) if field.type == "map" else ends(field)[0][end]
    return out


MESSAGE_RULES = sorted(rule for rule, spec in p.SCHEMA.items() if spec["type"] is not None)


@pytest.mark.parametrize("end", [0, 1], ids=["smallest", "largest"])
@pytest.mark.parametrize("rule", MESSAGE_RULES)
def test_a_message_at_the_tables_limits_fits_the_cddl_and_the_parser(rule, end):
    fields = example(rule, end)
    body = p.encode_body(fields)
    schema_for(rule).validate_cbor(body)
    values = p.parse(rule, body)
    # and the builder makes the same map again from the names (less the MAC)
    rebuilt = {}
    for name, value in values.items():
        field = p.TABLES[rule][p.KEYS[rule][name]]
        if field.type == "map":
            value = p.build(field.limits, **value)
        rebuilt[name] = value
    mac = p.mac_key(p.SCHEMA[rule]["type"])
    assert p.build(rule, **{n: v for n, v in rebuilt.items() if n != "mac"}) == \
        {k: v for k, v in fields.items() if k != mac or mac is None}


# where protocol.cddl says less than the table, and why
CDDL_LOOSER = {
    ("hello-reply", "utc_offset_min", 1): "pycddl checks one bound of a negative range",
    ("hello-reply", "time", 1): "CDDL unix-time is any uint; the issuer stores 63 bits",
    ("bridge-status", "time", 1): "as above",
    ("balance-request", "time", 1): "as above",
    ("purchase-request", "time", 1): "as above",
    ("reversal-request", "time", 1): "as above",
    ("error", "about_type", 0): "pycddl takes -1 for uint .le 255",
}


def _outside_variants():
    """(id, rule, path of keys to the field, value, expected error) for a value just
    outside each limit of every field, in the largest message of its rule."""
    out = []

    def walk(rule, top, path, prefix):
        for key, field in sorted(p.TABLES[rule].items()):
            label = field.label if not prefix else f"{prefix} {field.label}"
            if field.type == "map":
                walk(field.limits, top, path + (key,), label)
                continue
            for end, value in enumerate(ends(field)[1]):
                if value is None:
                    continue
                looser = CDDL_LOOSER.get((top, field.name, end))
                if field.type == "tstr" and isinstance(field.limits, str) and end == 1:
                    # RFC 8610 anchors a .regexp (XSD); pycddl finds it anywhere in the text
                    looser = "pycddl does not anchor .regexp"
                out.append((f"{top}-{'.'.join(map(str, path + (key,)))}-{('low', 'high')[end]}",
                            top, path + (key,), value,
                            rf"{top}: field {key} \({label}\) is (out of range|not int)",
                            looser))
    for rule in MESSAGE_RULES:
        walk(rule, rule, (), "")
    return out


OUTSIDE = _outside_variants()


def _with(fields, path, value):
    fields = dict(fields)
    if len(path) == 1:
        fields[path[0]] = value
    else:
        fields[path[0]] = _with(fields[path[0]], path[1:], value)
    return fields


@pytest.mark.parametrize("rule, path, value, error, looser", [o[1:] for o in OUTSIDE],
                         ids=[o[0] for o in OUTSIDE])
def test_a_value_just_outside_a_limit_is_refused_by_the_parser_and_the_cddl(
        rule, path, value, error, looser):
    body = p.encode_body(_with(example(rule, 1), path, value))
    with pytest.raises(p.SchemaError, match=error):
        p.parse(rule, body)
    if looser:
        schema_for(rule).validate_cbor(body)       # the known difference, still there
    else:
        with pytest.raises(Exception):
            schema_for(rule).validate_cbor(body)


# pycddl's .size takes an integer or a byte string for a tstr (and text for a bstr):
# an array is the wrong type it refuses everywhere
_WRONG_TYPE = {"uint": [1], "int": [1], "tstr": [1], "bstr": [1], "bool": [1], "map": "x"}
_WORD = {"uint": "int", "int": "int", "tstr": "text", "bstr": "bytes", "bool": "bool",
         "map": "dict"}
TYPED = [(rule, key, field) for rule in MESSAGE_RULES
         for key, field in sorted(p.TABLES[rule].items())]


@pytest.mark.parametrize("rule, key, field", TYPED,
                         ids=[f"{r}-{k}" for r, k, _ in TYPED])
def test_a_value_of_the_wrong_type_or_a_missing_field_is_named(rule, key, field):
    fields = example(rule, 1)
    body = p.encode_body({**fields, key: _WRONG_TYPE[field.type]})
    with pytest.raises(p.SchemaError,
                       match=rf"^{rule}: field {key} \({field.label}\) is not {_WORD[field.type]}$"):
        p.parse(rule, body)
    if field.name != "state":       # pycddl takes an array for "boot" / ... / tstr .size
        with pytest.raises(Exception):
            schema_for(rule).validate_cbor(body)
    without = p.encode_body({k: v for k, v in fields.items() if k != key})
    if field.presence == p.OPTIONAL:
        p.parse(rule, without)
        schema_for(rule).validate_cbor(without)
    else:
        with pytest.raises(p.SchemaError, match=rf"field {key} \({field.label}\) is missing"):
            p.parse(rule, without)
        with pytest.raises(Exception):
            schema_for(rule).validate_cbor(without)


@pytest.mark.parametrize("rule", MESSAGE_RULES)
def test_an_unknown_key_is_refused_by_the_parser_and_the_cddl(rule):
    body = p.encode_body({**example(rule, 1), 99: 1})
    with pytest.raises(p.SchemaError, match=f"^{rule}: unknown field 99$"):
        p.parse(rule, body)
    if rule == "status-request":
        return          # pycddl takes any map for the empty map {}
    with pytest.raises(Exception):
        schema_for(rule).validate_cbor(body)


# ---- the parser and the builder ------------------------------------------------------------

PAN = "4761730000000011"


def test_an_error_about_the_card_names_the_field_and_never_the_pan():
    fields = example("balance-request", 1)
    fields[4] = {1: PAN + "X", 2: "3012", 3: "201"}
    with pytest.raises(p.SchemaError) as err:
        p.parse("balance-request", p.encode_body(fields))
    assert str(err.value) == "balance-request: field 1 (card PAN) is out of range"
    fields[4] = {1: PAN, 2: "3012", 3: "201", 4: "x"}
    with pytest.raises(p.SchemaError, match=r"field 4 \(card\) needs keys 1, 2, 3 only"):
        p.parse("balance-request", p.encode_body(fields))


@pytest.mark.parametrize("body, error", [
    (b"\xff", "hello: "), (b"\x80", "hello: not a map"), (b"\xa0\x00", "hello: ")])
def test_a_body_that_is_no_profile_map_is_a_schema_error(body, error):
    with pytest.raises(p.SchemaError, match=f"^{error}"):
        p.parse("hello", body)


def test_build_leaves_out_optional_fields_given_as_none_and_the_mac():
    fields = p.build("reversal-response", terminal_id="T1", trace=5, response_code="00",
                     ksn=bytes(12), original_trace=4, outcome=None,
                     request_digest=bytes(32))
    assert fields == {1: "T1", 2: 5, 3: "00", 9: bytes(12), 12: 4, 17: bytes(32)}
    body = p.with_mac("reversal-response", fields, bytes(range(8)))
    assert p.decode_body(body)[p.mac_key(p.REVERSAL_RESPONSE)] == bytes(range(8))
    assert p.mac_input("reversal-response", p.decode_body(body)) == p.encode_body(fields)


@pytest.mark.parametrize("values, error", [
    (dict(code=2, text="x", about_type=1, colour="red"), "no field named 'colour'"),
    (dict(code=2, text="x"), r"field 3 \(about\) is missing"),
    (dict(code=9, text="x", about_type=1), r"field 1 \(code\) is out of range"),
    (dict(code=2, text="é" * 31, about_type=1), r"field 2 \(text\) is out of range"),
])
def test_build_refuses_what_does_not_fit(values, error):
    with pytest.raises(p.SchemaError, match=error):
        p.build("error", **values)


def test_field_or_none_reads_only_a_value_that_fits():
    assert p.field_or_none("balance-request", "trace", {2: 17}) == 17
    for fields in ({2: 0}, {2: "17"}, {2: True}, {}, [17]):
        assert p.field_or_none("balance-request", "trace", fields) is None


def test_mac_keys_by_type():
    assert {t: p.mac_key(t) for t in p.RULES if p.mac_key(t) is not None} == {
        p.BALANCE_REQUEST: 7, p.PURCHASE_REQUEST: 7, p.REVERSAL_REQUEST: 7,
        p.BALANCE_RESPONSE: 15, p.PURCHASE_RESPONSE: 15, p.REVERSAL_RESPONSE: 15}
    assert p.mac_key(p.HELLO) is None and p.mac_key(p.STATUS) is None


def test_no_host_module_spells_a_body_key():
    # key numbers live in the schema table only; these are the shapes they took before
    package = ROOT / "host_tools" / "posbridge"
    shapes = re.compile(r"\{\s*\d+\s*:|\[\s*\d+\s*\]\s*=|\.get\(\s*\d+\s*[,)]|\.pop\(\s*\d+|"
                        r"_KEY\s*=\s*\d+\s*$")
    hits = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "link" / "protocol.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if shapes.search(line.split("#", 1)[0]):
                hits.append(f"{path.relative_to(package)}:{n}: {line.strip()}")
    assert hits == []


def test_logs_show_the_icc_data_by_its_length_only():
    # the ICC data may hold the PAN (5A) or the track 2 equivalent (57)
    icc = bytes.fromhex("5A084761730000000011570A4761730000000011D3")
    fields = {1: "T0000001", 2: 7, 4: {1: "4761730000000011", 2: "3012", 3: "201"},
              18: 7, 19: icc}
    line = p.describe(p.PURCHASE_REQUEST, p.encode_body(fields))
    assert "icc='<21 bytes>'" in line and "entry_mode=7" in line
    assert icc.hex() not in line and "4761730000000011" not in line
