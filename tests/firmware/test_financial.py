# Balance request building and response checking on the board side.
import cbor
import cmac
import dukpt
import messages as m
from financial import build_balance_request, check_response, SecurityError
from fwtest import raises
from reference_vectors import load, unhex

TERMINAL = "T0000001"


class Keys:
    def __init__(self):
        ref = load()
        self.initial_key = unhex(ref["initial_key"])
        self.initial_key_id = unhex(ref["initial_key_id"])


class Card:
    pan = "4111111111111111"
    expiry = "3012"
    service_code = "201"


def request(counter=1, trace=17):
    pin = bytearray(b"1234")
    body, pending = build_balance_request(TERMINAL, trace, 1795305600, Card(), pin, Keys(), counter)
    assert pin == bytearray(4)  # the clear PIN is gone
    return body, pending


def response_for(pending, fields, tamper=None):
    keys = Keys()
    mac_key = dukpt.working_keys(keys.initial_key, keys.initial_key_id,
                                 dukpt.split_ksn(pending.ksn)[1],
                                 (dukpt.KEY_USAGE_MAC_VERIFICATION,))[0]
    base = {m.K_RSP_TERMINAL: TERMINAL, m.K_RSP_TRACE: pending.trace, m.K_RSP_CODE: "00",
            m.K_RSP_AVAILABLE: 123456, m.K_RSP_LEDGER: 123456, m.K_RSP_CURRENCY: 156,
            m.K_RSP_NOTIFY: {m.K_NOTE_STATUS: 2, m.K_NOTE_CHANNEL: "sms",
                             m.K_NOTE_DEST: "138****5678"},
            m.K_RSP_KSN: pending.ksn}
    for k in fields:
        base[k] = fields[k]
    base[m.K_RSP_MAC] = cmac.aes_cmac(mac_key, cbor.encode(base), m.MAC_LEN)
    body = cbor.encode(base)
    if tamper:
        body = tamper(body)
    return body


def test_request_fields_and_mac():
    body, pending = request(counter=1)
    fields = cbor.decode(body)
    assert sorted(fields) == [1, 2, 3, 4, 5, 6, 7]
    assert fields[m.K_REQ_KSN] == unhex(load()["initial_key_id"]) + b"\x00\x00\x00\x01"
    mac = fields.pop(m.K_REQ_MAC)
    ref = load()["transactions"][0]
    assert cmac.aes_cmac(unhex(ref["mac_generation_key"]), cbor.encode(fields), 8) == mac
    assert len(fields[m.K_REQ_PIN_BLOCK]) == 16
    assert fields[m.K_REQ_CARD] == {1: Card.pan, 2: "3012", 3: "201"}


def test_good_response_passes():
    body, pending = request()
    fields = check_response(response_for(pending, {}), pending, TERMINAL)
    assert fields[m.K_RSP_AVAILABLE] == 123456 and fields[m.K_RSP_CODE] == "00"


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
    other = response_for(pending, {m.K_RSP_TRACE: 18})
    raises(SecurityError, check_response, other, pending, TERMINAL)
    raises(SecurityError, check_response, response_for(pending, {m.K_RSP_TERMINAL: "T9"}),
           pending, TERMINAL)


def test_response_without_mac_or_garbage_is_refused():
    body, pending = request()
    raises(SecurityError, check_response, b"\xa1\x03\x6200", pending, TERMINAL)
    raises(SecurityError, check_response, b"\xff", pending, TERMINAL)
    raises(SecurityError, check_response, b"\x80", pending, TERMINAL)
