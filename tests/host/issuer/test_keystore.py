"""The key store (keystore.py): its file, and each of its operations against what the
terminal sends and what the standard's vectors say."""
import json

import pytest

from posbridge.issuer import LedgerError
from posbridge.issuer.demo_data import DEMO_BDK, DEMO_BDK_ID, DEMO_INITIAL_KEY_ID
from posbridge.issuer.keystore import KeyStore, KeyStoreError, PinReferenceError, UnknownKeySet
from posbridge.issuer.pins import hash_pin
from posbridge.link import cbor_profile

from .request_builder import INITIAL_KEY, TerminalRequestBuilder

PAN = "4761730000000011"


@pytest.fixture
def keys(tmp_path):
    store = KeyStore.create(tmp_path / "issuer.keys")
    store.import_bdk(DEMO_BDK_ID, DEMO_BDK, "test")
    return store


def _ksn_and_block(pan, pin):
    fields = cbor_profile.decode(TerminalRequestBuilder().request(pan, pin=pin)[0])
    return fields[6], fields[5]          # KSN, PIN block


def test_the_file_is_mode_0600_and_reopens(keys):
    assert keys.path.stat().st_mode & 0o777 == 0o600
    again = KeyStore.open(keys.path)
    assert again.key_sets() == {DEMO_BDK_ID: "test"}
    assert again.pan_lookup(PAN) == keys.pan_lookup(PAN)
    assert not list(keys.path.parent.glob("*.tmp"))


def test_create_refuses_an_existing_store_unless_forced(keys):
    with pytest.raises(KeyStoreError, match="exists: --force"):
        KeyStore.create(keys.path)
    fresh = KeyStore.create(keys.path, force=True)
    assert fresh.key_sets() == {} and fresh.pan_lookup(PAN) != keys.pan_lookup(PAN)


def test_a_damaged_store_is_refused_without_quoting_it(keys):
    record = json.loads(keys.path.read_text())
    record["data_key"] = record["data_key"][:10]
    keys.path.write_text(json.dumps(record))
    with pytest.raises(LedgerError, match="is damaged") as err:
        KeyStore.open(keys.path)
    assert record["data_key"] not in str(err.value)


def test_its_repr_names_no_key(keys):
    text = repr(keys)
    assert DEMO_BDK_ID in text
    for key in json.loads(keys.path.read_text())["pvks"].values():
        assert key not in text and key.lower() not in text
    assert DEMO_BDK.hex().upper() not in text


def test_initial_key_is_the_standards(keys):
    # ANSI X9.24-3-2017 supplement: the initial key of initial key ID 1234567890123456
    assert keys.initial_key(DEMO_INITIAL_KEY_ID) == INITIAL_KEY
    with pytest.raises(UnknownKeySet, match="no key set for BDK id 00000000"):
        keys.initial_key(bytes(8))


def test_import_bdk_again_and_with_another_key(keys):
    keys.import_bdk(DEMO_BDK_ID.lower(), DEMO_BDK, "test")     # the same: nothing changes
    with pytest.raises(KeyStoreError, match="with another BDK"):
        keys.import_bdk(DEMO_BDK_ID, bytes(16))


def test_mac_of_a_request_and_its_response(keys):
    body, _ = TerminalRequestBuilder().request(PAN)
    fields = cbor_profile.decode(body)
    signed = cbor_profile.encode({k: v for k, v in fields.items() if k != 7})
    keys.verify_request_mac(fields[6], signed, fields[7])
    with pytest.raises(ValueError, match="does not match"):
        keys.verify_request_mac(fields[6], signed + b"x", fields[7])
    assert len(keys.response_mac(fields[6], b"response", 8)) == 8


def test_pin_is_verified_against_its_offset(keys):
    reference = keys.pin_reference("1234", PAN)
    scheme, index, offset = reference.split("$")
    assert (scheme, index, len(offset)) == ("ibm3624", "1", 4) and offset.isdigit()
    assert keys.verify_pin(*_ksn_and_block(PAN, "1234"), PAN, reference).ok
    for wrong in ("1235", "4321", "12345", "0000"):
        check = keys.verify_pin(*_ksn_and_block(PAN, wrong), PAN, reference)
        assert not check.ok and check.replacement is None
    # 12 digits, the longest PIN a card may have
    long_reference = keys.pin_reference("123456789012", PAN)
    assert keys.verify_pin(*_ksn_and_block(PAN, "123456789012"), PAN, long_reference).ok


def test_the_offset_depends_on_the_pvk_and_the_pan(keys, tmp_path):
    other = KeyStore.create(tmp_path / "other.keys")
    pans = ["4761730000000011", "4761730000000029", "4761730000000037", "4761730000000045",
            "6225880000000050", "6225880000000068", "6225880000000076"]
    mine = [keys.pin_reference("1234", pan) for pan in pans]
    theirs = [other.pin_reference("1234", pan) for pan in pans]
    assert mine != theirs
    assert len(set(mine)) > 1


def test_a_sealed_scrypt_hash_is_verified_once_and_replaced(keys):
    sealed = keys.seal_pin_hash(hash_pin("1234"))
    assert sealed.startswith("sealed-scrypt$") and "scrypt$16384" not in sealed
    wrong = keys.verify_pin(*_ksn_and_block(PAN, "9999"), PAN, sealed)
    assert not wrong.ok and wrong.replacement is None
    right = keys.verify_pin(*_ksn_and_block(PAN, "1234"), PAN, sealed)
    assert right.ok and right.replacement == keys.pin_reference("1234", PAN)


def test_a_sealed_hash_of_another_store_or_an_unknown_form_is_refused(keys, tmp_path):
    other = KeyStore.create(tmp_path / "other.keys")
    for reference in (other.seal_pin_hash(hash_pin("1234")), "plain$1234", "ibm3624$9$1234"):
        with pytest.raises(PinReferenceError):
            keys.verify_pin(*_ksn_and_block(PAN, "1234"), PAN, reference)


def test_pan_encryption_and_lookup(keys, tmp_path):
    blob = keys.encrypt_pan(PAN)
    assert PAN.encode() not in blob and keys.decrypt_pan(blob) == PAN
    assert keys.encrypt_pan(PAN) != blob                       # a new nonce each time
    assert keys.pan_lookup(PAN) == keys.pan_lookup(PAN) != keys.pan_lookup("4761730000000029")
    assert len(keys.pan_lookup(PAN)) == 64
    other = KeyStore.create(tmp_path / "other.keys")
    assert other.pan_lookup(PAN) != keys.pan_lookup(PAN)
    with pytest.raises(KeyStoreError, match="does not open"):
        other.decrypt_pan(blob)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(KeyStoreError, match="does not open"):
        keys.decrypt_pan(bytes(tampered))
