"""Provisioning a terminal's flash records: identity, DUKPT initial key, merchant."""
import json

import pytest

from posbridge.board.provision import (TEST_INITIAL_KEY_ID, TEST_MERCHANT_ID, TEST_MERCHANT_NAME,
                                 ProvisionError, provision, provision_test_terminal)


def test_the_test_terminal_names_its_merchant(tmp_path):
    provision_test_terminal(tmp_path, "T0000009")
    record = json.loads((tmp_path / "terminal.json").read_text())
    assert (record["terminal_id"], record["merchant_id"], record["merchant_name"]) == (
        "T0000009", TEST_MERCHANT_ID, TEST_MERCHANT_NAME)
    assert "initial_key" not in record and "initial_key_id" not in record
    keys = (tmp_path / "keys.bin").read_bytes()
    assert len(keys) == 529 and keys[1:9] == TEST_INITIAL_KEY_ID


def test_the_test_terminal_is_in_the_demo_merchants_time_zone(tmp_path):
    # UTC+8: the demo issuer writes its alerts at that offset, the screen must agree
    provision_test_terminal(tmp_path)
    assert json.loads((tmp_path / "terminal.json").read_text())["utc_offset_min"] == 480


@pytest.mark.parametrize("offset", [-721, 841, "480", 8.0, True, None])
def test_an_offset_the_board_cannot_take_is_refused(tmp_path, offset):
    with pytest.raises(ProvisionError, match="UTC offset"):
        provision_test_terminal(tmp_path, utc_offset_min=offset)
    assert not (tmp_path / "terminal.json").exists()


def test_a_merchant_of_its_own(tmp_path):
    provision_test_terminal(tmp_path, merchant_id="M1", merchant_name="CAFE LUMIERE")
    record = json.loads((tmp_path / "terminal.json").read_text())
    assert (record["merchant_id"], record["merchant_name"]) == ("M1", "CAFE LUMIERE")


@pytest.mark.parametrize("field, value, message", [
    ("merchant_id", "", "merchant id"),
    ("merchant_id", "1" * 16, "merchant id"),        # ISO 8583 field 42: 15
    ("merchant_name", "N" * 23, "merchant name"),    # the name part of field 43: 22
    ("merchant_name", "CAFÉ", "merchant name"),
])
def test_merchant_fields_the_protocol_cannot_carry_are_refused(tmp_path, field, value,
                                                               message):
    with pytest.raises(ProvisionError, match=message):
        provision_test_terminal(tmp_path, **{field: value})
    assert not (tmp_path / "terminal.json").exists()


def test_a_provisioned_terminal_is_not_overwritten_without_force(tmp_path):
    provision_test_terminal(tmp_path)
    with pytest.raises(ProvisionError, match="provisioned already"):
        provision(tmp_path, "T0000001", bytes(16), bytes(8))
    provision(tmp_path, "T0000002", bytes(16), bytes(8), force=True)
    assert json.loads((tmp_path / "terminal.json").read_text())["terminal_id"] == "T0000002"
