"""The demo data set that `posbridge issuer init` loads.

TEST DATA ONLY. The key set is the public AES-128 test BDK of ANSI X9.24-3-2017 (the
one in ../shared/reference/aes-dukpt-x9.24-3.json); the PANs are made-up test numbers
with a valid Luhn digit, listed in full here and in docs/issuer.md so that scenarios can
use them; every card's PIN is 1234. Nothing here is a real card or a real key.

Every card is also a contactless chip card (`contactless`: its cryptogram version,
issuer/cryptogram.py); the issuer master keys of their card ranges are made at random
in the key store when the demo is loaded, and the emulator's virtual cards are
personalised from it (board/emv_card.py).
"""
import datetime
from dataclasses import dataclass

from . import cards, codes, preferences, terminals
from .account_events import set_statement
from .quiet_hours import QuietHours

# X9.24-3: initial key ID 1234567890123456 = BDK ID 12345678 | derivation ID 90123456
DEMO_BDK_ID = "12345678"
DEMO_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
DEMO_INITIAL_KEY_ID = bytes.fromhex("1234567890123456")
DEMO_PIN = "1234"
# the terminal the emulator and the demo provision with that key (board/provision.py)
DEMO_TERMINAL_ID = "T0000001"
DEMO_MERCHANT_ID = "104110070110001"
DEMO_MERCHANT_NAME = "DEMO SHOP"
DEMO_UTC_OFFSET_MIN = 480            # the demo merchant's local time, UTC+8
CNY = 156


@dataclass(frozen=True)
class DemoCard:
    pan: str
    name: str
    balance: int                 # minor units, CNY
    expiry: str = "3012"
    status: str = "active"
    phone: "str | None" = None
    subscribed: bool = False
    channel: str = "sms"
    kinds: tuple = codes.DEFAULT_ALERT_KINDS
    purchase_limit: "int | None" = None          # the card's single-purchase limit
    account_purchase_limit: "int | None" = None  # the account's
    shows: str = ""              # what a balance inquiry with PIN 1234 answers
    threshold: "int | None" = None          # own purchase alert threshold, minor units
    quiet_hours: "str | None" = None
    language: "str | None" = None
    credit_limit: int = 0
    statement: "tuple | None" = None        # (amount, minimum payment, due date)
    contactless: "str | None" = None        # the chip's cryptogram version (cryptogram.py)
    psn: str = "00"                         # the chip's PAN sequence number (5F34)


DEMO_CARDS = (
    DemoCard("4761730000000011", "Li Wei", 1234567, phone="13812345678", subscribed=True,
             kinds=codes.ALERT_KINDS, purchase_limit=500000, credit_limit=2000000,
             statement=(234500, 23450, "2026-12-10"), shows="00, SMS sent to 138****5678",
             contactless="visa-18", psn="01"),
    DemoCard("4761730000000029", "Zhang Min", 88000, phone="13987654321",
             shows="00, alerts not subscribed", contactless="visa-10"),
    DemoCard("4761730000000037", "Wang Fang", 500000, phone="13700001111", subscribed=True,
             channel="app", kinds=codes.ALERT_KINDS, account_purchase_limit=200000,
             threshold=10000, quiet_hours="22:00-07:00", language="zh",
             credit_limit=1000000, statement=(100000, 10000, "2026-12-10"),
             shows="00, app push to 137****1111", contactless="visa-18"),
    DemoCard("4761730000000045", "Chen Jie", 30000, subscribed=True,
             shows="00, no phone on file", contactless="visa-10"),
    DemoCard("6225880000000050", "Liu Yang", 70000, expiry="2101", phone="13600002222",
             subscribed=True, shows="54 expired card", contactless="unionpay-10"),
    DemoCard("6225880000000068", "Zhao Lei", 150000, status="frozen", phone="13500003333",
             subscribed=True, shows="62 restricted card, security alert to 135****3333",
             contactless="unionpay-10"),
    DemoCard("6225880000000076", "Sun Li", 99900, phone="13400004444", subscribed=True,
             kinds=("purchase",), threshold=50000,
             shows="00, balance inquiry alerts not chosen", contactless="unionpay-10"),
)


def load_demo(ledger, terminal_id: str = DEMO_TERMINAL_ID) -> int:
    """Put the demo key set into the ledger's key store, and its terminal (`terminal_id`
    with the demo initial key) and the cards (PINs as IBM 3624 offsets) into an (empty)
    ledger; returns the card count."""
    ledger.keys.import_bdk(DEMO_BDK_ID, DEMO_BDK, "ANSI X9.24-3-2017 AES-128 test BDK")
    for card_range in sorted({card.pan[:6] for card in DEMO_CARDS if card.contactless}):
        ledger.keys.create_issuer_master_keys(card_range)
    terminals.register(ledger, terminal_id, DEMO_INITIAL_KEY_ID, DEMO_MERCHANT_ID,
                       DEMO_MERCHANT_NAME, utc_offset_min=DEMO_UTC_OFFSET_MIN)
    with ledger.transaction():
        for card in DEMO_CARDS:
            cards.add(
                ledger, pan=card.pan, pin=DEMO_PIN, expiry=card.expiry,
                available=card.balance, currency=CNY, name=card.name, phone=card.phone,
                subscribed=card.subscribed, channel=card.channel, kinds=card.kinds,
                status=card.status, credit_limit=card.credit_limit,
                purchase_limit=card.purchase_limit,
                account_purchase_limit=card.account_purchase_limit, threshold=card.threshold)
            holder_id = ledger.card_by_pan(card.pan).holder.id
            preferences.update(ledger, holder_id,
                               quiet_hours=card.quiet_hours and QuietHours.parse(card.quiet_hours),
                               language=card.language)
            if card.statement:
                amount, minimum, due = card.statement
                set_statement(ledger, card.pan, statement_amount=amount, minimum_payment=minimum,
                              due_date=datetime.date.fromisoformat(due))
    return len(DEMO_CARDS)


def demo_card(pan: str) -> "DemoCard | None":
    return next((card for card in DEMO_CARDS if card.pan == pan), None)
