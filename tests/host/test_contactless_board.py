"""A contactless purchase on the real board application under MicroPython with a 64
KiB heap (tests/firmware/contactless_app_visit.py): the card tapped at idle, read by
the firmware's PN532 driver and EMV code from a chip and card scripted byte by byte,
below the CVM limit without PIN and above it with, the request's entry mode and ICC
data, and the approval on the screen. The heap on each screen is printed for make
bench (benchmarks/visit.py)."""
import json
from pathlib import Path

import cbor2
import pytest

from posbridge.board.provision import TEST_BDK, TEST_INITIAL_KEY_ID, provision_test_terminal
from posbridge.issuer.dukpt import derive_initial_key, working_key_from_initial
from tests.micropython import run_micropython


def contactless_visit(state: Path, amount: str, cvm_limit: int = 100_000, heap="64k"):
    """(screens [(heap free, text)], request sizes (type, body, payload, frame), stdout)
    of one contactless purchase of `amount` (keyed digits, minor units)."""
    provision_test_terminal(state, cvm_limit=cvm_limit)
    ksn = TEST_INITIAL_KEY_ID + (1).to_bytes(4, "big")
    key = working_key_from_initial(derive_initial_key(TEST_BDK, TEST_INITIAL_KEY_ID), ksn,
                                   0x2001)
    (state / "answer.key").write_bytes(key)
    result = run_micropython(["-m", "contactless_app_visit", str(state), amount, "1234"],
                             heap=heap)
    screens, request = [], None
    for line in result.stdout.splitlines():
        if line.startswith("SCREEN "):
            _, free, text = line.split(" ", 2)
            screens.append((int(free), text))
        elif line.startswith("REQUEST "):
            request = tuple(int(x) for x in line.split()[1:])
    return screens, request, result


@pytest.mark.parametrize("amount, pin", [("1250", False), ("100000", False),
                                         ("100001", True)])
def test_contactless_purchase_on_the_board_in_64k(tmp_path, amount, pin):
    screens, request, result = contactless_visit(tmp_path, amount)
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "DONE" in result.stdout, out
    titles = [text.split("|")[0] for _, text in screens]
    assert "CONTACTLESS" in titles
    texts = "\n".join(text for _, text in screens)
    assert "Reading card" in texts and "APPROVED" in texts
    assert ("Enter PIN" in texts) == pin
    assert "4761730000000011" not in out      # the full PAN is never on a screen
    assert request[0] == 0x12 and request[1] > 252   # past the old frame bound
    assert "MemoryError" not in out
