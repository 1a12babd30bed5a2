"""A thief with a copy of the board's flash (the emulator's state directory) who is also
on the serial link: what the flash holds must give no key that settles money.

The journal keeps a pending reversal's bytes and the MAC verification key (usage 2001)
of its KSN, so that the board can check the acknowledgement (firmware/journal.py). That
key is all it takes to forge the acknowledgement: the board then drops the reversal,
and the purchase it showed as "No charge" stays charged."""
import hashlib
import json

import pytest

from posbridge.issuer import dukpt
from posbridge.link import cbor_profile
from posbridge.link import protocol as p
from tests.e2e.test_purchase import (LI_WEI, LI_WEI_BALANCE, available, board_journal,
                                     dismiss, purchase)
from tests.e2e.wiretap import BRIDGE_TO_BOARD, DROP


def forged_acknowledgement(state_dir):
    """A reversal-response 00 "credited back" to the reversal waiting in the journal on
    the flash, MAC'd under the key the journal keeps beside it."""
    [entry] = json.loads((state_dir / "journal.json").read_text())["entries"]
    request, key = bytes.fromhex(entry[6]), bytes.fromhex(entry[7])
    r = cbor_profile.decode(request)
    fields = p.build("reversal-response", terminal_id=r[1], trace=r[2], response_code="00",
                     ksn=r[6], original_trace=r[12], outcome=1,
                     request_digest=hashlib.sha256(request).digest())
    mac = dukpt.aes_cmac(key, p.mac_input("reversal-response", fields), p.MAC_LEN)
    return p.with_mac("reversal-response", fields, mac)


@pytest.mark.xfail(strict=True, reason=(
    "the journal keeps a pending reversal's MAC verification key on flash: with a copy "
    "of the flash a man in the middle forges the reversal's acknowledgement, the board "
    "drops the reversal, and a purchase it showed as 'No charge' stays charged"))
def test_a_flash_copy_does_not_let_a_man_in_the_middle_acknowledge_a_reversal(
        bank, issuer):
    em = bank.emulator
    seen = {"seq": 0, "forged": 0}

    def tamper(direction, payload):
        if direction == BRIDGE_TO_BOARD:
            seen["seq"] = payload[2]
            return DROP if payload[1] == p.PURCHASE_RESPONSE else None   # reversed
        if payload[1] != p.REVERSAL_REQUEST:
            return None
        # the reversal never reaches the issuer; the thief reads the flash (the journal
        # saved it, with its key, before it was sent) and answers it himself
        if not seen["forged"]:
            seen["forged"] += 1
            body = forged_acknowledgement(em.state_dir)
            bank.tap.inject(bytes([p.PROTOCOL_VERSION, p.REVERSAL_RESPONSE,
                                   (seen["seq"] + 100) & 0xFF, 0]) + body)
        return DROP

    bank.tap.tamper = tamper
    screen = purchase(bank, LI_WEI, "1250", result="No charge")
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250     # charged
    dismiss(bank, then="Sending reversal")
    em.wait_for_screen("cknowledged", timeout=25, after=em.screens.index(screen))
    assert seen["forged"] == 1
    assert all("Credited back" not in s.text for s in em.screens), \
        "the board took a forged acknowledgement"
    [entry] = board_journal(bank)
    assert entry[0] == 1                      # the reversal waits on flash
