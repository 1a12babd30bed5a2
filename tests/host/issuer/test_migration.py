"""A version-4 database (before the terminal registry) opens migrated to version 5: its
journal, postings and outbox kept and still linked, (terminal id, trace number) no
longer unique, the registry empty until `posbridge issuer terminal add` fills it, with
the counters the journal already used."""
import sqlite3

import pytest
from click.testing import CliRunner

from posbridge.issuer.cli import issuer as issuer_group
from posbridge.issuer import IssuerSecurityError, Ledger, codes
from posbridge.issuer.ledger import SCHEMA_VERSION
from posbridge.link.protocol import PURCHASE_REQUEST

from .request_builder import INITIAL_KEY_ID

LI_WEI = "4761730000000011"


def _as_version_4(path):
    """The database at `path` made what version 4 made: the journal with UNIQUE
    (terminal_id, trace_number) and its index on (terminal_id, original_trace), no
    registry tables."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA legacy_alter_table = ON")
    (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'transactions'").fetchone()
    ddl_v4 = ddl.rstrip()[:-1].rstrip() + ",\n        UNIQUE (terminal_id, trace_number)\n    )"
    for statement in (
            "DROP TABLE terminal_keys", "DROP TABLE terminals",
            "ALTER TABLE transactions RENAME TO journal_now", ddl_v4,
            "INSERT INTO transactions SELECT * FROM journal_now", "DROP TABLE journal_now",
            "CREATE INDEX transactions_by_original ON transactions (terminal_id, "
            "original_trace) WHERE original_trace IS NOT NULL",
            "UPDATE schema_version SET version = 4"):
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.fixture
def version_4(make_issuer, db_path, terminal):
    """A version-4 database whose journal holds an approved purchase (with its posting
    and SMS) and the KSN counter it used."""
    issuer = make_issuer()
    body, _ = terminal.purchase(LI_WEI, 1250)
    assert issuer.handle(PURCHASE_REQUEST, body)
    issuer.close()
    _as_version_4(db_path)
    return db_path


def test_a_version_4_database_is_migrated(version_4, make_issuer, terminal):
    conn = sqlite3.connect(version_4)
    before = [conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
              for t in ("transactions", "ledger_entries", "outbox")]
    conn.close()
    ledger = Ledger.open(version_4)
    try:
        assert ledger.schema_version() == SCHEMA_VERSION == 5
        assert [[tuple(r) for r in ledger.execute(f"SELECT * FROM {t} ORDER BY id")]
                for t in ("transactions", "ledger_entries", "outbox")] == before
        assert ledger.execute("PRAGMA foreign_key_check").fetchall() == []
        # the postings and the outbox still name the journal by its name
        parents = {r["table"] for t in ("ledger_entries", "outbox")
                   for r in ledger.execute(f"PRAGMA foreign_key_list({t})")}
        assert "transactions" in parents and not any("v4" in p for p in parents)
        assert ledger.execute("SELECT count(*) FROM terminals").fetchone()[0] == 0
        # a trace may repeat now (after the window): nothing refuses a second row
        with ledger.transaction():
            ledger.record_transaction(terminal_id="T0000001", trace_number=1, digest="00",
                                      kind="balance_inquiry", card_id=None,
                                      response_code="14", response=b"x", request_time=0)
    finally:
        ledger.close()
    Ledger.open(version_4).close()                # opened again: nothing more to do


def test_a_migrated_database_serves_registered_terminals_only(version_4, make_issuer,
                                                              terminal, tmp_path):
    issuer = make_issuer()
    with pytest.raises(IssuerSecurityError, match="T0000001 is not registered"):
        issuer.handle(PURCHASE_REQUEST, terminal.purchase(LI_WEI, 100)[0])
    issuer.close()
    # the issuer group alone: posbridge's main would set up logging for the later tests
    result = CliRunner().invoke(issuer_group, [
        "--db", str(version_4), "terminal", "add", "--terminal-id", "T0000001",
        "--key-id", INITIAL_KEY_ID.hex(), "--merchant-id", "104110070110001",
        "--merchant-name", "DEMO SHOP"])
    assert result.exit_code == 0, result.output
    # the journal's highest counter (1) is taken over
    assert "highest KSN counter used 1" in result.output
    issuer = make_issuer()
    terminal.counter = 0                          # counter 1 again, under a new trace
    with pytest.raises(IssuerSecurityError, match="not above the highest used, 1"):
        issuer.handle(PURCHASE_REQUEST, terminal.purchase(LI_WEI, 100)[0])
    body, pending = terminal.purchase(LI_WEI, 100)
    assert terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending)[3] == codes.APPROVED
    listing = CliRunner().invoke(issuer_group, ["--db", str(version_4), "terminal", "list"])
    assert "T0000001" in listing.output and "counter 2" in listing.output
