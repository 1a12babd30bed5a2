"""Inputs fuzzing found (make fuzz, fuzzing/), kept as cases: the host's CBOR profile took
bodies the board's decoder refuses and docs/protocol.md says a decoder refuses (an
array or a map as a map key; nesting deeper than 8; more than 256 data items). Both
sides now refuse them alike."""
import importlib.util
from pathlib import Path

import pytest

from posbridge.link import cbor_profile

_spec = importlib.util.spec_from_file_location(
    "board_cbor_regressions", Path(__file__).resolve().parents[2] / "firmware" / "cbor.py")
board = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(board)

FOUND = {
    # a reversal-request-like map with a last key that is an empty array
    "array key after a body": "aa0163397a610201031b7fffffffffffffff064c2c4263066c4356e00ff7"
                              "6e710748986b3c55ef55d2a4081b000000342e5dd60009010c010d4c4bde"
                              "f8294458cecdd5cccd35" + "8001",
    "array key alone": "a180f6",
    "map key": "a1a001",
    "nine arrays deep": "818181818181818181" + "01",
    "sixteen arrays deep": "81" * 16 + "01",
    "257 items": "99010000" + "01" * 256,
}


@pytest.mark.parametrize("hex_input", FOUND.values(), ids=FOUND.keys())
def test_host_and_board_refuse_what_fuzzing_found(hex_input):
    data = bytes.fromhex(hex_input)
    with pytest.raises(board.CBORError):
        board.decode(data)
    with pytest.raises(cbor_profile.ProfileError):
        cbor_profile.decode(data)


def test_eight_deep_and_256_items_still_decode_on_both_sides():
    for data in (bytes.fromhex("81" * 7 + "01"), bytes.fromhex("98ff" + "01" * 255)):
        assert cbor_profile.decode(data) == board.decode(data)
