"""`posbridge load` on a short run: real DUKPT-protected, MAC'd purchases from several
simulated terminals, every answer checked as the board checks it, and the ledger
audited at the end: the counts add up, no purchase is charged twice, none the terminal
saw approved is lost, none it did not see approved is charged. On SQLite and PostgreSQL.
Speed is measured by `make bench`, not here."""
from collections import Counter

import pytest
from click.testing import CliRunner

from posbridge.cli import main
from posbridge.issuer import Issuer, Ledger
from posbridge.load import fleet as fleet_module
from posbridge.load.audit import audit
from posbridge.load.cli import run_in_process
from posbridge.load.run import LoadRun, percentile
from posbridge.load.targets import InProcessTarget, TargetError

PURCHASES = 120


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """An empty issuer database and its key store."""
    keys = tmp_path / "issuer.keys"
    if request.param == "sqlite":
        location = tmp_path / "issuer.sqlite"
    else:
        location = request.getfixturevalue("pg_url")
    Ledger.create(location, keys=keys, force=True).close()
    return location, keys


def test_a_short_run_charges_every_approval_once_and_nothing_else(database):
    location, keys = database
    figures, checked = run_in_process(location, keys, 6, accounts=3, purchases=PURCHASES,
                                      seed=1)
    assert figures.sent == PURCHASES == figures.answered + sum(figures.errors.values())
    assert figures.outcomes == {"00": PURCHASES} and not figures.errors
    assert len(figures.latencies_ms) == PURCHASES
    assert (checked.double, checked.lost, checked.unseen, checked.balance_errors) == (0, 0, 0, 0)
    assert checked.ok and checked.purchases == checked.charged == PURCHASES
    assert checked.charged_amount == sum(figures.approved.values())
    # every terminal took part, each purchase under a trace of its own
    assert len({terminal for terminal, _ in figures.approved}) == 6
    assert len(figures.approved) == PURCHASES


class Flaky:
    """A target that loses every third answer after the issuer has processed the
    request (the reply lost on the way), and refuses every fifth before it."""

    def __init__(self, target):
        self.target = target
        self.calls = Counter()

    def for_terminal(self, index):
        return self

    def send(self, mtype, body):
        self.calls["all"] += 1
        n = self.calls["all"]
        if n % 5 == 0:
            raise TargetError("connection refused")
        answer = self.target.send(mtype, body)
        if n % 3 == 0:
            raise TargetError("timeout")
        return answer


def test_lost_answers_are_reversed_and_the_audit_still_balances(database):
    location, keys = database
    ledger = Ledger.open(location, keys)
    fleet = fleet_module.provision(ledger, 4)
    ledger.close()
    issuer = Issuer(Ledger.open(location, keys))
    try:
        run = LoadRun(fleet, Flaky(InProcessTarget(issuer)), count=60, seed=2)
        figures = run.run()
        checked = audit(issuer.ledger, fleet, figures.approved, fleet_module.OPENING_BALANCE)
    finally:
        issuer.close()
    assert figures.sent == 60 == figures.answered + sum(figures.errors.values())
    assert set(figures.errors) == {"timeout", "connection refused"}
    assert figures.reversals >= sum(figures.errors.values()) - figures.reversals_unsent
    assert checked.ok, checked.problems
    assert checked.charged == len(figures.approved) == figures.outcomes["00"]


def test_the_audit_finds_a_lost_and_an_unseen_charge(database):
    location, keys = database
    ledger = Ledger.open(location, keys)
    fleet = fleet_module.provision(ledger, 2)
    ledger.close()
    issuer = Issuer(Ledger.open(location, keys))
    try:
        figures = LoadRun(fleet, InProcessTarget(issuer), count=10, seed=3).run()
        approved = dict(figures.approved)
        assert audit(issuer.ledger, fleet, approved, fleet_module.OPENING_BALANCE).ok
        # what a terminal might wrongly believe: an approval it never got, and one
        # charged that it did not see
        (terminal_id, trace), amount = next(iter(approved.items()))
        del approved[(terminal_id, trace)]
        approved[(terminal_id, trace + 1000)] = amount
        checked = audit(issuer.ledger, fleet, approved, fleet_module.OPENING_BALANCE)
    finally:
        issuer.close()
    assert (checked.lost, checked.unseen, checked.double) == (1, 1, 0)
    assert not checked.ok and len(checked.problems) == 2


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([], 50) == 0


def test_the_command_prints_the_summary(tmp_path):
    result = CliRunner().invoke(main, ["load", "--terminals", "2", "--purchases", "20",
                                       "--no-live"])
    assert result.exit_code == 0, result.output
    assert "authorisations a second" in result.output
    assert "double charges" in result.output and "lost charges" in result.output


def test_a_run_through_the_iso8583_host_charges_every_approval_once(database):
    """The fleet through the bridge's upstream client and an ISO 8583 host (in this
    process) on the database: the same audit."""
    from posbridge.load.cli import run_load
    from posbridge.load.targets import Iso8583Target
    from .fleet_host import fleet_host
    location, keys = database
    with fleet_host(location, keys) as url:
        figures, checked = run_load(location, keys, 5, lambda: Iso8583Target([url, url], 2),
                                    purchases=40, seed=4)
    assert figures.outcomes == {"00": 40} and not figures.errors
    assert checked.ok and checked.charged == 40 == len(figures.approved)
