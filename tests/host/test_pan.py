"""The board and the host mask a card number by one rule (PCI DSS 3.4)."""
import importlib.util
from pathlib import Path

import pytest

from posbridge.link.pan import mask_pan

_SPEC = importlib.util.spec_from_file_location(
    "board_card_reader", Path(__file__).resolve().parents[2] / "firmware" / "card_reader.py")


@pytest.fixture(scope="module")
def board_mask_pan():
    module = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(module)
    return module.mask_pan


@pytest.mark.parametrize("length", range(0, 20))
def test_board_and_host_mask_alike(board_mask_pan, length):
    pan = "4761739001010010123"[:length]
    assert board_mask_pan(pan) == mask_pan(pan)
    shown = sum(ch != "*" for ch in mask_pan(pan))
    assert shown == (10 if length >= 13 else 4 if length > 4 else 0)
