import threading

import pytest

from posbridge.bridge import Bridge
from posbridge.board.emulator import Emulator
from posbridge.link.fault_injector import FaultInjector
from posbridge.link.host_link import HostLink, LinkClosed
from posbridge.ports import open_port

from .wiretap import WireTap


class Session:
    """The real firmware under MicroPython, a bridge on its host link, and every message
    that crossed, as (direction, type, body)."""

    def __init__(self, inject_seed=None, issuer=None, tap=False, state_dir=None):
        self.emulator = Emulator(state_dir=state_dir)
        self.messages = []
        self.stop = threading.Event()
        self.board_path = self.emulator.start()
        self.injector = None
        self.tap = None
        port_path = self.board_path
        if inject_seed is not None:
            # the fault injector between the board's tty and the bridge
            self.injector = FaultInjector(self.board_path, seed=inject_seed)
            port_path = self.injector.start()
        elif tap:
            self.tap = WireTap(self.board_path)
            port_path = self.tap.start()
        self.port = open_port(port_path)
        self.link = HostLink(self.port, frame_log=self._record).start()
        self.bridge = Bridge(self.link, issuer=issuer)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _record(self, direction, mtype, seq, body):
        self.messages.append((direction, mtype, bytes(body)))

    def _serve(self):
        try:
            self.bridge.serve(self.stop)
        except LinkClosed:
            pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.link.close()
        self.port.close()
        if self.injector:
            self.injector.stop()
        if self.tap:
            self.tap.stop()
        self.emulator.stop()


@pytest.fixture
def session():
    s = Session()
    s.thread.start()
    yield s
    s.close()


@pytest.fixture
def noisy_session():
    s = Session(inject_seed=7)
    s.thread.start()
    yield s
    s.close()


@pytest.fixture
def issuer(tmp_path):
    """An issuer simulator on a fresh database with the demo data (docs/issuer.md)."""
    from posbridge.issuer import Issuer
    from posbridge.issuer.demo_data import load_demo
    from posbridge.issuer.ledger import Ledger
    path = tmp_path / "issuer.sqlite"
    ledger = Ledger.create(path)
    load_demo(ledger)
    ledger.close()
    iss = Issuer.open(path)
    yield iss
    iss.close()


@pytest.fixture
def bank(issuer):
    """The board, the bridge and the issuer, with a wire tap on the link."""
    s = Session(issuer=issuer, tap=True)
    s.thread.start()
    s.emulator.wait_for_screen("Insert card", timeout=15)
    yield s
    s.close()
