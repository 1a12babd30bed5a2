"""Schema migration to version 6 (keys out of the ledger): a version-4 database as the
last version-4 build left it (data/issuer_v4.sql) is opened, its BDK moved to the key
store, its PANs encrypted, its scrypt PIN hashes sealed until each card's next right PIN
replaces them with an IBM 3624 offset."""
import sqlite3
from pathlib import Path

import pytest

from posbridge.issuer import Issuer, Ledger, LedgerError, Policy, codes
from posbridge.issuer.demo_data import DEMO_BDK, DEMO_BDK_ID, DEMO_CARDS
from posbridge.issuer.keystore import KeyStore, path_beside
from posbridge.issuer.ledger import MIGRATIONS, SCHEMA_VERSION

from .conftest import ISSUER_NOW
from .test_balance_inquiry import LI_WEI, ZHANG_MIN, ask
from .test_purchase import buy

V4_DUMP = Path(__file__).parent / "data" / "issuer_v4.sql"


def make_v4(path: Path, version: int = 4) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(V4_DUMP.read_text())
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
def test_migration_moves_the_bdk_and_encrypts_the_pans(v4_path, version):
    conn = sqlite3.connect(v4_path)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.commit()
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
