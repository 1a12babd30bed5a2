"""The issuer's store: one SQLite file (stdlib sqlite3), its connection and
transactions, its schema, the journal and the postings.

Each table has one module that writes it (tests/host/issuer/test_table_owners.py holds
that); any module may read:

| table                                        | written by          |
|----------------------------------------------|---------------------|
| schema_version, accounts, transactions (the journal), ledger_entries | ledger.py |
| terminals, terminal_keys (the registry)      | terminals.py        |
| cards                                        | cards.py            |
| cardholders, alert_kinds, alert_channels     | preferences.py      |
| account_events                               | account_events.py   |
| outbox                                       | outbox.py           |

The accounts are the ledger's because their balances move only by postings, each with
its ledger entry and journal row; their terms (credit limit, statement) are set through
it too. The card a request names is read here with its account and holder (Card).

- No key: the BDKs, the PIN verification key and the data key are in the key store
  (keystore.py), a file of its own; the ledger is opened with it (`ledger.keys`) to find
  a card by its PAN's keyed hash and read its encrypted PAN.
- cards: the PAN encrypted, its keyed hash to look it up, its last 4 digits in clear;
  the PIN as an IBM 3624 offset under the PVK, never a hash of it.
- terminals, terminal_keys: the registry (terminals.py): which terminal holds which
  initial key ID, for which merchant, and per initial key ID the highest KSN counter used.
- transactions: the journal, a row for every MAC'd answer. The KSN is the transaction's
  identity (one row per KSN: the counter rule of terminals.py keeps it so); (terminal id,
  trace number) repeats once the board's trace wraps, and means a duplicate only within
  IDENTITY_WINDOW_S. The request's SHA-256 and the response bytes are kept so a
  repeated request gets the very same answer. Never the request itself (PAN, PIN block).
  A reversal row names the purchase it reverses (original trace and KSN, original_id);
  a purchase row names the reversal that closed it (reversed_by).
- ledger_entries: every change of an account's balances, signed (a purchase negative,
  its reversal positive), with the journal row that made it and the balances after.

A database is opened with Ledger.open (it must exist) or Ledger.create (a new file);
an older one is migrated when opened (MIGRATIONS); docs/issuer.md has the full data
model. The database and its journal files are mode 0600, and deleted content is
overwritten (secure_delete), so a copy of the file holds no trace of what was removed. The other owners run their SQL through
Ledger.execute, on the same connection and in the same transactions.

Writes that belong together run in one transaction (`with ledger.transaction():`),
started with BEGIN IMMEDIATE so that two processes cannot both pass the duplicate check
of the same transaction identity.
"""
import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..link.pan import mask_pan
from . import cards as card_rows
from .errors import LedgerError
from .keystore import KeyStore, path_beside
from .preferences import Cardholder, load_cardholder

log = logging.getLogger("posbridge.issuer")

DEFAULT_PATH = Path("var") / "issuer.sqlite"

# The schema, made whole when a database is created. Version 4 is the first kept: the
# databases of versions 1 to 3 were made by development builds and are refused when
# opened (`posbridge issuer init --force` makes a new one). Each later version has its
# step in MIGRATIONS, which brings a database of the version before up to it.
SCHEMA_VERSION = 7
OLDEST_MIGRATED = 4
DB_MODE = 0o600

# (terminal id, trace number) names one transaction for this long after it was journaled
# (issuer's clock); after it the board's trace may have wrapped (999999 -> 1), and the KSN
# alone tells transactions apart. A board wraps after 999,999 requests: no counter
# terminal makes that many in a day.
IDENTITY_WINDOW_S = 24 * 3600

CARDS_TABLE = """CREATE TABLE cards (
        id INTEGER PRIMARY KEY,
        pan_lookup TEXT NOT NULL UNIQUE CHECK (length(pan_lookup) = 64),
        pan_encrypted BLOB NOT NULL,
        pan_last4 TEXT NOT NULL CHECK (length(pan_last4) = 4),
        expiry TEXT NOT NULL CHECK (length(expiry) = 4),
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'frozen', 'blocked')),
        pin_reference TEXT NOT NULL,
        pin_tries_left INTEGER NOT NULL CHECK (pin_tries_left >= 0),
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        cardholder_id INTEGER NOT NULL REFERENCES cardholders(id),
        purchase_limit INTEGER CHECK (purchase_limit IS NULL OR purchase_limit > 0)
    )"""

# 6 -> 7: the highest application transaction counter (ATC) of a chip card's cryptogram
# the issuer has accepted (cards.advance_atc): a cryptogram whose ATC is not above it
# is a replay. Plain SQL that every backend runs as it is; a new database gets it the
# same way, after the version-6 table, so that the two can never differ.
CARD_ATC_STEP = [
    "ALTER TABLE cards ADD COLUMN last_atc INTEGER "
    "CHECK (last_atc IS NULL OR (last_atc >= 0 AND last_atc <= 65535))",
]

_TRANSACTIONS = """CREATE TABLE transactions (
        id INTEGER PRIMARY KEY,
        terminal_id TEXT NOT NULL,
        trace_number INTEGER NOT NULL,
        request_digest TEXT NOT NULL,
        kind TEXT NOT NULL,
        card_id INTEGER REFERENCES cards(id),
        amount INTEGER,
        currency INTEGER,
        response_code TEXT NOT NULL,
        response BLOB NOT NULL,
        request_time INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        ksn TEXT,
        approval_code TEXT,
        merchant_id TEXT,
        merchant_name TEXT,
        original_trace INTEGER,
        original_ksn TEXT,
        reversal_reason INTEGER,
        reversal_outcome INTEGER,
        original_id INTEGER REFERENCES transactions(id),
        reversed_by INTEGER REFERENCES transactions(id)
    )"""
# not UNIQUE: a version-4 journal may hold a KSN twice (version 4 took a used counter);
# from version 5 on the counter rule, checked and advanced in the request's transaction,
# keeps a KSN to one row
_JOURNAL_INDEXES = [
    "CREATE INDEX transactions_by_ksn ON transactions (ksn)",
    "CREATE INDEX transactions_by_identity ON transactions (terminal_id, trace_number)",
    # a purchase that arrives after its reversal is found by this index
    "CREATE INDEX transactions_by_original ON transactions (original_ksn) "
    "WHERE original_ksn IS NOT NULL",
]
_REGISTRY = [
    """CREATE TABLE terminals (
        terminal_id TEXT PRIMARY KEY,
        merchant_id TEXT NOT NULL,
        merchant_name TEXT NOT NULL,
        utc_offset_min INTEGER CHECK (utc_offset_min BETWEEN -840 AND 840),
        registered_at INTEGER NOT NULL,
        rekeyed_at INTEGER
    )""",
    # every initial key ID ever issued stays here: one is never issued twice
    """CREATE TABLE terminal_keys (
        initial_key_id TEXT PRIMARY KEY CHECK (length(initial_key_id) = 16),
        terminal_id TEXT NOT NULL REFERENCES terminals(terminal_id),
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        last_counter INTEGER NOT NULL DEFAULT 0 CHECK (last_counter >= 0),
        issued_at INTEGER NOT NULL,
        retired_at INTEGER
    )""",
    "CREATE UNIQUE INDEX terminal_keys_active ON terminal_keys (terminal_id) WHERE active = 1",
]

SCHEMA = [
    """CREATE TABLE schema_version (version INTEGER NOT NULL)""",
    """CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        number TEXT NOT NULL UNIQUE,
        currency INTEGER NOT NULL CHECK (currency BETWEEN 1 AND 999),
        available INTEGER NOT NULL,
        ledger INTEGER NOT NULL,
        credit_limit INTEGER NOT NULL DEFAULT 0,
        purchase_limit INTEGER CHECK (purchase_limit IS NULL OR purchase_limit > 0),
        statement_amount INTEGER,
        minimum_payment INTEGER,
        due_date TEXT                                   -- YYYY-MM-DD
    )""",
    """CREATE TABLE cardholders (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        phone TEXT,
        subscribed INTEGER NOT NULL DEFAULT 0 CHECK (subscribed IN (0, 1)),
        channel TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'app')),
        threshold INTEGER CHECK (threshold IS NULL OR threshold >= 0),
        large_amount_limit INTEGER CHECK (large_amount_limit IS NULL OR large_amount_limit >= 0),
        quiet_hours TEXT,                               -- "22:00-07:00"
        language TEXT CHECK (language IS NULL OR language IN ('en', 'zh'))
    )""",
    """CREATE TABLE alert_kinds (
        cardholder_id INTEGER NOT NULL REFERENCES cardholders(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        PRIMARY KEY (cardholder_id, kind)
    )""",
    """CREATE TABLE alert_channels (
        cardholder_id INTEGER NOT NULL REFERENCES cardholders(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('sms', 'app')),
        PRIMARY KEY (cardholder_id, kind)
    )""",
    CARDS_TABLE,
    *CARD_ATC_STEP,
    _TRANSACTIONS,
    *_JOURNAL_INDEXES,
    """CREATE TABLE ledger_entries (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        transaction_id INTEGER NOT NULL REFERENCES transactions(id),
        amount INTEGER NOT NULL CHECK (amount != 0),
        available_after INTEGER NOT NULL,
        ledger_after INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    )""",
    """CREATE TABLE account_events (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        card_id INTEGER REFERENCES cards(id),
        event TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT,
        created_at INTEGER NOT NULL
    )""",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        transaction_id INTEGER REFERENCES transactions(id),
        account_event_id INTEGER REFERENCES account_events(id),
        cardholder_id INTEGER REFERENCES cardholders(id),
        kind TEXT NOT NULL,
        card_last4 TEXT NOT NULL CHECK (length(card_last4) = 4),
        channel TEXT NOT NULL,
        destination TEXT NOT NULL,
        language TEXT,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        reason TEXT,
        sent_at INTEGER,
        gateway_ref TEXT,
        created_at INTEGER NOT NULL
    )""",
    # the dispatcher's question: which waiting rows are due
    "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
    *_REGISTRY,
]

# 4 -> 5: the terminal registry; the journal without UNIQUE (terminal_id, trace_number),
# so that a terminal goes on after its trace wraps. The registry starts empty: `posbridge
# issuer terminal add` registers a terminal with its key. The statements run in the
# migration's transaction with foreign keys off, so the journal can be made again under
# its own name (SQLite cannot drop a UNIQUE constraint); the foreign keys are checked after.
REGISTRY_STEP = [
    *_REGISTRY,
    "DROP INDEX transactions_by_original",
    "ALTER TABLE transactions RENAME TO transactions_v4",
    _TRANSACTIONS,
    "INSERT INTO transactions SELECT * FROM transactions_v4",
    "DROP TABLE transactions_v4",
    *_JOURNAL_INDEXES,
]


@dataclass(frozen=True)
class Card:
    id: int
    # decrypted when the card is read, never stored in clear; neither is in the repr,
    # which a traceback or a test failure prints
    pan: str = field(repr=False)
    expiry: str
    status: str
    pin_reference: str = field(repr=False)   # keystore.py: an IBM 3624 offset, or a sealed hash
    pin_tries_left: int
    account_id: int
    available: int
    ledger: int
    currency: int
    holder: Cardholder
    purchase_limit: "int | None" = None           # the card's single-purchase limit
    account_purchase_limit: "int | None" = None   # the account's
    credit_limit: int = 0                         # overdraft a purchase may use

    @property
    def last4(self) -> str:
        return self.pan[-4:]

    @property
    def masked(self) -> str:
        return mask_pan(self.pan)


@dataclass(frozen=True)
class JournalEntry:
    id: int
    request_digest: str
    response: bytes
    response_code: str
    kind: str = ""
    card_id: "int | None" = None
    amount: "int | None" = None
    currency: "int | None" = None
    ksn: "str | None" = None          # hex
    reversed_by: "int | None" = None
    merchant_name: "str | None" = None
    terminal_id: str = ""
    trace_number: int = 0


def request_digest(body: bytes) -> str:
    return hashlib.sha256(bytes(body)).hexdigest()


class Ledger:
    def __init__(self, conn: sqlite3.Connection, path: Path, keys: "KeyStore | None" = None):
        self._conn = conn
        self.path = path
        self.keys = keys

    # ---- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, path=DEFAULT_PATH, keys=None) -> "Ledger":
        """An existing database, migrated to the current schema if it is older.
        `keys`: the KeyStore, or its path; by default the file beside the database
        (keystore.path_beside). A database older than version 6 without a key store
        gets a new one: its migration puts the BDKs there."""
        path = Path(path)
        if not path.is_file():
            raise LedgerError(f"no issuer database at {path}: run posbridge issuer init")
        return cls._connect(path, _key_source(path, keys))

    @classmethod
    def create(cls, path=DEFAULT_PATH, force: bool = False, keys=None) -> "Ledger":
        """A new, empty database (parent directories created). An existing file is
        refused unless `force`, which deletes it first, and with it the key store
        beside it (or at `keys`): a new PVK and data key. An existing key store is
        kept otherwise."""
        path = Path(path)
        if path.exists():
            if not force:
                raise LedgerError(f"issuer database {path} exists: --force replaces it")
            path.unlink()
            for suffix in ("-journal", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if force and not isinstance(keys, KeyStore):
            keys = KeyStore.create(keys or path_beside(path), force=True)
        return cls._connect(path, _key_source(path, keys))

    @classmethod
    def _connect(cls, path: Path, key_source) -> "Ledger":
        _keep_private(path)
        conn = sqlite3.connect(str(path), timeout=10, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            # a deleted row's bytes are overwritten, not left in a free page of the file
            conn.execute("PRAGMA secure_delete = ON")
            ledger = cls(conn, path)
            ledger._check_schema(key_source)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LedgerError(f"{path} is not an issuer database: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return ledger

    def _check_schema(self, key_source):
        """An empty file gets the schema; an older one is migrated; any other must be
        of SCHEMA_VERSION. The key store is opened (or made) here."""
        with self.transaction():
            tables = self._conn.execute("SELECT name FROM sqlite_master "
                                        "WHERE type = 'table'").fetchall()
            if not tables:
                self.keys = key_source(True)
                for statement in SCHEMA:
                    self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_version (version) VALUES (?)",
                                   (SCHEMA_VERSION,))
                return
        if "schema_version" not in {r["name"] for r in tables}:
            raise LedgerError(f"{self.path} is not an issuer database: it has no schema_version")
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise LedgerError(f"{self.path}: schema version {version} is newer than "
                              f"this posbridge ({SCHEMA_VERSION})")
        if version < OLDEST_MIGRATED:
            raise LedgerError(f"{self.path}: schema version {version} is from a development "
                              f"build and cannot be opened (this posbridge: {SCHEMA_VERSION}); "
                              "posbridge issuer init --force makes a new database")
        self.keys = key_source(version < SCHEMA_VERSION)
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self):
        """Every step from the file's version to SCHEMA_VERSION, in one transaction, then
        the file rewritten (VACUUM) so that no page of the old content is left in it."""
        # the journal (5) and the cards table (6) are rebuilt: other tables' references
        # to them must stay as they are, by name, which needs both of these off while it
        # happens
        self._conn.execute("PRAGMA foreign_keys = OFF")
        self._conn.execute("PRAGMA legacy_alter_table = ON")
        try:
            with self.transaction():
                version = self.schema_version()        # another process may have done it
                for step in range(version, SCHEMA_VERSION):
                    MIGRATIONS[step](self)
                    log.info("%s: schema version %d -> %d", self.path, step, step + 1)
                self._conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
                broken = self._conn.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise LedgerError(f"{self.path}: migration to schema version "
                                      f"{SCHEMA_VERSION} broke {len(broken)} references")
        finally:
            self._conn.execute("PRAGMA legacy_alter_table = OFF")
            self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("VACUUM")

    def _to_version_5(self):
        """The terminal registry (REGISTRY_STEP): its tables, empty, and the journal
        without UNIQUE (terminal_id, trace_number), its rows kept."""
        for statement in REGISTRY_STEP:
            self._conn.execute(statement)

    def _to_version_6(self):
        """Keys out of the ledger: the BDKs move to the key store and their table goes;
        the cards table is rebuilt with the PAN encrypted and looked up by keyed hash,
        and each scrypt PIN hash sealed under the data key until the card's next right
        PIN replaces it with an offset (keystore.py)."""
        for row in self._conn.execute("SELECT bdk_id, bdk, label FROM key_sets").fetchall():
            self.keys.import_bdk(row["bdk_id"], bytes.fromhex(row["bdk"]), row["label"])
        self._conn.execute("DROP TABLE key_sets")
        self._conn.execute("ALTER TABLE cards RENAME TO cards_v5")
        self._conn.execute(CARDS_TABLE)
        card_rows.copy_version_5_cards(self)
        self._conn.execute("DROP TABLE cards_v5")

    def _to_version_7(self):
        """Chip cards: the cards table gains the highest ATC accepted, none yet."""
        for statement in CARD_ATC_STEP:
            self._conn.execute(statement)

    def close(self):
        self._conn.close()

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement on the ledger's connection (inside the current transaction,
        if any): for the tables' other owners (cards.py, preferences.py, outbox.py,
        account_events.py)."""
        return self._conn.execute(sql, params)

    @contextlib.contextmanager
    def transaction(self):
        """One SQLite transaction (BEGIN IMMEDIATE): committed if the block ends
        normally (a `return` included), rolled back if it raises."""
        if self._conn.in_transaction:
            yield                           # nested: part of the outer transaction
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            # a COMMIT that failed (busy, disk full) leaves the transaction open: end it,
            # or every later request would nest into it and nothing be saved again
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        return self._conn.execute("SELECT version FROM schema_version").fetchone()["version"]

    # ---- accounts ------------------------------------------------------------------

    def open_account(self, *, currency: int, available: int, ledger_balance=None,
                     credit_limit: int = 0, purchase_limit=None) -> int:
        """A new account (number ACC000001, ...); returns its id. Minor units."""
        count = self._conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
        return self._conn.execute(
            "INSERT INTO accounts (number, currency, available, ledger, credit_limit, "
            "purchase_limit) VALUES (?, ?, ?, ?, ?, ?)",
            (f"ACC{count + 1:06d}", currency, available,
             available if ledger_balance is None else ledger_balance, credit_limit,
             purchase_limit)).lastrowid

    def set_credit_limit(self, account_id: int, limit: int):
        self._conn.execute("UPDATE accounts SET credit_limit = ? WHERE id = ?",
                           (limit, account_id))

    def set_statement(self, account_id: int, *, statement_amount: int, minimum_payment: int,
                      due_date: str):
        """The statement a repayment reminder is about; `due_date` YYYY-MM-DD."""
        self._conn.execute("UPDATE accounts SET statement_amount = ?, minimum_payment = ?, "
                           "due_date = ? WHERE id = ?",
                           (statement_amount, minimum_payment, due_date, account_id))

    # ---- cards as a request reads them: the row with its account and holder -------

    _CARD_QUERY = """
        SELECT c.id, c.pan_encrypted, c.expiry, c.status, c.pin_reference, c.pin_tries_left,
               c.purchase_limit, a.id AS account_id, a.available, a.ledger, a.currency,
               a.purchase_limit AS account_purchase_limit, a.credit_limit,
               c.cardholder_id AS holder_id
        FROM cards c JOIN accounts a ON a.id = c.account_id"""

    def _card(self, row) -> Card:
        holder = load_cardholder(self, row["holder_id"])
        return Card(row["id"], self.keys.decrypt_pan(row["pan_encrypted"]), row["expiry"],
                    row["status"], row["pin_reference"],
                    row["pin_tries_left"], row["account_id"], row["available"],
                    row["ledger"], row["currency"], holder, row["purchase_limit"],
                    row["account_purchase_limit"], row["credit_limit"])

    def card_by_pan(self, pan: str) -> "Card | None":
        """The card found by the keyed hash of `pan` (keystore.pan_lookup)."""
        row = self._conn.execute(self._CARD_QUERY + " WHERE c.pan_lookup = ?",
                                 (self.keys.pan_lookup(pan),)).fetchone()
        return self._card(row) if row else None

    def card_by_id(self, card_id: int) -> "Card | None":
        row = self._conn.execute(self._CARD_QUERY + " WHERE c.id = ?", (card_id,)).fetchone()
        return self._card(row) if row else None

    def card_on_file(self, pan: str) -> Card:
        """The card with `pan`, else LedgerError (the PAN masked in its message)."""
        card = self.card_by_pan(pan)
        if card is None:
            raise LedgerError(f"card {mask_pan(pan)} is not on file")
        return card

    def cards(self) -> "list[Card]":
        return [self._card(r) for r in self._conn.execute(self._CARD_QUERY + " ORDER BY c.id")]

    # ---- journal -------------------------------------------------------------------

    _ENTRY = ("SELECT id, request_digest, response, response_code, kind, card_id, amount, "
              "currency, ksn, reversed_by, merchant_name, terminal_id, trace_number "
              "FROM transactions ")

    @staticmethod
    def _entry(row) -> "JournalEntry | None":
        if row is None:
            return None
        return JournalEntry(row["id"], row["request_digest"], bytes(row["response"]),
                            row["response_code"], row["kind"], row["card_id"], row["amount"],
                            row["currency"], row["ksn"], row["reversed_by"],
                            row["merchant_name"], row["terminal_id"], row["trace_number"])

    def find_by_ksn(self, ksn) -> "JournalEntry | None":
        """The journal row of the request made under `ksn` (bytes or hex): the
        transaction's identity."""
        if isinstance(ksn, (bytes, bytearray)):
            ksn = bytes(ksn).hex()
        return self._entry(self._conn.execute(
            self._ENTRY + "WHERE ksn = ? ORDER BY id LIMIT 1", (ksn.upper(),)).fetchone())

    def find_transaction(self, terminal_id: str, trace_number: int) -> "JournalEntry | None":
        """The latest row journaled for (terminal id, trace number)."""
        return self._entry(self._conn.execute(
            self._ENTRY + "WHERE terminal_id = ? AND trace_number = ? ORDER BY id DESC "
            "LIMIT 1", (terminal_id, trace_number)).fetchone())

    def identity_in_use(self, terminal_id: str, trace_number: int, now: int) -> bool:
        """Whether (terminal id, trace number) was journaled within IDENTITY_WINDOW_S
        before `now`: a request with it (and another KSN) is a duplicate."""
        return self._conn.execute(
            "SELECT 1 FROM transactions WHERE terminal_id = ? AND trace_number = ? "
            "AND created_at > ? LIMIT 1",
            (terminal_id, trace_number, now - IDENTITY_WINDOW_S)).fetchone() is not None

    # columns a caller may set beside the required ones
    _JOURNAL_EXTRA = ("amount", "currency", "ksn", "approval_code", "merchant_id",
                      "merchant_name", "original_trace", "original_ksn", "reversal_reason",
                      "reversal_outcome", "original_id", "reversed_by")

    def record_transaction(self, *, terminal_id: str, trace_number: int, digest: str,
                           kind: str, card_id, response_code: str, response: bytes,
                           request_time: int, now=None, **extra) -> int:
        """A journal row; `extra` holds any of _JOURNAL_EXTRA (KSNs as bytes or hex)."""
        unknown = set(extra) - set(self._JOURNAL_EXTRA)
        if unknown:
            raise LedgerError(f"journal has no column {sorted(unknown)[0]!r}")
        for name in ("ksn", "original_ksn"):
            if isinstance(extra.get(name), (bytes, bytearray)):
                extra[name] = bytes(extra[name]).hex().upper()
        columns = ["terminal_id", "trace_number", "request_digest", "kind", "card_id",
                   "response_code", "response", "request_time", "created_at", *extra]
        values = [terminal_id, trace_number, digest, kind, card_id, response_code,
                  bytes(response), request_time, int(time.time() if now is None else now),
                  *extra.values()]
        return self._conn.execute(
            f"INSERT INTO transactions ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})", values).lastrowid

    def set_response(self, transaction_id: int, response: bytes):
        """The response of a journal row written before its answer was made (the
        issuer posts a purchase before it sends the alert the answer reports on)."""
        self._conn.execute("UPDATE transactions SET response = ? WHERE id = ?",
                           (bytes(response), transaction_id))

    def find_reversal_of(self, terminal_id: str, original_ksn) -> "int | None":
        """The id of the first reversal the terminal had acknowledged (00) for the
        request made under `original_ksn` (bytes or hex)."""
        if isinstance(original_ksn, (bytes, bytearray)):
            original_ksn = bytes(original_ksn).hex()
        row = self._conn.execute(
            "SELECT id FROM transactions WHERE original_ksn = ? AND terminal_id = ? "
            "AND kind = 'reversal' AND response_code = '00' ORDER BY id LIMIT 1",
            (original_ksn.upper(), terminal_id)).fetchone()
        return row["id"] if row else None

    def mark_reversed(self, transaction_id: int, reversal_id: int):
        """The purchase `transaction_id` is closed by the reversal `reversal_id`."""
        self._conn.execute("UPDATE transactions SET reversed_by = ? WHERE id = ?",
                           (reversal_id, transaction_id))

    def transactions(self) -> "list[dict]":
        return [dict(r) for r in self._conn.execute(
            "SELECT id, terminal_id, trace_number, kind, card_id, amount, currency, "
            "response_code, request_time, created_at FROM transactions ORDER BY id")]

    def journal(self) -> "list[dict]":
        """Every journal row for a person or a test: the card masked, and what the row
        moved on the account (`posted`, signed minor units, from the ledger entries)."""
        rows = self._conn.execute(
            "SELECT t.id, t.terminal_id, t.trace_number, t.kind, c.pan_encrypted, t.amount, "
            "t.currency, t.response_code, t.approval_code, t.merchant_id, t.merchant_name, "
            "t.ksn, t.original_trace, t.original_ksn, t.reversal_reason, "
            "t.reversal_outcome, t.original_id, t.reversed_by, t.request_time, "
            "t.created_at, (SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e "
            "WHERE e.transaction_id = t.id) AS posted "
            "FROM transactions t LEFT JOIN cards c ON c.id = t.card_id ORDER BY t.id")
        out = []
        for r in rows:
            row = dict(r)
            pan = row.pop("pan_encrypted")
            row = {"id": row.pop("id"),
                   "card": mask_pan(self.keys.decrypt_pan(pan)) if pan else None, **row}
            out.append(row)
        return out

    # ---- account postings ----------------------------------------------------------

    def post(self, *, account_id: int, transaction_id: int, amount: int, now=None):
        """Add `amount` (negative for a debit) to the account's available and ledger
        balance with its ledger entry; (available, ledger) after. Only inside a
        transaction(), so the entry and its journal row are written together."""
        if not self._conn.in_transaction:
            raise LedgerError("a posting needs a transaction")
        self._conn.execute("UPDATE accounts SET available = available + ?, "
                           "ledger = ledger + ? WHERE id = ?", (amount, amount, account_id))
        row = self._conn.execute("SELECT available, ledger FROM accounts WHERE id = ?",
                                 (account_id,)).fetchone()
        self._conn.execute(
            "INSERT INTO ledger_entries (account_id, transaction_id, amount, available_after, "
            "ledger_after, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, transaction_id, amount, row["available"], row["ledger"],
             int(time.time() if now is None else now)))
        return row["available"], row["ledger"]

    def ledger_entries(self) -> "list[dict]":
        return [dict(r) for r in self._conn.execute(
            "SELECT e.id, e.account_id, e.transaction_id, t.kind, t.terminal_id, "
            "t.trace_number, e.amount, e.available_after, e.ledger_after, e.created_at "
            "FROM ledger_entries e JOIN transactions t ON t.id = e.transaction_id "
            "ORDER BY e.id")]

    # ---- the outbox as a person reads it (outbox.py writes it) -------------------

    def outbox(self) -> "list[dict]":
        return [dict(r) for r in self._conn.execute(
            "SELECT id, message_id, transaction_id, account_event_id, kind, card_last4, "
            "channel, destination, language, text, status, attempts, next_attempt_at, "
            "reason, sent_at, gateway_ref, created_at FROM outbox ORDER BY id")]



# version of the file -> the step that brings it to the next version
MIGRATIONS = dict(enumerate([Ledger._to_version_5, Ledger._to_version_6,
                            Ledger._to_version_7],
                           start=OLDEST_MIGRATED))


def _key_source(db_path: Path, keys):
    """keys (a KeyStore, a path, or None for the file beside the database) -> a
    function of may_create: the key store, made when missing if may_create (a new or a
    migrated database), else KeyStoreError."""
    def source(may_create: bool) -> KeyStore:
        if isinstance(keys, KeyStore):
            return keys
        path = Path(keys) if keys is not None else path_beside(db_path)
        if may_create and not path.exists():
            return KeyStore.create(path)
        return KeyStore.open(path)
    return source


def _keep_private(path: Path):
    """The database file made (or kept) mode 0600 before SQLite opens it: SQLite makes
    its journal, WAL and shared-memory files with the database's own mode."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, DB_MODE))
    for name in (str(path), *(str(path) + s for s in ("-journal", "-wal", "-shm"))):
        try:
            mode = os.stat(name).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, DB_MODE)
            log.info("%s: mode %04o -> %04o", name, mode, DB_MODE)
