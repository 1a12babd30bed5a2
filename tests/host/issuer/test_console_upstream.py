"""The console's issuer behind an ISO 8583 host (web/upstream_issuer.py): the board's
requests answered by `posbridge issuer serve`, the page's fault switches acting on the
bridge's side of the TCP link as the in-process issuer's faults act, and the command
line that sets it up."""
import threading

import pytest
from click.testing import CliRunner

from posbridge.cli import main
from posbridge.issuer import Ledger
from posbridge.issuer.errors import IssuerUnavailable
from posbridge.issuer.faults import Faults
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST
from posbridge.upstream import Upstream
from posbridge.web.upstream_issuer import UpstreamIssuer

from tests.host.issuer.request_builder import SecurityError
from tests.iso8583_net import RunningHost

LI_WEI = "4761730000000011"



@pytest.fixture
def remote(issuer, db_path):
    host = RunningHost(issuer)
    client = Upstream("127.0.0.1", host.port, timeout=2.0, echo_interval=60).start()
    for _ in range(500):
        if client.reachable():
            break
        threading.Event().wait(0.02)
    ledger = Ledger.open(db_path)
    sleeps = []
    yield UpstreamIssuer(client, ledger, sleep=sleeps.append), sleeps
    client.close()
    ledger.close()
    host.close()


def test_the_host_answers_and_the_cards_are_its_own(remote, terminal, issuer):
    console_issuer, _ = remote
    assert console_issuer.reachable()
    assert LI_WEI in [card.pan for card in console_issuer.ledger.cards()]
    body, pending = terminal.request(LI_WEI)
    assert terminal.check(console_issuer.handle(BALANCE_REQUEST, body), pending)[3] == "00"
    before = issuer.ledger.card_by_pan(LI_WEI).available
    body, pending = terminal.purchase(LI_WEI, 1250)
    assert terminal.check(console_issuer.handle(PURCHASE_REQUEST, body), pending)[3] == "00"
    assert issuer.ledger.card_by_pan(LI_WEI).available == before - 1250


def test_the_page_s_faults_on_the_upstream(remote, terminal, issuer):
    console_issuer, sleeps = remote
    console_issuer.faults = Faults(unavailable=True)
    assert not console_issuer.reachable()
    body, pending = terminal.request(LI_WEI)
    with pytest.raises(IssuerUnavailable):
        console_issuer.handle(BALANCE_REQUEST, body)
    # slow: the host has charged, the answer comes late
    console_issuer.faults = Faults(delay_s=20.0)
    before = issuer.ledger.card_by_pan(LI_WEI).available
    body, pending = terminal.purchase(LI_WEI, 300)
    assert terminal.check(console_issuer.handle(PURCHASE_REQUEST, body), pending)[3] == "00"
    assert sleeps == [20.0] and issuer.ledger.card_by_pan(LI_WEI).available == before - 300
    # bad MAC: the board refuses the answer
    console_issuer.faults = Faults(bad_mac=True)
    body, pending = terminal.request(LI_WEI)
    with pytest.raises(SecurityError):
        terminal.check(console_issuer.handle(BALANCE_REQUEST, body), pending)


def test_console_upstream_needs_the_host_s_database():
    result = CliRunner().invoke(main, ["console", "--upstream", "iso8583://127.0.0.1:9"])
    assert result.exit_code == 2 and "--issuer-db" in result.output
    result = CliRunner().invoke(main, ["console", "--upstream", "tcp://h:1",
                                       "--issuer-db", "x.sqlite"])
    assert result.exit_code == 2 and "iso8583://HOST:PORT" in result.output


def test_console_upstream_with_a_database_that_is_not_there(tmp_path):
    result = CliRunner().invoke(main, ["console", "--upstream", "iso8583://127.0.0.1:9",
                                       "--issuer-db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 1 and "Traceback" not in result.output
