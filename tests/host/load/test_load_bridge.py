"""`posbridge load --target bridge`: simulated boards, each on a pseudo-terminal of its
own, speaking the board-bridge link (framing, stop-and-wait, CBOR, HELLO first) to one
bridge serving every port, its issuer in process or an ISO 8583 host; the ledger
audited at the end as for the other targets. Speed is measured by `make bench`."""
import os

import pytest
from click.testing import CliRunner

from posbridge.cli import main
from posbridge.issuer import Ledger
from posbridge.link import protocol as p
from posbridge.load import fleet as fleet_module
from posbridge.load.boards import BridgeTarget, _error_about
from posbridge.load.cli import bridge_target, run_load
from posbridge.load.targets import TargetError

PURCHASES = 20


@pytest.fixture
def database(tmp_path):
    keys = tmp_path / "issuer.keys"
    location = tmp_path / "issuer.sqlite"
    Ledger.create(location, keys=keys, force=True).close()
    return location, keys


def _clean(figures, checked, purchases):
    assert figures.outcomes == {"00": purchases} and not figures.errors
    assert (checked.double, checked.lost, checked.unseen, checked.balance_errors) == (0, 0, 0, 0)
    assert checked.ok and checked.charged == purchases == len(figures.approved)


def test_two_boards_through_one_bridge_charge_every_approval_once(database):
    location, keys = database
    figures, checked = run_load(location, keys, 2, lambda: bridge_target(location, keys),
                                purchases=PURCHASES, seed=5)
    _clean(figures, checked, PURCHASES)
    # both boards took part, each purchase under a trace of its own
    assert len({terminal for terminal, _ in figures.approved}) == 2


def test_the_bridge_upstream_to_an_iso8583_host(database):
    from .fleet_host import fleet_host
    location, keys = database
    with fleet_host(location, keys) as url:
        figures, checked = run_load(location, keys, 2,
                                    lambda: bridge_target(location, keys, url),
                                    purchases=PURCHASES, seed=6)
    _clean(figures, checked, PURCHASES)


def test_a_bridge_with_no_issuer_answers_errors_the_board_counts(database):
    """No issuer behind the bridge: each purchase gets the ERROR about its trace, a
    TargetError for the run, and nothing is charged."""
    location, keys = database
    ledger = Ledger.open(location, keys)
    [terminal] = fleet_module.provision(ledger, 1)
    ledger.close()
    target = BridgeTarget(None)
    try:
        target.connect([terminal])
        pending = terminal.purchase(500, 1_700_000_000)
        with pytest.raises(TargetError, match=f"bridge ERROR {p.ERR_ISSUER_UNAVAILABLE}"):
            target.for_terminal(0).send(p.PURCHASE_REQUEST, pending.body)
    finally:
        target.close()


def test_an_error_about_another_request_is_not_this_ones():
    request = p.encode_body(p.build("status-request"))
    late = p.encode_body(p.build("error", code=4, text="x", about_type=p.BALANCE_REQUEST))
    assert _error_about(late, p.PURCHASE_REQUEST, request) is None
    assert _error_about(b"\xff", p.PURCHASE_REQUEST, request) == "unreadable"


def test_the_command_runs_boards_through_a_bridge():
    result = CliRunner().invoke(main, ["load", "--target", "bridge", "--terminals", "2",
                                       "--purchases", "10", "--no-live"])
    assert result.exit_code == 0, result.output
    assert "bridge, 2 boards" in result.output and "double charges" in result.output


def test_the_command_refuses_an_upstream_without_a_bridge():
    result = CliRunner().invoke(main, ["load", "--upstream", "iso8583://127.0.0.1:1",
                                       "--no-live"])
    assert result.exit_code == 2 and "--target bridge" in result.output


def _open_ptys() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(("/dev/pts", "/dev/ptmx"))
        except OSError:          # closed meanwhile
            pass
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_closing_the_target_leaves_no_open_pty(database):
    location, keys = database
    before = _open_ptys()
    run_load(location, keys, 3, lambda: bridge_target(location, keys), purchases=3)
    assert _open_ptys() <= before
