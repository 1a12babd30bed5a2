"""The issuer's store: one SQLite file (stdlib sqlite3).

Tables (docs/issuer.md has the full data model):

- key_sets: BDK id (hex of the KSN's first 4 bytes) -> BDK. The BDK lives only here.
- accounts: available and ledger balance in minor units, ISO 4217 numeric currency,
  credit limit (an overdraft a purchase may use), single-purchase limit; the statement
  amount, minimum payment and due date of repayment reminders.
- cardholders, alert_kinds, alert_channels: name, phone, subscribed or not, channel,
  chosen kinds, and the preferences of preferences.py (purchase alert threshold,
  channel per kind, quiet hours, language, own large-amount limit).
- cards: the PAN (the issuer knows it; nothing here prints it unmasked), expiry YYMM,
  status, the PIN as a salted hash (pins.py), PIN tries left, single-purchase limit,
  account and cardholder.
- transactions: the journal. (terminal id, trace number) is UNIQUE: it is the
  transaction's identity; the request's SHA-256 and the response bytes are kept so a
  repeated request gets the very same answer. Never the request itself (PAN, PIN block).
  A reversal row names the purchase it reverses (original trace and KSN, original_id);
  a purchase row names the reversal that closed it (reversed_by).
- ledger_entries: every change of an account's balances, signed (a purchase negative,
  its reversal positive), with the journal row that made it and the balances after.
- outbox: alerts for the cardholder: message id, card last 4 only, masked destination,
  language, text, status (queued, held, sent, failed) with attempts, next attempt and
  the reason of the last failure (dispatcher.py sends them).
- account_events: freezes, stop-payments, limit changes and repayment reminders
  (account_events.py).

Migrations: `schema_version` holds the version; MIGRATIONS[i] takes version i to i + 1,
so a database made by an older `posbridge issuer init` is brought up to date when it is
opened: 1 balance inquiries, 2 purchases and reversals, 3 the notification engine, 4 one
purchase alert threshold. Purchases and the notification engine were first written side
by side, each as version 2; a database at version 2 with the engine's tables and without
ledger_entries is the engine's: it gets the purchase migration and the threshold one
(_pending). A database is opened with Ledger.open (it must exist) or Ledger.create (a new
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

from ..link.pan import mask_pan
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
    # 1 -> 2: purchases and reversals (issue 4)
    [
        "ALTER TABLE accounts ADD COLUMN purchase_limit INTEGER "
        "CHECK (purchase_limit IS NULL OR purchase_limit > 0)",
        "ALTER TABLE cards ADD COLUMN purchase_limit INTEGER "
        "CHECK (purchase_limit IS NULL OR purchase_limit > 0)",
        "ALTER TABLE cardholders ADD COLUMN purchase_threshold INTEGER NOT NULL DEFAULT 0 "
        "CHECK (purchase_threshold >= 0)",
        "ALTER TABLE transactions ADD COLUMN ksn TEXT",
        "ALTER TABLE transactions ADD COLUMN approval_code TEXT",
        "ALTER TABLE transactions ADD COLUMN merchant_id TEXT",
        "ALTER TABLE transactions ADD COLUMN merchant_name TEXT",
        "ALTER TABLE transactions ADD COLUMN original_trace INTEGER",
        "ALTER TABLE transactions ADD COLUMN original_ksn TEXT",
        "ALTER TABLE transactions ADD COLUMN reversal_reason INTEGER",
        "ALTER TABLE transactions ADD COLUMN reversal_outcome INTEGER",
        "ALTER TABLE transactions ADD COLUMN original_id INTEGER REFERENCES transactions(id)",
        "ALTER TABLE transactions ADD COLUMN reversed_by INTEGER REFERENCES transactions(id)",
        "CREATE INDEX transactions_by_original ON transactions (terminal_id, original_trace) "
        "WHERE original_trace IS NOT NULL",
        """CREATE TABLE ledger_entries (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            transaction_id INTEGER NOT NULL REFERENCES transactions(id),
            amount INTEGER NOT NULL CHECK (amount != 0),
            available_after INTEGER NOT NULL,
            ledger_after INTEGER NOT NULL,
            created_at INTEGER NOT NULL
        )""",
    ],
    # 2 -> 3: notification engine (issue 5): preferences, dispatcher, account events
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
    # 3 -> 4: one purchase alert threshold: preferences' `threshold` (NULL: the bank's
    # default) replaces the `purchase_threshold` of 1 -> 2 (0 there meant none set)
    [
        "UPDATE cardholders SET threshold = purchase_threshold "
        "WHERE threshold IS NULL AND purchase_threshold > 0",
        "ALTER TABLE cardholders DROP COLUMN purchase_threshold",
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
            for step in self._pending(version):
                for statement in MIGRATIONS[step]:
                    self._conn.execute(statement)
            self._conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def _pending(self, version: int) -> "list[int]":
        """The indexes into MIGRATIONS a database at `version` still needs."""
        if version == 2 and self._has_table("account_events") \
                and not self._has_table("ledger_entries"):
            # the notification engine's own version 2 (its migration is 2 -> 3 here):
            # purchases and reversals are missing, then the threshold is made one
            return [1, 3]
        return list(range(version, SCHEMA_VERSION))

    def _has_table(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                  "AND name = ?", (name,)).fetchone() is not None

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
            self._conn.execute("COMMIT")
        except BaseException:
            # a COMMIT that failed (busy, disk full) leaves the transaction open: end it,
            # or every later request would nest into it and nothing be saved again
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

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
                 kinds=(), status="active", ledger_balance=None, credit_limit=0,
                 purchase_limit=None, account_purchase_limit=None, threshold=None) -> int:
        """A card with its own new account and cardholder; returns the card's id.
        The caller checks PAN, expiry and phone (cards.py) and hashes the PIN.
        `threshold`: the cardholder's purchase alert threshold, minor units (None: the
        bank's default); the other preferences are set with preferences.update."""
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
                "INSERT INTO accounts (number, currency, available, ledger, credit_limit, "
                "purchase_limit) VALUES (?, ?, ?, ?, ?, ?)",
                (f"ACC{count + 1:06d}", currency, available,
                 available if ledger_balance is None else ledger_balance, credit_limit,
                 account_purchase_limit),
            ).lastrowid
            holder_id = self._conn.execute(
                "INSERT INTO cardholders (name, phone, subscribed, channel, threshold) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, phone or None, int(bool(subscribed)), channel, threshold)).lastrowid
            self._conn.executemany("INSERT INTO alert_kinds VALUES (?, ?)",
                                   [(holder_id, k) for k in dict.fromkeys(kinds)])
            return self._conn.execute(
                "INSERT INTO cards (pan, expiry, status, pin_hash, pin_tries_left, "
                "account_id, cardholder_id, purchase_limit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (pan, expiry, status, pin_hash, MAX_PIN_TRIES, account_id, holder_id,
                 purchase_limit),
            ).lastrowid

    _CARD_QUERY = """
        SELECT c.id, c.pan, c.expiry, c.status, c.pin_hash, c.pin_tries_left,
               c.purchase_limit, a.id AS account_id, a.available, a.ledger, a.currency,
               a.purchase_limit AS account_purchase_limit, a.credit_limit,
               c.cardholder_id AS holder_id
        FROM cards c JOIN accounts a ON a.id = c.account_id"""

    def _card(self, row) -> Card:
        holder = load_cardholder(self, row["holder_id"])
        return Card(row["id"], row["pan"], row["expiry"], row["status"], row["pin_hash"],
                    row["pin_tries_left"], row["account_id"], row["available"],
                    row["ledger"], row["currency"], holder, row["purchase_limit"],
                    row["account_purchase_limit"], row["credit_limit"])

    def card_by_pan(self, pan: str) -> "Card | None":
        row = self._conn.execute(self._CARD_QUERY + " WHERE c.pan = ?", (pan,)).fetchone()
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

    def set_pin_tries(self, card_id: int, tries_left: int):
        self._conn.execute("UPDATE cards SET pin_tries_left = ? WHERE id = ?",
                           (tries_left, card_id))

    # ---- journal -------------------------------------------------------------------

    def find_transaction(self, terminal_id: str, trace_number: int) -> "JournalEntry | None":
        row = self._conn.execute(
            "SELECT id, request_digest, response, response_code, kind, card_id, amount, "
            "currency, ksn, reversed_by FROM transactions "
            "WHERE terminal_id = ? AND trace_number = ?", (terminal_id, trace_number)).fetchone()
        if row is None:
            return None
        return JournalEntry(row["id"], row["request_digest"], bytes(row["response"]),
                            row["response_code"], row["kind"], row["card_id"], row["amount"],
                            row["currency"], row["ksn"], row["reversed_by"])

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

    def find_reversal_of(self, terminal_id: str, original_trace: int) -> "int | None":
        """The id of the first reversal journaled for (terminal id, original trace)."""
        row = self._conn.execute(
            "SELECT id FROM transactions WHERE terminal_id = ? AND original_trace = ? "
            "AND kind = 'reversal' ORDER BY id LIMIT 1", (terminal_id, original_trace)).fetchone()
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
            "SELECT t.id, t.terminal_id, t.trace_number, t.kind, c.pan, t.amount, "
            "t.currency, t.response_code, t.approval_code, t.merchant_id, t.merchant_name, "
            "t.ksn, t.original_trace, t.original_ksn, t.reversal_reason, "
            "t.reversal_outcome, t.original_id, t.reversed_by, t.request_time, "
            "t.created_at, (SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e "
            "WHERE e.transaction_id = t.id) AS posted "
            "FROM transactions t LEFT JOIN cards c ON c.id = t.card_id ORDER BY t.id")
        out = []
        for r in rows:
            row = dict(r)
            pan = row.pop("pan")
            row = {"id": row.pop("id"), "card": mask_pan(pan) if pan else None, **row}
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
