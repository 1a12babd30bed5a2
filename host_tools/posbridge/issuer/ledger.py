"""The issuer's store: one SQLite file (stdlib sqlite3).

Tables (docs/issuer.md has the full data model):

- key_sets: BDK id (hex of the KSN's first 4 bytes) -> BDK. The BDK lives only here.
- accounts: available and ledger balance in minor units, ISO 4217 numeric currency,
  credit limit (for purchases, issue 4).
- cardholders, alert_kinds, alert_channels: name, phone, subscribed or not, channel,
  chosen kinds, and the preferences of preferences.py (threshold, channel per kind,
  quiet hours, language, own large-amount limit).
- cards: the PAN (the issuer knows it; nothing here prints it unmasked), expiry YYMM,
  status, the PIN as a salted hash (pins.py), PIN tries left, account and cardholder.
- transactions: the journal. (terminal id, trace number) is UNIQUE: it is the
  transaction's identity; the request's SHA-256 and the response bytes are kept so a
  repeated request gets the very same answer. Never the request itself (PAN, PIN block).
- outbox: alerts for the cardholder: message id, card last 4 only, masked destination,
  language, text, status (queued, held, sent, failed) with attempts, next attempt and
  the reason of the last failure (dispatcher.py sends them).
- account_events: freezes, stop-payments, limit changes and repayment reminders
  (account_events.py); accounts hold the statement amount, minimum payment, due date.

Migrations: `schema_version` holds the version; MIGRATIONS[i] takes version i to i + 1,
so a database made by an older `posbridge issuer init` is brought up to date when it is
opened. A database is opened with Ledger.open (it must exist) or Ledger.create (a new
file). The issuer's other stores (preferences.py, outbox.py, account_events.py) run
their SQL through Ledger.execute, on the same connection and in the same transactions.

Writes that belong together run in one transaction (`with ledger.transaction():`),
started with BEGIN IMMEDIATE so that two processes cannot both pass the duplicate check
of the same transaction identity.
"""
import contextlib
import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..masking import mask_pan
from .codes import ALERT_KINDS, CARD_STATUSES, CHANNELS, OUTBOX_STATUSES
from .errors import LedgerError
from .preferences import Cardholder, load_cardholder  # noqa: F401  (Cardholder: re-exported)

DEFAULT_PATH = Path("var") / "issuer.sqlite"
MAX_PIN_TRIES = 3

MIGRATIONS = [
    # 0 -> 1: balance inquiries (issue 3)
    [
        """CREATE TABLE key_sets (
            bdk_id TEXT PRIMARY KEY CHECK (length(bdk_id) = 8),
            bdk TEXT NOT NULL CHECK (length(bdk) = 32),
            label TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL UNIQUE,
            currency INTEGER NOT NULL CHECK (currency BETWEEN 1 AND 999),
            available INTEGER NOT NULL,
            ledger INTEGER NOT NULL,
            credit_limit INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE cardholders (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            phone TEXT,
            subscribed INTEGER NOT NULL DEFAULT 0 CHECK (subscribed IN (0, 1)),
            channel TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'app'))
        )""",
        """CREATE TABLE alert_kinds (
            cardholder_id INTEGER NOT NULL REFERENCES cardholders(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            PRIMARY KEY (cardholder_id, kind)
        )""",
        """CREATE TABLE cards (
            id INTEGER PRIMARY KEY,
            pan TEXT NOT NULL UNIQUE,
            expiry TEXT NOT NULL CHECK (length(expiry) = 4),
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'frozen', 'blocked')),
            pin_hash TEXT NOT NULL,
            pin_tries_left INTEGER NOT NULL CHECK (pin_tries_left >= 0),
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            cardholder_id INTEGER NOT NULL REFERENCES cardholders(id)
        )""",
        """CREATE TABLE transactions (
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
            UNIQUE (terminal_id, trace_number)
        )""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            transaction_id INTEGER REFERENCES transactions(id),
            cardholder_id INTEGER REFERENCES cardholders(id),
            kind TEXT NOT NULL,
            card_last4 TEXT NOT NULL CHECK (length(card_last4) = 4),
            channel TEXT NOT NULL,
            destination TEXT NOT NULL,
            text TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )""",
    ],
    # 1 -> 2: notification engine (issue 5): preferences, dispatcher, account events
    [
        "ALTER TABLE cardholders ADD COLUMN threshold INTEGER "
        "CHECK (threshold IS NULL OR threshold >= 0)",
        "ALTER TABLE cardholders ADD COLUMN large_amount_limit INTEGER "
        "CHECK (large_amount_limit IS NULL OR large_amount_limit >= 0)",
        "ALTER TABLE cardholders ADD COLUMN quiet_hours TEXT",       # "22:00-07:00"
        "ALTER TABLE cardholders ADD COLUMN language TEXT "
        "CHECK (language IS NULL OR language IN ('en', 'zh'))",
        """CREATE TABLE alert_channels (
            cardholder_id INTEGER NOT NULL REFERENCES cardholders(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            channel TEXT NOT NULL CHECK (channel IN ('sms', 'app')),
            PRIMARY KEY (cardholder_id, kind)
        )""",
        "ALTER TABLE accounts ADD COLUMN statement_amount INTEGER",
        "ALTER TABLE accounts ADD COLUMN minimum_payment INTEGER",
        "ALTER TABLE accounts ADD COLUMN due_date TEXT",             # YYYY-MM-DD
        """CREATE TABLE account_events (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            card_id INTEGER REFERENCES cards(id),
            event TEXT NOT NULL,
            old_value TEXT,
            new_value TEXT,
            created_at INTEGER NOT NULL
        )""",
        "ALTER TABLE outbox ADD COLUMN message_id TEXT",
        # rows of version 1 get an id too; SQLite cannot add a UNIQUE column, hence the index
        "UPDATE outbox SET message_id = lower(hex(randomblob(8)))",
        "CREATE UNIQUE INDEX outbox_message_id ON outbox (message_id)",
        "ALTER TABLE outbox ADD COLUMN account_event_id INTEGER REFERENCES account_events(id)",
        "ALTER TABLE outbox ADD COLUMN language TEXT",
        "UPDATE outbox SET language = 'en'",                         # version 1 wrote English
        "ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER",
        "ALTER TABLE outbox ADD COLUMN reason TEXT",
        "ALTER TABLE outbox ADD COLUMN sent_at INTEGER",
        "ALTER TABLE outbox ADD COLUMN gateway_ref TEXT",
        "UPDATE outbox SET attempts = 1, sent_at = created_at WHERE status = 'sent'",
        "UPDATE outbox SET next_attempt_at = created_at WHERE status != 'sent'",
        "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Card:
    id: int
    pan: str
    expiry: str
    status: str
    pin_hash: str
    pin_tries_left: int
    account_id: int
    available: int
    ledger: int
    currency: int
    holder: Cardholder

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


def request_digest(body: bytes) -> str:
    return hashlib.sha256(bytes(body)).hexdigest()


class Ledger:
    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path

    # ---- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, path=DEFAULT_PATH) -> "Ledger":
        """An existing database, migrated to the current schema if it is older."""
        path = Path(path)
        if not path.is_file():
            raise LedgerError(f"no issuer database at {path}: run posbridge issuer init")
        return cls._connect(path)

    @classmethod
    def create(cls, path=DEFAULT_PATH, force: bool = False) -> "Ledger":
        """A new, empty database (parent directories created). An existing file is
        refused unless `force`, which deletes it first."""
        path = Path(path)
        if path.exists():
            if not force:
                raise LedgerError(f"issuer database {path} exists: --force replaces it")
            path.unlink()
            for suffix in ("-journal", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path) -> "Ledger":
        try:
            conn = sqlite3.connect(str(path), timeout=10, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            ledger = cls(conn, path)
            ledger._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"{path} is not an issuer database: {exc}") from None
        return ledger

    def _migrate(self):
        with self.transaction():
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._conn.execute("SELECT version FROM schema_version").fetchone()
            version = row["version"] if row else 0
            if row is None:
                self._conn.execute("INSERT INTO schema_version VALUES (0)")
            if version > SCHEMA_VERSION:
                raise LedgerError(f"{self.path}: schema version {version} is newer than "
                                  f"this posbridge ({SCHEMA_VERSION})")
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    self._conn.execute(statement)
            self._conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self):
        self._conn.close()

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement on the ledger's connection (inside the current transaction,
        if any): for the stores of preferences.py, outbox.py and account_events.py."""
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
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def schema_version(self) -> int:
        return self._conn.execute("SELECT version FROM schema_version").fetchone()["version"]

    # ---- keys ----------------------------------------------------------------------

    def add_key_set(self, bdk_id: str, bdk: bytes, label: str = ""):
        bdk_id = bdk_id.upper()
        if len(bdk_id) != 8 or any(c not in "0123456789ABCDEF" for c in bdk_id):
            raise LedgerError("BDK id: 8 hex digits expected (the KSN's first 4 bytes)")
        if len(bdk) != 16:
            raise LedgerError("BDK: 16 bytes (AES-128) expected")
        with self.transaction():
            self._conn.execute("INSERT OR REPLACE INTO key_sets VALUES (?, ?, ?)",
                               (bdk_id, bytes(bdk).hex().upper(), label))

    def bdk_for(self, bdk_id: str) -> "bytes | None":
        row = self._conn.execute("SELECT bdk FROM key_sets WHERE bdk_id = ?",
                                 (bdk_id.upper(),)).fetchone()
        return bytes.fromhex(row["bdk"]) if row else None

    # ---- accounts, cardholders, cards ----------------------------------------------

    def add_card(self, *, pan: str, pin_hash: str, expiry: str, available: int,
                 currency: int, name: str, phone=None, subscribed=False, channel="sms",
                 kinds=(), status="active", ledger_balance=None, credit_limit=0) -> int:
        """A card with its own new account and cardholder; returns the card's id.
        The caller checks PAN, expiry and phone (cards.py) and hashes the PIN."""
        if status not in CARD_STATUSES:
            raise LedgerError(f"card status {status!r}: one of {', '.join(CARD_STATUSES)}")
        if channel not in CHANNELS:
            raise LedgerError(f"channel {channel!r}: one of {', '.join(CHANNELS)}")
        for kind in kinds:
            if kind not in ALERT_KINDS:
                raise LedgerError(f"alert kind {kind!r}: one of {', '.join(ALERT_KINDS)}")
        with self.transaction():
            if self._conn.execute("SELECT 1 FROM cards WHERE pan = ?", (pan,)).fetchone():
                raise LedgerError(f"card {mask_pan(pan)} is already on file")
            count = self._conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
            account_id = self._conn.execute(
                "INSERT INTO accounts (number, currency, available, ledger, credit_limit) "
                "VALUES (?, ?, ?, ?, ?)",
                (f"ACC{count + 1:06d}", currency, available,
                 available if ledger_balance is None else ledger_balance, credit_limit),
            ).lastrowid
            holder_id = self._conn.execute(
                "INSERT INTO cardholders (name, phone, subscribed, channel) VALUES (?, ?, ?, ?)",
                (name, phone or None, int(bool(subscribed)), channel)).lastrowid
            self._conn.executemany("INSERT INTO alert_kinds VALUES (?, ?)",
                                   [(holder_id, k) for k in dict.fromkeys(kinds)])
            return self._conn.execute(
                "INSERT INTO cards (pan, expiry, status, pin_hash, pin_tries_left, "
                "account_id, cardholder_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pan, expiry, status, pin_hash, MAX_PIN_TRIES, account_id, holder_id),
            ).lastrowid

    _CARD_QUERY = """
        SELECT c.id, c.pan, c.expiry, c.status, c.pin_hash, c.pin_tries_left,
               a.id AS account_id, a.available, a.ledger, a.currency,
               h.id AS holder_id, h.name, h.phone, h.subscribed, h.channel
        FROM cards c JOIN accounts a ON a.id = c.account_id
                     JOIN cardholders h ON h.id = c.cardholder_id"""

    def _card(self, row) -> Card:
        holder = load_cardholder(self, row["holder_id"])
        return Card(row["id"], row["pan"], row["expiry"], row["status"], row["pin_hash"],
                    row["pin_tries_left"], row["account_id"], row["available"],
                    row["ledger"], row["currency"], holder)

    def card_by_pan(self, pan: str) -> "Card | None":
        row = self._conn.execute(self._CARD_QUERY + " WHERE c.pan = ?", (pan,)).fetchone()
        return self._card(row) if row else None

    def card_on_file(self, pan: str) -> Card:
        """The card with `pan`, else LedgerError (the PAN masked in its message)."""
        card = self.card_by_pan(pan)
        if card is None:
            raise LedgerError(f"card {mask_pan(pan)} is not on file")
        return card

    def cards(self) -> "list[Card]":
        return [self._card(r) for r in self._conn.execute(self._CARD_QUERY + " ORDER BY c.id")]

    def set_pin_tries(self, card_id: int, tries_left: int):
        self._conn.execute("UPDATE cards SET pin_tries_left = ? WHERE id = ?",
                           (tries_left, card_id))

    # ---- journal -------------------------------------------------------------------

    def find_transaction(self, terminal_id: str, trace_number: int) -> "JournalEntry | None":
        row = self._conn.execute(
            "SELECT id, request_digest, response, response_code FROM transactions "
            "WHERE terminal_id = ? AND trace_number = ?", (terminal_id, trace_number)).fetchone()
        if row is None:
            return None
        return JournalEntry(row["id"], row["request_digest"], bytes(row["response"]),
                            row["response_code"])

    def record_transaction(self, *, terminal_id: str, trace_number: int, digest: str,
                           kind: str, card_id, response_code: str, response: bytes,
                           request_time: int, amount=None, currency=None, now=None) -> int:
        return self._conn.execute(
            "INSERT INTO transactions (terminal_id, trace_number, request_digest, kind, "
            "card_id, amount, currency, response_code, response, request_time, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (terminal_id, trace_number, digest, kind, card_id, amount, currency,
             response_code, bytes(response), request_time,
             int(time.time() if now is None else now)),
        ).lastrowid

    def transactions(self) -> "list[dict]":
        return [dict(r) for r in self._conn.execute(
            "SELECT id, terminal_id, trace_number, kind, card_id, amount, currency, "
            "response_code, request_time, created_at FROM transactions ORDER BY id")]

    # ---- outbox --------------------------------------------------------------------

    def add_outbox(self, *, transaction_id, cardholder_id, kind: str, card_last4: str,
                   channel: str, destination: str, text: str, status: str, now=None,
                   message_id=None, language=None, next_attempt_at=None, attempts=None,
                   reason=None, sent_at=None, gateway_ref=None,
                   account_event_id=None) -> int:
        """One alert. A row that waits (queued, held, failed) is due at
        `next_attempt_at` (default: now); a "sent" row counts one attempt."""
        if status not in OUTBOX_STATUSES:
            raise LedgerError(f"outbox status {status!r}: one of {', '.join(OUTBOX_STATUSES)}")
        now = int(time.time() if now is None else now)
        if status == "sent":
            attempts = 1 if attempts is None else attempts
            sent_at, next_attempt_at = now if sent_at is None else sent_at, None
        elif next_attempt_at is None:
            next_attempt_at = now
        return self._conn.execute(
            "INSERT INTO outbox (transaction_id, account_event_id, cardholder_id, message_id, "
            "kind, card_last4, channel, destination, language, text, status, attempts, "
            "next_attempt_at, reason, sent_at, gateway_ref, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (transaction_id, account_event_id, cardholder_id, message_id or new_message_id(),
             kind, card_last4, channel, destination, language, text, status, attempts or 0,
             next_attempt_at, reason, sent_at, gateway_ref, now),
        ).lastrowid

    def outbox(self) -> "list[dict]":
        return [dict(r) for r in self._conn.execute(
            "SELECT id, message_id, transaction_id, account_event_id, kind, card_last4, "
            "channel, destination, language, text, status, attempts, next_attempt_at, "
            "reason, sent_at, gateway_ref, created_at FROM outbox ORDER BY id")]


def new_message_id() -> str:
    """An alert's id: 16 hex digits, random (it says nothing about the card)."""
    return secrets.token_hex(8)
