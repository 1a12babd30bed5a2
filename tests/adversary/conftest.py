"""The end-to-end rig of tests/e2e (the real firmware under MicroPython over
pseudo-terminals, the bridge, the issuer on the demo data, the wire tap between board and
bridge), for a man in the middle on the serial link. The issuer here keeps a clock the
test can move (`issuer_clock`), and `skewed_bank` gives the board a clock its bridge set
wrong."""
import time

import pytest

from tests.e2e.conftest import Session, bank  # noqa: F401  (fixtures, used by name)


class IssuerClock:
    """time.time() and an offset the test sets: "30 days later" without waiting."""

    def __init__(self):
        self.offset = 0

    def __call__(self):
        return time.time() + self.offset


@pytest.fixture
def issuer_clock():
    return IssuerClock()


@pytest.fixture
def issuer(tmp_path, issuer_clock):
    """The issuer simulator on a fresh database with the demo data, on issuer_clock."""
    from posbridge.issuer import Faults, Issuer, Policy
    from posbridge.issuer.demo_data import load_demo
    from posbridge.issuer.ledger import Ledger
    path = tmp_path / "issuer.sqlite"
    ledger = Ledger.create(path)
    load_demo(ledger)
    ledger.close()
    iss = Issuer(Ledger.open(path), Policy.from_env(), Faults.from_env(), clock=issuer_clock)
    yield iss
    iss.close()


@pytest.fixture
def skewed_bank(request, issuer):
    """`bank` whose bridge tells the board a time `request.param` seconds off (the bridge
    sets the board's clock, unauthenticated)."""
    s = Session(issuer=issuer, tap=True)
    s.bridge.clock = lambda: time.time() + request.param    # before it answers HELLO
    s.thread.start()
    s.emulator.wait_for_screen("Insert card", timeout=15)
    yield s
    s.close()
