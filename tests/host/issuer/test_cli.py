"""`posbridge issuer ...` through click's CliRunner on tmp_path databases: what a person
sees, errors without tracebacks, and never a full PAN or a PIN."""
import json
import re

import pytest
from click.testing import CliRunner

from posbridge.issuer.cli import issuer as issuer_group
from posbridge.issuer.demo_data import DEMO_CARDS
from posbridge.link.protocol import PURCHASE_REQUEST, REVERSAL_REQUEST

from .conftest import ISSUER_NOW
from .request_builder import TerminalRequestBuilder as Terminal
from .test_balance_inquiry import LI_WEI, ZHANG_MIN, ask

FULL_PANS = [c.pan for c in DEMO_CARDS] + ["4111111111111111"]


def run(*args, input=None, env=None):
    return CliRunner().invoke(issuer_group, [str(a) for a in args], input=input, env=env,
                              prog_name="posbridge issuer")


def assert_no_secrets(output, pins=()):
    for pan in FULL_PANS:
        assert pan not in output
    for pin in pins:                   # as a number of its own (12345678 is a key id)
        assert not re.search(rf"(?<!\d){pin}(?!\d)", output)


def assert_clean_failure(result, *fragments):
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output
    assert_no_secrets(result.output)


# ---- init -----------------------------------------------------------------------------

def test_init_loads_the_demo_set(tmp_path):
    db = tmp_path / "deep" / "issuer.sqlite"
    result = run("--db", db, "init")
    assert result.exit_code == 0, result.output
    assert db.is_file()
    assert "7 demo test cards" in result.output and "key set 12345678" in result.output
    assert "476173******0011" in result.output
    assert_no_secrets(result.output, pins=["1234"])


def test_init_refuses_to_overwrite_unless_forced(db_path):
    assert_clean_failure(run("--db", db_path, "init"), "exists: --force replaces it")
    assert run("--db", db_path, "init", "--force").exit_code == 0


def test_init_default_path_is_var_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POSBRIDGE_ISSUER_DB", raising=False)
    assert run("init").exit_code == 0
    assert (tmp_path / "var" / "issuer.sqlite").is_file()


def test_init_default_key_store_is_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POSBRIDGE_ISSUER_DB", raising=False)
    monkeypatch.delenv("POSBRIDGE_ISSUER_KEYS", raising=False)
    result = run("init")
    assert result.exit_code == 0, result.output
    assert "key store var/issuer.keys" in result.output
    assert (tmp_path / "var" / "issuer.keys").stat().st_mode & 0o777 == 0o600


def test_a_key_store_elsewhere(tmp_path):
    db, keys = tmp_path / "db" / "issuer.sqlite", tmp_path / "hsm" / "bank.keys"
    assert run("--db", db, "--keys", keys, "init").exit_code == 0
    assert keys.is_file() and not db.with_suffix(".keys").exists()
    result = run("--db", db, "card", "add", "--pan", "4111111111111111", "--expiry", "3106",
                 "--pin", "4321", env={"POSBRIDGE_ISSUER_KEYS": str(keys)})
    assert result.exit_code == 0, result.output
    assert "411111******1111" in run("--db", db, "--keys", keys, "ledger").output
    # without it the database is of no use, and says so
    assert_clean_failure(run("--db", db, "ledger"), "no issuer key store at")


def test_db_from_the_environment(db_path):
    result = run("ledger", env={"POSBRIDGE_ISSUER_DB": str(db_path)})
    assert result.exit_code == 0 and "476173******0011" in result.output


@pytest.mark.parametrize("command", [["ledger"], ["ledger", "--json"], ["outbox"],
                                     ["journal"], ["journal", "--json"],
                                     ["card", "add", "--pan", "4111111111111111",
                                      "--pin", "1234", "--expiry", "3012"]])
def test_missing_database(tmp_path, command):
    db = tmp_path / "nowhere.sqlite"
    assert_clean_failure(run("--db", db, *command),
                         f"no issuer database at {db}: run posbridge issuer init")
    assert not db.exists()


# ---- card add -------------------------------------------------------------------------

def test_card_add_and_use_it(db_path):
    result = run("--db", db_path, "card", "add", "--pan", "4111111111111111", "--pin", "8642",
                 "--expiry", "3106", "--balance", "1,500.25", "--currency", "USD",
                 "--name", "Test Person", "--phone", "13811112222", "--subscribe",
                 "--channel", "app", "--alerts", "balance_inquiry")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "added card 411111******1111: active, expires 3106, USD 1,500.25"
    assert_no_secrets(result.output, pins=["8642"])
    listed = json.loads(run("--db", db_path, "ledger", "--json").output)[-1]
    assert listed == {"card": "411111******1111", "status": "active", "expiry": "3106",
                      "pin_tries_left": 3, "available": 150025, "ledger": 150025,
                      "currency": 840, "cardholder": "Test Person", "phone": "138****2222",
                      "subscribed": True, "channel": "app",
                      "alert_kinds": ["balance_inquiry"], "alert_threshold": None,
                      "purchase_limit": None, "account_purchase_limit": None,
                      "credit_limit": 0, "postings": []}
    from posbridge.issuer import Issuer, Ledger
    issuer = Issuer(Ledger.open(db_path), clock=lambda: ISSUER_NOW)
    try:
        fields = ask(issuer, Terminal(), "4111111111111111", pin="8642", expiry="3106")
    finally:
        issuer.close()
    assert (fields[3], fields[5], fields[7], fields[8][2]) == ("00", 150025, 840, "app")


def test_card_add_prompts_for_the_pin_hidden(db_path):
    result = run("--db", db_path, "card", "add", "--pan", "4111111111111111",
                 "--expiry", "3106", input="9753\n9753\n")
    assert result.exit_code == 0, result.output
    assert "Pin:" in result.output
    assert_no_secrets(result.output, pins=["9753"])


CARD = ["card", "add", "--pan", "4111111111111111", "--pin", "8520", "--expiry", "3012"]


def _with(option, value):
    args = list(CARD)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    return args


@pytest.mark.parametrize("option,value,message", [
    ("--pan", "41111111111", "PAN: 12 to 19 digits expected"),
    ("--pan", "4111111111111112", "PAN 411111******1112: Luhn check digit is wrong"),
    ("--pan", LI_WEI, "card 476173******0011 is already on file"),
    ("--pin", "12", "PIN: 4 to 12 digits expected"),
    ("--pin", "12ab", "PIN: 4 to 12 digits expected"),
    ("--expiry", "3013", "expiry 3013: month 13 is not 01..12"),
    ("--expiry", "12/30", "YYMM expected"),
    ("--balance", "10.005", "at most 2 decimals in CNY"),
    ("--balance", "lots", "a decimal number expected"),
    ("--currency", "XYZ", "an ISO 4217 code expected"),
    ("--phone", "138-1234", "7 to 15 digits"),
    ("--alerts", "balance_inquiry,gossip", "alert kind 'gossip'"),
    ("--channel", "fax", "Invalid value for '--channel'"),
    ("--status", "stolen", "Invalid value for '--status'"),
    ("--purchase-limit", "0", "purchase limit: more than 0 expected"),
    ("--purchase-limit", "1.001", "at most 2 decimals in CNY"),
    ("--alert-threshold", "-1", "alert threshold: 0 or more expected"),
])
def test_card_add_bad_input(db_path, option, value, message):
    result = run("--db", db_path, *_with(option, value))
    assert_clean_failure(result, message)
    assert "8520" not in result.output
    if option == "--pin":
        assert value not in result.output.replace("4 to 12 digits", "")


# ---- ledger and outbox ----------------------------------------------------------------

def test_ledger_table(db_path):
    result = run("--db", db_path, "ledger")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["card", "status", "exp", "PIN"]
    assert len(lines) == 1 + len(DEMO_CARDS)
    li = next(line for line in lines if line.startswith("476173******0011"))
    assert "CNY 12,345.67" in li and "sms 138****5678" in li and " 3 " in li
    assert "frozen" in next(line for line in lines if line.startswith("622588******0068"))
    assert_no_secrets(result.output)


def test_ledger_shows_tries_after_wrong_pins(db_path, issuer, terminal):
    ask(issuer, terminal, LI_WEI, pin="0000")
    [li] = [c for c in json.loads(run("--db", db_path, "ledger", "--json").output)
            if c["card"] == "476173******0011"]
    assert li["pin_tries_left"] == 2


def test_ledger_json_holds_no_pan_or_pin_hash(db_path):
    result = run("--db", db_path, "ledger", "--json")
    cards = json.loads(result.output)
    assert len(cards) == len(DEMO_CARDS)
    assert "scrypt" not in result.output and "pin_hash" not in result.output
    assert_no_secrets(result.output)


def test_empty_ledger_and_outbox(tmp_path):
    from posbridge.issuer import Ledger
    db = tmp_path / "empty.sqlite"
    Ledger.create(db).close()
    assert run("--db", db, "ledger").output.strip() == "no cards on file"
    assert run("--db", db, "outbox").output.strip() == "outbox is empty"
    assert json.loads(run("--db", db, "outbox", "--json").output) == []


def test_outbox_after_inquiries(db_path, issuer, terminal):
    ask(issuer, terminal, LI_WEI)
    ask(issuer, terminal, "4761730000000037")
    ask(issuer, terminal, "4761730000000029")          # not subscribed: no row
    text = run("--db", db_path, "outbox")
    assert text.exit_code == 0
    assert "*0011" in text.output and "138****5678" in text.output and "sent" in text.output
    assert "Available CNY 12,345.67" in text.output
    rows = json.loads(run("--db", db_path, "outbox", "--json").output)
    assert [(r["card_last4"], r["channel"], r["destination"], r["status"], r["kind"])
            for r in rows] == [("0011", "sms", "138****5678", "sent", "balance_inquiry"),
                               ("0037", "app", "137****1111", "sent", "balance_inquiry")]
    assert_no_secrets(text.output + json.dumps(rows))


def test_not_a_database_is_a_clean_error(tmp_path):
    db = tmp_path / "junk.sqlite"
    db.write_bytes(b"junk" * 500)
    assert_clean_failure(run("--db", db, "ledger"), "is not an issuer database")


# ---- purchases and reversals: ledger postings and the journal ---------------------------

def test_card_add_with_limit_and_threshold(db_path):
    result = run("--db", db_path, *CARD, "--balance", "900", "--purchase-limit", "250.50",
                 "--alert-threshold", "100", "--subscribe", "--phone", "13811112222",
                 "--alerts", "purchase")
    assert result.exit_code == 0, result.output
    listed = json.loads(run("--db", db_path, "ledger", "--json").output)[-1]
    assert (listed["purchase_limit"], listed["alert_threshold"]) == (25050, 10000)
    from posbridge.issuer import Issuer, Ledger
    issuer = Issuer(Ledger.open(db_path), clock=lambda: ISSUER_NOW)
    terminal = Terminal()
    try:
        answers = []
        for amount in (25051, 9999, 25050):
            body, pending = terminal.purchase("4111111111111111", amount, pin="8520")
            answers.append(terminal.check(issuer.handle(PURCHASE_REQUEST, body), pending))
    finally:
        issuer.close()
    assert [a[3] for a in answers] == ["61", "00", "00"]
    assert answers[1][8] == {1: 5, 4: "100.00"}
    assert answers[2][8] == {1: 2, 2: "sms", 3: "138****2222"}


def _purchases_and_reversals(issuer, terminal):
    """Trace 1 charged; 2 charged then reversed by 3; 5 reversed by 4 before it came;
    6 declined 51."""
    bodies = {}
    for pan, amount in ((LI_WEI, 1250), (LI_WEI, 3000)):
        body, pending = terminal.purchase(pan, amount)
        issuer.handle(PURCHASE_REQUEST, body)
        bodies[pending.trace] = pending
    issuer.handle(REVERSAL_REQUEST, terminal.reversal(bodies[2], reason=1)[0])
    late_body, late = terminal.purchase(LI_WEI, 700, trace=5)   # the next trace stays 4
    issuer.handle(REVERSAL_REQUEST, terminal.reversal(late, reason=3)[0])     # trace 4
    issuer.handle(PURCHASE_REQUEST, late_body)
    terminal.trace = 5
    body, _ = terminal.purchase(ZHANG_MIN, 99999)
    issuer.handle(PURCHASE_REQUEST, body)


def test_journal_json_says_what_was_charged_and_what_reversed(db_path, issuer, terminal):
    _purchases_and_reversals(issuer, terminal)
    result = run("--db", db_path, "journal", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["trace_number"]: r for r in json.loads(result.output)}
    summary = {t: (r["kind"], r["response_code"], r["amount"], r["charged"], r["reversed"],
                   r["posted"]) for t, r in rows.items()}
    assert summary == {
        1: ("purchase", "00", 1250, 1250, False, -1250),
        2: ("purchase", "00", 3000, 0, True, -3000),
        3: ("reversal", "00", 3000, 0, False, 3000),
        4: ("reversal", "00", 700, 0, False, 0),
        5: ("purchase", "94", 700, 0, False, 0),
        6: ("purchase", "51", 99999, 0, False, 0),
    }
    assert (rows[3]["original_trace"], rows[3]["reversal_outcome"], rows[3]["reversal_reason"]) \
        == (2, 1, 1)
    assert (rows[4]["original_trace"], rows[4]["reversal_outcome"], rows[4]["reversal_reason"]) \
        == (5, 2, 3)
    assert rows[2]["reversed_by"] == rows[3]["id"] and rows[5]["reversed_by"] == rows[4]["id"]
    assert rows[1]["card"] == "476173******0011" and rows[4]["card"] is None
    assert rows[1]["merchant_name"] == "DEMO SHOP" and len(rows[1]["approval_code"]) == 6
    assert "response" not in rows[1] and "request_digest" not in rows[1]
    assert_no_secrets(result.output)


def test_journal_text(db_path, issuer, terminal):
    _purchases_and_reversals(issuer, terminal)
    result = run("--db", db_path, "journal")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 6
    assert "T0000001/1 " in lines[0] and "CNY 12.50" in lines[0] and lines[0].endswith("charged")
    assert lines[1].endswith(f"reversed by #{3}")
    assert lines[2].endswith("of T0000001/2: reversed")
    assert "of T0000001/5: nothing charged" in lines[3]
    assert " 94 " in lines[4] and lines[4].endswith("closed by reversal #4")
    assert " 51 " in lines[5]
    assert_no_secrets(result.output)


def test_empty_journal(tmp_path):
    from posbridge.issuer import Ledger
    db = tmp_path / "empty.sqlite"
    Ledger.create(db).close()
    assert run("--db", db, "journal").output.strip() == "journal is empty"
    assert json.loads(run("--db", db, "journal", "--json").output) == []


def test_ledger_shows_each_cards_postings(db_path, issuer, terminal):
    _purchases_and_reversals(issuer, terminal)
    cards = json.loads(run("--db", db_path, "ledger", "--json").output)
    [li] = [c for c in cards if c["card"] == "476173******0011"]
    assert [(p["kind"], p["trace"], p["amount"], p["available_after"]) for p in li["postings"]] \
        == [("purchase", 1, -1250, 1233317), ("purchase", 2, -3000, 1230317),
            ("reversal", 3, 3000, 1233317)]
    assert li["available"] == 1233317 and li["purchase_limit"] == 500000
    assert all(c["postings"] == [] for c in cards if c is not li)
    text = run("--db", db_path, "ledger").output
    assert "#3     reversal  T0000001/3" in text and "CNY 30.00 -> CNY 12,333.17" in text
    assert_no_secrets(text)
