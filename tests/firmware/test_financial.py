# Balance request building and response checking on the board side.
import hashlib

import cbor
import cmac
import messages as m
from key_loading import working_key
from financial import build_request
from answer import check_response, SecurityError
from fwtest import raises
from reference_vectors import load, unhex

TERMINAL = "T0000001"
# body keys, docs/protocol.cddl balance-request / balance-response
RSP_TERMINAL = 1
RSP_TRACE = 2
RSP_CODE = 3
RSP_AVAILABLE = 5
RSP_LEDGER = 6
RSP_CURRENCY = 7
RSP_NOTIFY = 8
RSP_KSN = 9
RSP_MAC = 15
RSP_REQUEST = 17
NOTE_STATUS = 1
NOTE_CHANNEL = 2
NOTE_DEST = 3
REQ_KSN = 6
REQ_MAC = 7
REQ_PIN_BLOCK = 5
REQ_CARD = 4


def ref_keys(counter, trace):
    """(trace, KSN, [PIN key, MAC generation, MAC verification]) of `counter` as
    terminal_keys.take gives them, walked from the reference vectors' initial key:
    X9.24-3-2017 test vector supplement, AES-128 BDK set."""
    ref = load()
    ik, ikid = unhex(ref["initial_key"]), unhex(ref["initial_key_id"])
    return (trace, ikid + counter.to_bytes(4, "big"),
            [bytearray(working_key(ik, ikid, counter, u)) for u in (0x1000, 0x2000, 0x2001)])


class Card:
    pan = "4111111111111111"
    expiry = "3012"
    service_code = "201"


def request(counter=1, trace=17):
    pin = bytearray(b"1234")
    body, pending = build_request(TERMINAL, 1795305600, Card(), pin, ref_keys(counter, trace))
    assert pin == bytearray(4)  # the clear PIN is gone
    return body, pending


def response_for(pending, fields, tamper=None, request_body=None, drop=()):
    """A response to the request `pending` is for, naming `request_body` (the request's
    own bytes by default), without the keys in `drop`, MAC'd under its KSN's key."""
    mac_key = ref_keys(int.from_bytes(pending.ksn[8:12], "big"), 0)[2][2]
    base = {RSP_TERMINAL: TERMINAL, RSP_TRACE: pending.trace, RSP_CODE: "00",
            RSP_AVAILABLE: 123456, RSP_LEDGER: 123456, RSP_CURRENCY: 156,
            RSP_NOTIFY: {NOTE_STATUS: 2, NOTE_CHANNEL: "sms",
                             NOTE_DEST: "138****5678"},
            RSP_KSN: pending.ksn, RSP_REQUEST: pending.digest}
    if request_body is not None:
        base[RSP_REQUEST] = hashlib.sha256(request_body).digest()
    for k in fields:
        base[k] = fields[k]
    for k in drop:
        del base[k]
    base[RSP_MAC] = cmac.aes_cmac(mac_key, cbor.encode(base), m.MAC_LEN)
    body = cbor.encode(base)
    if tamper:
        body = tamper(body)
    return body


def test_request_fields_and_mac():
    body, pending = request(counter=1)
    fields = cbor.decode(body)
    assert sorted(fields) == [1, 2, 3, 4, 5, 6, 7]
    assert fields[REQ_KSN] == unhex(load()["initial_key_id"]) + b"\x00\x00\x00\x01"
    mac = fields.pop(REQ_MAC)
    ref = load()["transactions"][0]
    assert cmac.aes_cmac(unhex(ref["mac_generation_key"]), cbor.encode(fields), 8) == mac
    assert len(fields[REQ_PIN_BLOCK]) == 16
    assert fields[REQ_CARD] == {1: Card.pan, 2: "3012", 3: "201"}


def test_contactless_request_without_pin_carries_entry_mode_and_icc():
    card = Card()
    card.icc = bytes.fromhex("9F2608") + bytes(range(8)) + bytes.fromhex("9F36020007")
    keys = ref_keys(2, 18)
    body, pending = build_request(TERMINAL, 1795305600, card, None, keys,
                                  {8: 1250, 9: 156, 10: "104110070110001", 11: "DEMO SHOP"})
    fields = cbor.decode(body)
    assert REQ_PIN_BLOCK not in fields
    assert fields[m.K_ENTRY_MODE] == 7 and fields[m.K_ICC] == card.icc
    assert pending.mtype == m.PURCHASE_REQUEST
    assert not any(keys[2][0]) and not any(keys[2][1])   # PIN and MAC keys wiped
    mac = fields.pop(REQ_MAC)
    assert cmac.aes_cmac(ref_keys(2, 18)[2][1], cbor.encode(fields), 8) == mac


def test_good_response_passes():
    body, pending = request()
    assert pending.digest == hashlib.sha256(body).digest()
    fields = check_response(response_for(pending, {}, request_body=body), pending, TERMINAL)
    assert fields[RSP_AVAILABLE] == 123456 and fields[RSP_CODE] == "00"


def test_a_macd_answer_to_other_bytes_under_our_identity_is_refused():
    # the issuer answers (MAC'd) an altered copy of our request too: same terminal id,
    # trace and KSN, other bytes. That answer must never pass for ours.
    body, pending = request()
    fields = cbor.decode(body)
    fields[REQ_CARD][2] = "3101"
    altered = cbor.encode(fields)
    raises(SecurityError, check_response,
           response_for(pending, {RSP_CODE: "63"}, request_body=altered), pending, TERMINAL)
    # nor does an answer that names no request at all
    raises(SecurityError, check_response,
           response_for(pending, {RSP_CODE: "63"}, drop=(RSP_REQUEST,)), pending, TERMINAL)


def flip(offset):
    def tamper(body):
        b = bytearray(body)
        b[offset] ^= 0x01
        return bytes(b)
    return tamper


def test_tampered_response_is_a_security_error():
    body, pending = request()
    good = response_for(pending, {})
    for offset in range(len(good)):
        try:
            check_response(flip(offset)(good), pending, TERMINAL)
        except SecurityError:
            continue
        raise AssertionError("flipped byte %d accepted" % offset)


def test_response_to_another_transaction_is_refused():
    body, pending = request(trace=17)
    other = response_for(pending, {RSP_TRACE: 18})
    raises(SecurityError, check_response, other, pending, TERMINAL)
    raises(SecurityError, check_response, response_for(pending, {RSP_TERMINAL: "T9"}),
           pending, TERMINAL)


def test_response_without_mac_or_garbage_is_refused():
    body, pending = request()
    raises(SecurityError, check_response, b"\xa1\x03\x6200", pending, TERMINAL)
    raises(SecurityError, check_response, b"\xff", pending, TERMINAL)
    raises(SecurityError, check_response, b"\x80", pending, TERMINAL)
