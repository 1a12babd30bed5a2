"""End to end through ISO 8583: the real firmware under MicroPython, the bridge with
`--upstream iso8583://...` (upstream.Upstream), a TCP proxy that records and can alter
or hold the ISO 8583 messages, and the issuer as `posbridge issuer serve`, a process of
its own on the test's database, on its TCP port, each test on SQLite and on PostgreSQL.
Balance inquiry, purchase and reversal; a host that does not answer; an approval
altered on the TCP link."""
import pytest

from posbridge.link import protocol as p
from posbridge.upstream import Upstream

from tests.iso8583_net import HostProcess, TamperProxy

from .conftest import Session
from .test_purchase import (DEMO_PIN, LI_WEI, LI_WEI_BALANCE, available, board_journal,
                            dismiss, key_purchase, purchase, _drop)
from .test_balance_inquiry import visit


class IsoBank:
    """Board, bridge, ISO 8583 link through a proxy, issuer host."""

    def __init__(self, issuer):
        # `posbridge issuer serve` on the issuer's database, as a process of its own
        self.host = HostProcess(issuer.ledger.path, keys=issuer.ledger.keys.path)
        self.proxy = TamperProxy(self.host.port)
        self.upstream = Upstream("127.0.0.1", self.proxy.port, timeout=3.0,
                                 echo_interval=60).start()
        self.session = Session(issuer=self.upstream, tap=True)
        self.session.thread.start()
        self.session.emulator.wait_for_screen("Insert card", timeout=15)
        self.emulator, self.tap = self.session.emulator, self.session.tap
        self.messages = self.session.messages

    def iso(self, mti):
        return [m for m in self.proxy.requests + self.proxy.responses if m["t"] == mti]

    def close(self):
        self.session.close()
        self.upstream.close()
        self.proxy.close()
        self.host.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def issuer(request, tmp_path):
    """The issuer's demo database, a SQLite file or a PostgreSQL database of the test's
    own; the test reads the ledger through it while the host process charges it."""
    from posbridge.issuer import Issuer
    from posbridge.issuer.demo_data import load_demo
    from posbridge.issuer.ledger import Ledger
    keys = tmp_path / "issuer.keys"
    if request.param == "sqlite":
        location = tmp_path / "issuer.sqlite"
    else:
        databases = request.getfixturevalue("pg_databases")
        location = databases.new()
        request.addfinalizer(lambda: databases.drop(location))
    ledger = Ledger.create(location, keys=keys)
    load_demo(ledger)
    ledger.close()
    iss = Issuer.open(location, keys=keys)
    yield iss
    iss.close()


@pytest.fixture
def iso_bank(issuer):
    bank = IsoBank(issuer)
    yield bank
    bank.close()


def test_balance_inquiry_over_iso8583(iso_bank, issuer):
    screen = visit(iso_bank, LI_WEI, DEMO_PIN)
    assert screen.lines[0] == "BALANCE CNY" and "12,345.67" in screen.text
    assert "SMS sent to" in screen.text               # the notification crossed in 60-62
    [request], [answer] = iso_bank.iso("0100"), iso_bank.iso("0110")
    assert request["3"] == "310000" and request["41"] == "T0000001"
    assert answer["39"] == "00" and answer["54"][:4] == "0001" and answer["60"] == "02"
    assert [r["kind"] for r in issuer.ledger.journal()] == ["balance_inquiry"]


def test_purchase_over_iso8583(iso_bank, issuer):
    screen = purchase(iso_bank, LI_WEI, "1250")
    assert screen.lines[0] == "APPROVED" and "CNY 12.50" in screen.text
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    [request] = iso_bank.iso("0200")
    assert request["4"] == "000000001250" and request["49"] == "156"
    dismiss(iso_bank)
    assert not iso_bank.iso("0400")


def test_lost_answer_is_reversed_over_iso8583(iso_bank, issuer):
    iso_bank.tap.tamper = _drop(p.PURCHASE_RESPONSE)     # lost on the serial link
    screen = purchase(iso_bank, LI_WEI, "1250", result="No charge")
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    dismiss(iso_bank, then="Sending reversal")
    iso_bank.emulator.wait_for_screen("Acknowledged", timeout=20,
                                      after=iso_bank.emulator.screens.index(screen))
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    [reversal] = iso_bank.iso("0400")
    [purchase_request] = iso_bank.iso("0200")
    assert reversal["90"][:10] == "0200" + purchase_request["11"]
    assert reversal["121"] == "1"                     # reason 1: no answer in time
    assert iso_bank.iso("0410")[0]["122"] == "1"      # reversed
    assert board_journal(iso_bank) == []


def test_a_silent_host_leaves_the_purchase_reversed(iso_bank, issuer):
    iso_bank.proxy.silent = True                      # the host charges, its answer is lost
    screen = purchase(iso_bank, LI_WEI, "1250", result="No charge")
    assert "unavailable" in screen.text
    assert board_journal(iso_bank)[0][5] == 4          # to reverse: an ERROR came instead
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250
    iso_bank.proxy.silent = False
    dismiss(iso_bank, then="Sending reversal")
    iso_bank.emulator.wait_for_screen("Acknowledged\n", timeout=40,
                                      after=iso_bank.emulator.screens.index(screen))
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE
    assert board_journal(iso_bank) == []


def test_an_approval_altered_on_the_tcp_link_is_refused_and_reversed(iso_bank, issuer):
    def lower_the_balance(fields):
        if fields["t"] == "0210":
            fields["54"] = fields["54"][:-1] + "9"
    iso_bank.proxy.alter_response = lower_the_balance
    screen = purchase(iso_bank, LI_WEI, "1250", result="No charge")
    assert all("APPROVED" not in s.text for s in iso_bank.emulator.screens)
    assert board_journal(iso_bank)[0][5] == 2          # reason 2: failed verification
    dismiss(iso_bank, then="Sending reversal")
    iso_bank.emulator.wait_for_screen("Acknowledged", timeout=20,
                                      after=iso_bank.emulator.screens.index(screen))
    assert available(issuer, LI_WEI) == LI_WEI_BALANCE


def test_two_boards_on_one_bridge_upstream_with_the_same_stan(iso_bank, issuer, tmp_path):
    # a second board, provisioned as `posbridge provision` does, on the same ISO 8583
    # connection: both boards' first purchase is trace 1, so STAN 000001 twice, told
    # apart by the terminal id
    from posbridge.board.provision import (TEST_BDK, TEST_INITIAL_KEY_ID, TEST_MERCHANT_ID,
                                           TEST_MERCHANT_NAME, provision)
    from posbridge.issuer import terminals
    from posbridge.issuer.dukpt import derive_initial_key
    key_id = TEST_INITIAL_KEY_ID[:4] + bytes.fromhex("90123457")
    terminals.register(issuer.ledger, "T0000002", key_id, TEST_MERCHANT_ID, TEST_MERCHANT_NAME)
    provision(tmp_path, "T0000002", derive_initial_key(TEST_BDK, key_id), key_id)
    second = Session(issuer=iso_bank.upstream, tap=True, state_dir=tmp_path)
    second.thread.start()
    try:
        second.emulator.wait_for_screen("Insert card", timeout=15)
        starts = [key_purchase(bank, LI_WEI, keys) for bank, keys in
                  ((iso_bank, "1250"), (second, "730"))]
        for bank, start in zip((iso_bank, second), starts):
            screen = bank.emulator.wait_for_screen("Card ", timeout=30, after=start)
            assert screen.lines[0] == "APPROVED"
        assert available(issuer, LI_WEI) == LI_WEI_BALANCE - 1250 - 730
        requests = iso_bank.iso("0200")
        assert sorted((r["41"], r["11"], r["4"]) for r in requests) == [
            ("T0000001", "000001", "000000001250"), ("T0000002", "000001", "000000000730")]
    finally:
        second.close()
