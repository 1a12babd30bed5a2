"""Schema migrations from a version-4 database as the last version-4 build left it
(data/issuer_v4.sql: its journal holds three requests of T0000001, KSN counters 1 to 3):

- to version 5, the terminal registry: the journal, postings and outbox kept and still
  linked, (terminal id, trace number) no longer unique, the registry empty until
  `posbridge issuer terminal add` fills it, with the counters the journal already used;
- to version 6, keys out of the ledger: the BDK moved to the key store, the PANs
  encrypted, the scrypt PIN hashes sealed until each card's next right PIN replaces
  them with an IBM 3624 offset."""
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from posbridge.issuer import (Issuer, IssuerSecurityError, Ledger, LedgerError, Policy, codes,
                              terminals)
from posbridge.issuer.cli import issuer as issuer_group
from posbridge.issuer.demo_data import DEMO_BDK, DEMO_BDK_ID, DEMO_CARDS
from posbridge.issuer.keystore import KeyStore, path_beside
from posbridge.issuer.ledger import MIGRATIONS, REGISTRY_STEP, SCHEMA_VERSION
from posbridge.link.protocol import PURCHASE_REQUEST

from .conftest import ISSUER_NOW
from .request_builder import INITIAL_KEY_ID
from .test_balance_inquiry import LI_WEI, ZHANG_MIN, ask
from .test_purchase import buy

V4_DUMP = Path(__file__).parent / "data" / "issuer_v4.sql"
JOURNALED = ("transactions", "ledger_entries", "outbox")


def make_v4(path: Path, version: int = 4) -> Path:
    """The version-4 dump at `path`; with `version` 5, taken through the registry's
    step as a version-5 build did it (the cards and the BDK as they were)."""
    conn = sqlite3.connect(path)
    conn.executescript(V4_DUMP.read_text())
    if version >= 5:
        conn.execute("PRAGMA legacy_alter_table = ON")
        for statement in REGISTRY_STEP:
            conn.execute(statement)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.commit()
    conn.close()
    path.chmod(0o644)                    # as the old builds left it
    return path


@pytest.fixture
def v4_path(tmp_path):
    (tmp_path / "var").mkdir()
    return make_v4(tmp_path / "var" / "issuer.sqlite")


def _columns(conn, table):
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def test_every_version_since_4_has_a_step():
    assert sorted(MIGRATIONS) == list(range(4, SCHEMA_VERSION))


@pytest.mark.parametrize("version", [4, 5])
def test_migration_moves_the_bdk_and_encrypts_the_pans(tmp_path, version):
    (tmp_path / "var").mkdir()
    v4_path = make_v4(tmp_path / "var" / "issuer.sqlite", version)
    conn = sqlite3.connect(v4_path)
    before = {r[0]: r[1:] for r in conn.execute(
        "SELECT c.pan, c.expiry, c.status, c.pin_tries_left, a.available, a.ledger "
        "FROM cards c JOIN accounts a ON a.id = c.account_id")}
    journal_before = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
    conn.close()
    assert not path_beside(v4_path).exists()

    ledger = Ledger.open(v4_path)
    assert ledger.schema_version() == SCHEMA_VERSION
    keys = ledger.keys
    assert keys.path == path_beside(v4_path)
    assert keys.key_sets() == {DEMO_BDK_ID: "ANSI X9.24-3-2017 AES-128 test BDK"}
    on_file = {c.pan: c for c in ledger.cards()}
    assert set(on_file) == set(before) == {d.pan for d in DEMO_CARDS}
    for pan, (expiry, status, tries, available, balance) in before.items():
        card = on_file[pan]
        assert (card.expiry, card.status, card.pin_tries_left, card.available,
                card.ledger) == (expiry, status, tries, available, balance)
        assert card.pin_reference.startswith("sealed-scrypt$")
        assert ledger.card_by_pan(pan).id == card.id
    journal = ledger.journal()
    assert len(journal) == journal_before
    assert {row["card"] for row in journal} == {"476173******0011", "476173******0029"}
    ledger.close()

    conn = sqlite3.connect(v4_path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "key_sets" not in tables and "cards_v5" not in tables
    assert {"pan", "pin_hash"}.isdisjoint(_columns(conn, "cards"))
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    # the old content is gone from the file itself, not only from its tables
    raw = v4_path.read_bytes()
    assert DEMO_BDK.hex().upper().encode() not in raw
    for pan in before:
        assert pan.encode() not in raw
    assert b"scrypt$" not in raw.replace(b"sealed-scrypt$", b"")
    assert v4_path.stat().st_mode & 0o777 == 0o600
    assert path_beside(v4_path).stat().st_mode & 0o777 == 0o600


def test_a_migrated_card_gets_its_offset_at_its_next_right_pin(v4_path, terminal):
    terminal.trace = 100                 # the old journal holds traces 1 to 3
    issuer = Issuer(Ledger.open(v4_path), Policy(), clock=lambda: ISSUER_NOW)
    try:
        # registered with the key the journal used: its next counter is 4
        terminals.register(issuer.ledger, "T0000001", INITIAL_KEY_ID, "104110070110001",
                           "DEMO SHOP")
        terminal.counter = 3
        # a wrong PIN: checked against the sealed hash, one try less, still sealed
        assert ask(issuer, terminal, ZHANG_MIN, pin="9999")[3] == codes.INCORRECT_PIN
        card = issuer.ledger.card_by_pan(ZHANG_MIN)
        assert card.pin_reference.startswith("sealed-scrypt$") and card.pin_tries_left == 1
        # the right one: approved, and the hash replaced by the offset
        assert ask(issuer, terminal, ZHANG_MIN)[3] == codes.APPROVED
        card = issuer.ledger.card_by_pan(ZHANG_MIN)
        assert card.pin_reference == issuer.keys.pin_reference("1234", ZHANG_MIN)
        assert card.pin_tries_left == 3
        # from then on the offset answers alone
        assert ask(issuer, terminal, ZHANG_MIN, pin="1235")[3] == codes.INCORRECT_PIN
        assert ask(issuer, terminal, ZHANG_MIN)[3] == codes.APPROVED
        # and a purchase on another migrated card is charged as before
        assert buy(issuer, terminal, LI_WEI, 1250)[3] == codes.APPROVED
        assert issuer.ledger.card_by_pan(LI_WEI).pin_reference.startswith("ibm3624$")
    finally:
        issuer.close()


def test_migration_into_a_named_key_store(v4_path, tmp_path):
    keys = KeyStore.create(tmp_path / "hsm" / "bank.keys")
    Ledger.open(v4_path, keys=tmp_path / "hsm" / "bank.keys").close()
    assert KeyStore.open(keys.path).key_sets() == {DEMO_BDK_ID: "ANSI X9.24-3-2017 AES-128 "
                                                                "test BDK"}
    assert not path_beside(v4_path).exists()


def test_a_key_store_with_another_bdk_under_the_id_stops_the_migration(v4_path):
    keys = KeyStore.create(path_beside(v4_path))
    keys.import_bdk(DEMO_BDK_ID, bytes(16))
    with pytest.raises(LedgerError, match=f"key set {DEMO_BDK_ID} is in the key store "
                                          "with another BDK"):
        Ledger.open(v4_path)
    conn = sqlite3.connect(v4_path)           # rolled back: still version 4, as it was
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 4
    assert "pan" in _columns(conn, "cards")
    conn.close()


def test_a_current_database_without_its_key_store_is_refused(db_path):
    path_beside(db_path).unlink()
    with pytest.raises(LedgerError, match="no issuer key store at .*issuer.keys"):
        Ledger.open(db_path)


def test_a_key_store_others_may_read_is_refused(db_path):
    path_beside(db_path).chmod(0o644)
    with pytest.raises(LedgerError, match=r"may be read by others \(mode 0644\): chmod 600"):
        Ledger.open(db_path)


# ---- the terminal registry's step (4 -> 5) -------------------------------------------

def test_the_journal_is_kept_and_the_registry_made_empty(v4_path):
    conn = sqlite3.connect(v4_path)
    before = [conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in JOURNALED]
    conn.close()
    ledger = Ledger.open(v4_path)
    try:
        assert ledger.schema_version() == SCHEMA_VERSION == 7
        assert [[tuple(r) for r in ledger.execute(f"SELECT * FROM {t} ORDER BY id")]
                for t in JOURNALED] == before
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
    Ledger.open(v4_path).close()                  # opened again: nothing more to do


def test_a_migrated_database_serves_registered_terminals_only(v4_path, terminal):
    def make_issuer():
        return Issuer(Ledger.open(v4_path), Policy(), clock=lambda: ISSUER_NOW)

    terminal.trace = 100                 # the old journal holds traces 1 to 3
    issuer = make_issuer()
    try:
        with pytest.raises(IssuerSecurityError, match="T0000001 is not registered"):
            issuer.handle(PURCHASE_REQUEST, terminal.purchase(LI_WEI, 100)[0])
    finally:
        issuer.close()
    # the issuer group alone: posbridge's main would set up logging for the later tests
    result = CliRunner().invoke(issuer_group, [
        "--db", str(v4_path), "terminal", "add", "--terminal-id", "T0000001",
        "--key-id", INITIAL_KEY_ID.hex(), "--merchant-id", "104110070110001",
        "--merchant-name", "DEMO SHOP"])
    assert result.exit_code == 0, result.output
    # the journal's highest counter (3) is taken over
    assert "highest KSN counter used 3" in result.output
    issuer = make_issuer()
    try:
        terminal.counter = 2                      # counter 3 again, under a new trace
        with pytest.raises(IssuerSecurityError, match="not above the highest used, 3"):
            issuer.handle(PURCHASE_REQUEST, terminal.purchase(LI_WEI, 100)[0])
        body, pending = terminal.purchase(LI_WEI, 100)
        assert terminal.check(issuer.handle(PURCHASE_REQUEST, body),
                              pending)[3] == codes.APPROVED
    finally:
        issuer.close()
    listing = CliRunner().invoke(issuer_group, ["--db", str(v4_path), "terminal", "list"])
    assert "T0000001" in listing.output and "counter 4" in listing.output


# ---- chip cards' ATC (6 -> 7) ------------------------------------------------------------

def test_version_6_gains_the_cards_atc_and_keeps_every_card(db_path):
    ledger = Ledger.open(db_path)
    before = [(c.id, c.pan, c.available, c.pin_tries_left) for c in ledger.cards()]
    with ledger.transaction():
        ledger.execute("ALTER TABLE cards DROP COLUMN last_atc")
        ledger.execute("UPDATE schema_version SET version = 6")
    ledger.close()
    ledger = Ledger.open(db_path)
    try:
        assert ledger.schema_version() == SCHEMA_VERSION == 7
        assert [(c.id, c.pan, c.available, c.pin_tries_left) for c in ledger.cards()] == before
        assert {r[0] for r in ledger.execute("SELECT last_atc FROM cards")} == {None}
        with pytest.raises(sqlite3.IntegrityError):
            ledger.execute("UPDATE cards SET last_atc = 65536")
    finally:
        ledger.close()
