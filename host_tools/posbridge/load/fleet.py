"""The simulated terminals and their cards, put into the issuer's database as
`posbridge provision` and `posbridge issuer card add` put real ones: each terminal
registered with an initial key ID of its own (BDK id | a derivation ID never issued
before), its initial key derived by the key store; each terminal's cardholder with a
card and an account of their own (or `accounts` shared ones, for contention).

A fleet is named by a run id (3 hex digits, random), so that runs on one database never
reuse a terminal id, a derivation ID or a PAN: terminal Lrrr0001.. (8 characters, ISO
8583 field 41), derivation ID 0rrr0001.., PAN 9990 + the run id as 4 digits + the
card's number as 7 + its Luhn digit.
"""
import secrets

from ..issuer import cards, terminals
from ..issuer.demo_data import DEMO_BDK, DEMO_BDK_ID
from ..issuer.keystore import UnknownKeySet
from ..link.pan import luhn_check_digit
from .terminal import Card, SimulatedTerminal

MERCHANT_ID = "104110070110009"
MERCHANT_NAME = "LOAD TEST SHOP"
CNY = 156
PIN = "1234"
# far more than a run can spend: a declined 51 would be a figure of the test's own making
OPENING_BALANCE = 10 ** 12


def provision(ledger, count: int, *, accounts: "int | None" = None,
              bdk_id: str = DEMO_BDK_ID, run_id: "int | None" = None,
              opening: int = OPENING_BALANCE) -> "list[SimulatedTerminal]":
    """`count` terminals registered and their cards issued (`accounts` cards, shared
    round robin, when given); the key set `bdk_id` is the X9.24-3 test key set,
    imported when the key store lacks it."""
    if not 1 <= count <= 9999:
        raise ValueError("terminals: 1 to 9999")
    keys = ledger.keys
    if not keys.has_key_set(bdk_id):
        if bdk_id != DEMO_BDK_ID:
            raise UnknownKeySet(f"no key set {bdk_id} in {keys.path}")
        keys.import_bdk(DEMO_BDK_ID, DEMO_BDK, "X9.24-3 test BDK")
    run_id = secrets.randbelow(0xFFF) + 1 if run_id is None else run_id
    pans = []
    for i in range(accounts or count):
        partial = f"9990{run_id:04d}{i + 1:07d}"
        pan = partial + luhn_check_digit(partial)
        cards.add(ledger, pan=pan, pin=PIN, expiry="3012", available=opening,
                  currency=CNY, name=f"Load {run_id:04X} {i + 1}")
        pans.append(pan)
    fleet = []
    for i in range(count):
        key_id = bytes.fromhex(bdk_id) + bytes.fromhex(f"{run_id:04X}{i + 1:04X}")
        terminal_id = f"L{run_id:03X}{i + 1:04d}"
        terminals.register(ledger, terminal_id, key_id, MERCHANT_ID, MERCHANT_NAME)
        fleet.append(SimulatedTerminal(terminal_id, key_id, keys.initial_key(key_id),
                                       Card(pans[i % len(pans)], PIN), MERCHANT_ID,
                                       MERCHANT_NAME, CNY))
    return fleet
