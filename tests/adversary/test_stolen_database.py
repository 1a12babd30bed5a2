"""A thief with a copy of the issuer's database file, and nothing else: no key store,
no process memory. What the file must not give them (GUIDE, Keys at rest):

- a key: the BDK (every terminal's keys derive from it), the PIN verification key, the
  data key; searched in the file's raw bytes, binary and hex in either case;
- a clear PAN: each demo card's number as text, as packed BCD, as hex text;
- a PIN: each card's PIN verifier put to a 10,000-try search, every 4-digit PIN in the
  order thieves try them (the most common first), with every keyless check there is (a
  salted scrypt hash verified with its own salt, plain hashes of the PIN with and
  without the PAN);
- a file others may read: the database, its journal, the key store and a terminal's
  provisioning records are mode 0600.

Two databases are stolen: one made by `posbridge issuer init` and used (a balance
inquiry, a purchase, a wrong PIN), and one made by the last version-4 build
(tests/host/issuer/data/issuer_v4.sql) after this build has opened it once.
"""
import hashlib
import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from posbridge.cli import main as posbridge
from posbridge.issuer import Issuer, Ledger, Policy
from posbridge.issuer.demo_data import (DEMO_BDK, DEMO_CARDS, DEMO_INITIAL_KEY_ID,
                                        DEMO_MERCHANT_ID, DEMO_MERCHANT_NAME, DEMO_PIN)
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST

from tests.host.issuer.request_builder import NOW, TerminalRequestBuilder

V4_DUMP = Path(__file__).resolve().parents[1] / "host" / "issuer" / "data" / "issuer_v4.sql"
PANS = [card.pan for card in DEMO_CARDS]
# the most common 4-digit PINs first, as a thief with little time tries them
COMMON = ["1234", "1111", "0000", "1212", "7777", "1004", "2000", "4444", "2222", "6969"]
CANDIDATES = COMMON + [f"{n:04d}" for n in range(10000) if f"{n:04d}" not in COMMON]


def run(*args):
    # `posbridge` sets up logging for the whole process: put it back for the tests after
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return CliRunner().invoke(posbridge, [str(a) for a in args], catch_exceptions=False)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _use(db: Path):
    """A balance inquiry, a purchase and a wrong PIN, as a terminal sends them."""
    # the issuer's clock a minute after the requests' time (request_builder.NOW)
    issuer = Issuer(Ledger.open(db), Policy(), clock=lambda: NOW + 60)
    terminal = TerminalRequestBuilder()
    terminal.trace = 100
    terminal.counter = 3        # the version-4 journal used KSN counters 1 to 3
    try:
        issuer.handle(BALANCE_REQUEST, terminal.request(PANS[0])[0])
        issuer.handle(PURCHASE_REQUEST, terminal.purchase(PANS[1], 1250)[0])
        issuer.handle(BALANCE_REQUEST, terminal.request(PANS[2], pin="9999")[0])
    finally:
        issuer.close()


@pytest.fixture(scope="module", params=["made by init", "migrated from version 4"])
def stolen(request, tmp_path_factory) -> Path:
    """The database file after use; the test reads its copy as a thief would."""
    var = tmp_path_factory.mktemp("bank") / "var"
    db = var / "issuer.sqlite"
    if request.param == "made by init":
        result = run("issuer", "--db", db, "init")
        assert result.exit_code == 0, result.output
    else:
        var.mkdir()
        conn = sqlite3.connect(db)
        conn.executescript(V4_DUMP.read_text())
        conn.close()
        db.chmod(0o644)
        # migrated when opened; the registry (version 5) starts empty
        result = run("issuer", "--db", db, "terminal", "add", "--terminal-id", "T0000001",
                     "--key-id", DEMO_INITIAL_KEY_ID.hex(), "--merchant-id", DEMO_MERCHANT_ID,
                     "--merchant-name", DEMO_MERCHANT_NAME)
        assert result.exit_code == 0, result.output
    _use(db)
    return db


def key_store_of(db: Path) -> dict:
    path = db.with_suffix(".keys")
    assert path.is_file(), f"no key store beside {db.name}: the keys are in the database"
    return json.loads(path.read_text())


def forms(data: bytes) -> "list[bytes]":
    """The ways a secret of these bytes can sit in a file."""
    return [data, data.hex().encode(), data.hex().upper().encode()]


def test_the_file_holds_no_bdk(stolen):
    raw = stolen.read_bytes()
    for form in forms(DEMO_BDK):
        found = form in raw              # not `assert ... not in raw`: pytest would print the file
        assert not found, "the BDK is in the file"


def test_the_file_holds_no_key_of_the_key_store(stolen):
    record = key_store_of(stolen)
    keys = [v["key"] for v in record["bdks"].values()] + list(record["pvks"].values()) \
        + [record["data_key"]]
    assert len(keys) >= 3
    raw = stolen.read_bytes()
    for key in keys:
        for form in forms(bytes.fromhex(key)):
            found = form in raw
            assert not found, "a key of the key store is in the file"


def test_the_file_holds_no_clear_pan(stolen):
    raw = stolen.read_bytes()
    for pan in PANS:
        for form in [pan.encode(), pan.encode("utf-16-le"), bytes.fromhex(pan),
                     pan.encode().hex().encode(), pan.encode().hex().upper().encode()]:
            found = form in raw
            assert not found, f"card ending {pan[-4:]} is in the file"


def _keyless_digests() -> "dict[bytes, str]":
    """Every plain hash a thief can make of a candidate PIN, alone or with a PAN: the
    digest (raw and hex) -> the PIN."""
    digests = {}
    for pin in CANDIDATES:
        for text in [pin] + [pin + pan for pan in PANS] + [pan + pin for pan in PANS]:
            for name in ("md5", "sha1", "sha256"):
                d = hashlib.new(name, text.encode()).digest()
                for form in forms(d):
                    digests[form] = pin
    return digests


def _scrypt_search(value: str) -> "str | None":
    try:
        scheme, n, r, p, salt, digest = value.split("$")
        if scheme != "scrypt":
            return None
        n, r, p, salt, digest = int(n), int(r), int(p), bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        return None
    for pin in CANDIDATES:
        if hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20),
                          dklen=len(digest)) == digest:
            return pin
    return None


def test_no_pin_falls_to_a_10000_try_search(stolen):
    conn = sqlite3.connect(f"file:{stolen}?mode=ro", uri=True)
    rows = conn.execute("SELECT * FROM cards").fetchall()
    conn.close()
    assert len(rows) == len(DEMO_CARDS)
    digests = _keyless_digests()
    recovered = []
    for row in rows:
        for value in row:
            if isinstance(value, str):
                pin = _scrypt_search(value) or digests.get(value.encode())
            elif isinstance(value, bytes):
                pin = digests.get(value)
            else:
                continue
            if pin is not None:
                recovered.append(pin)
    assert recovered == [], f"{len(recovered)} PIN(s) recovered from the file alone"


def test_the_same_search_with_the_key_store_finds_the_pin(stolen):
    """The search above is not vacuous: with the key store, the offsets on file give the
    PIN at once. This is why the key store is a file of its own, mode 0600."""
    from posbridge.issuer.keystore import KeyStore
    keys = KeyStore.open(stolen.with_suffix(".keys"))
    conn = sqlite3.connect(f"file:{stolen}?mode=ro", uri=True)
    rows = conn.execute("SELECT pan_encrypted, pin_reference FROM cards").fetchall()
    conn.close()
    offsets = [(keys.decrypt_pan(blob), ref) for blob, ref in rows if ref.startswith("ibm3624$")]
    assert offsets                       # the used cards at least
    for pan, reference in offsets:
        assert next(pin for pin in CANDIDATES
                    if keys.pin_reference(pin, pan) == reference) == DEMO_PIN


def _mode(path: Path) -> str:
    return f"{path.stat().st_mode & 0o777:04o}"


def test_database_key_store_and_journal_are_mode_0600(stolen):
    assert _mode(stolen) == "0600"
    assert _mode(stolen.with_suffix(".keys")) == "0600"
    # the rollback journal exists while a write is under way: made as the file's mode
    conn = sqlite3.connect(stolen, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE schema_version SET version = version + 1")
        journal = Path(str(stolen) + "-journal")
        assert journal.exists()
        assert _mode(journal) == "0600"
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_a_new_database_is_mode_0600_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        result = run("issuer", "--db", tmp_path / "var" / "issuer.sqlite", "init")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert _mode(tmp_path / "var" / "issuer.sqlite") == "0600"
    assert _mode(tmp_path / "var" / "issuer.keys") == "0600"


def test_provisioning_records_are_mode_0600(tmp_path):
    db = tmp_path / "var" / "issuer.sqlite"
    assert run("issuer", "--db", db, "init").exit_code == 0
    board = tmp_path / "board"
    result = run("provision", "--out", board, "--terminal-id", "T0000009",
                 "--issuer-db", db, "--derivation-id", "90123459")
    assert result.exit_code == 0, result.output
    for name in ("terminal.json", "keys.bin"):
        assert _mode(board / name) == "0600", name
