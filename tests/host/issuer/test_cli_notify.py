"""`posbridge issuer alerts|account|remind|dispatch|policy` through click's CliRunner:
what a person sees, one-line errors with a non-zero exit, never a full PAN or a PIN."""
import json

import pytest

from posbridge.issuer import Issuer, Ledger, codes

from .conftest import ISSUER_NOW
from .request_builder import TerminalRequestBuilder as Terminal
from .test_balance_inquiry import LI_WEI, UNKNOWN, ZHANG_MIN, ask
from .test_cli import assert_clean_failure, assert_no_secrets, run

WANG_FANG = "4761730000000037"


@pytest.fixture(autouse=True)
def fixed_time(mocker):
    mocker.patch("posbridge.issuer.cli.common.now", return_value=ISSUER_NOW)


def holder_of(db_path, pan):
    ledger = Ledger.open(db_path)
    try:
        return ledger.card_on_file(pan).holder
    finally:
        ledger.close()


def outbox(db_path):
    return json.loads(run("--db", db_path, "outbox", "--json").output)


# ---- alerts -----------------------------------------------------------------------------

def test_alerts_show(db_path):
    result = run("--db", db_path, "alerts", "show", "--pan", WANG_FANG)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "card 476173******0037  Wang Fang"
    assert "  language      zh" in lines and "  quiet hours   22:00-07:00" in lines
    assert "  threshold     CNY 100.00" in lines                  # her own
    assert any(line.split() == ["purchase", "yes", "yes", "app"] for line in lines)
    assert any(line.split() == ["pin_tries_exceeded", "always", "always", "app"] for line in lines)
    assert "137****1111" in result.output
    assert_no_secrets(result.output)


def test_alerts_show_json(db_path):
    data = json.loads(run("--db", db_path, "alerts", "show", "--pan", "6225880000000076",
                          "--json").output)
    assert (data["card"], data["threshold"], data["effective_threshold"], data["phone"]) == \
        ("622588******0076", 50000, 50000, "134****4444")
    assert data["kinds"]["purchase"] == {"chosen": True, "bank_alerts": True, "channel": "sms"}
    assert data["kinds"]["balance_inquiry"]["chosen"] is False


def test_alerts_set_then_a_terminal_sees_it(db_path):
    result = run("--db", db_path, "alerts", "set", "--pan", LI_WEI, "--threshold", "100",
                 "--quiet", "22:00-07:00", "--channel-for", "balance_inquiry=app",
                 "--language", "zh", "--remove", "wrong_pin", "--large-limit", "5000.00")
    assert result.exit_code == 0, result.output
    holder = holder_of(db_path, LI_WEI)
    assert (holder.threshold, str(holder.quiet_hours), holder.language,
            holder.large_amount_limit) == (10000, "22:00-07:00", "zh", 500000)
    assert holder.channels == {"balance_inquiry": "app"}
    assert "wrong_pin" not in holder.kinds and "purchase" in holder.kinds
    assert "  threshold     CNY 100.00" in result.output.splitlines()
    issuer = Issuer(Ledger.open(db_path), clock=lambda: ISSUER_NOW)
    try:
        note = ask(issuer, Terminal(), LI_WEI)[8]
        [row] = issuer.ledger.outbox()
    finally:
        issuer.close()
    assert note == {1: codes.SENT, 2: "app", 3: "138****5678"}
    assert row["language"] == "zh" and row["text"].startswith("您尾号0011")


def test_alerts_set_back_to_the_defaults(db_path):
    run("--db", db_path, "alerts", "set", "--pan", LI_WEI, "--threshold", "100",
        "--channel-for", "purchase=app", "--language", "zh", "--quiet", "01:00-02:00")
    result = run("--db", db_path, "alerts", "set", "--pan", LI_WEI, "--threshold", "default",
                 "--channel-for", "purchase=default", "--language", "default", "--quiet", "none",
                 "--kinds", "purchase,wrong_pin", "--add", "account_change", "--channel", "app")
    assert result.exit_code == 0, result.output
    holder = holder_of(db_path, LI_WEI)
    assert (holder.threshold, holder.channels, holder.language, holder.quiet_hours,
            holder.channel) == (None, {}, None, None, "app")
    assert holder.kinds == {"purchase", "wrong_pin", "account_change"}


def test_subscribe_and_unsubscribe(db_path):
    result = run("--db", db_path, "alerts", "subscribe", "--pan", ZHANG_MIN, "--kinds",
                 "purchase,balance_inquiry", "--channel", "app")
    assert result.exit_code == 0, result.output
    holder = holder_of(db_path, ZHANG_MIN)
    assert holder.subscribed and holder.channel == "app"
    assert holder.kinds == {"purchase", "balance_inquiry"}
    assert run("--db", db_path, "alerts", "unsubscribe", "--pan", ZHANG_MIN).exit_code == 0
    assert not holder_of(db_path, ZHANG_MIN).subscribed


def test_subscribe_without_a_phone_says_so(db_path):
    result = run("--db", db_path, "alerts", "subscribe", "--pan", "4761730000000045")
    assert result.exit_code == 0
    assert "note: no phone on file, so no alert can be sent (status 7)" in result.output
    result = run("--db", db_path, "alerts", "subscribe", "--pan", "4761730000000045",
                 "--phone", "13911112222")
    assert "139****2222" in result.output and "note:" not in result.output
    assert "13911112222" not in result.output


@pytest.mark.parametrize("args,message", [
    (["alerts", "show", "--pan", UNKNOWN], "card 476173******0094 is not on file"),
    (["alerts", "show", "--pan", "4761730000000012"], "PAN 476173******0012: Luhn check digit"),
    (["alerts", "show", "--pan", "12ab"], "PAN: 12 to 19 digits expected"),
    (["alerts", "set", "--pan", UNKNOWN, "--threshold", "5"], "card 476173******0094 is not on file"),
    (["alerts", "unsubscribe", "--pan", UNKNOWN], "is not on file"),
    (["alerts", "set", "--pan", LI_WEI], "nothing to change"),
    (["alerts", "set", "--pan", LI_WEI, "--threshold", "1.001"], "threshold: amount '1.001'"),
    (["alerts", "set", "--pan", LI_WEI, "--threshold", "-5"], "threshold: must not be negative"),
    (["alerts", "set", "--pan", LI_WEI, "--large-limit", "x"], "large-amount limit: amount 'x'"),
    (["alerts", "set", "--pan", LI_WEI, "--quiet", "22:00"], "HH:MM-HH:MM expected"),
    (["alerts", "set", "--pan", LI_WEI, "--quiet", "25:00-07:00"], "hours 00..23"),
    (["alerts", "set", "--pan", LI_WEI, "--channel-for", "purchase=fax"], "channel 'fax' for purchase"),
    (["alerts", "set", "--pan", LI_WEI, "--channel-for", "gossip=app"], "alert kind 'gossip'"),
    (["alerts", "set", "--pan", LI_WEI, "--channel", "fax"], "channel 'fax'"),
    (["alerts", "set", "--pan", LI_WEI, "--language", "fr"], "language 'fr'"),
    (["alerts", "set", "--pan", LI_WEI, "--kinds", "purchase,gossip"], "alert kind 'gossip'"),
    (["alerts", "set", "--pan", LI_WEI, "--add", "pin_tries_exceeded"],
     "alert kind 'pin_tries_exceeded'"),
    (["alerts", "set", "--pan", LI_WEI, "--phone", "12ab"], "7 to 15 digits"),
    (["alerts", "subscribe", "--pan", LI_WEI, "--phone", "1"], "7 to 15 digits"),
    (["alerts", "show"], "Missing option '--pan'"),
])
def test_alerts_errors(db_path, args, message):
    before = holder_of(db_path, LI_WEI)
    result = run("--db", db_path, *args)
    assert_clean_failure(result, message)
    assert len(result.output.strip().splitlines()) <= 4      # usage lines at most
    assert holder_of(db_path, LI_WEI) == before


def test_alerts_commands_need_a_database(tmp_path):
    assert_clean_failure(run("--db", tmp_path / "none.sqlite", "alerts", "show", "--pan", LI_WEI),
                         "run posbridge issuer init")


# ---- account events and reminders ---------------------------------------------------------

def test_freeze_unfreeze_and_limits(db_path):
    result = run("--db", db_path, "account", "freeze", "--pan", LI_WEI)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("card 476173******0011: active -> frozen; "
                                     "alert: sent (sms 138****5678)")
    result = run("--db", db_path, "account", "freeze", "--pan", LI_WEI)
    assert_clean_failure(result, "card 476173******0011 is already frozen")
    result = run("--db", db_path, "account", "unfreeze", "--pan", LI_WEI)
    assert "frozen -> active; alert: sent" in result.output
    result = run("--db", db_path, "account", "set-limit", "--pan", LI_WEI, "--limit", "25000")
    assert result.output.strip() == ("card 476173******0011: credit limit CNY 20,000.00 -> "
                                     "CNY 25,000.00; alert: sent (sms 138****5678)")
    result = run("--db", db_path, "account", "freeze", "--pan", ZHANG_MIN, "--stop-payment")
    assert result.output.strip() == ("card 476173******0029: active -> stopped (stop-payment); "
                                     "alert: not subscribed (3)")
    kinds = [(r["kind"], r["status"]) for r in outbox(db_path)]
    assert kinds == [("account_change", "sent")] * 3


def test_a_frozen_card_at_the_terminal_after_the_cli(db_path):
    run("--db", db_path, "account", "freeze", "--pan", WANG_FANG)
    issuer = Issuer(Ledger.open(db_path), clock=lambda: ISSUER_NOW)
    try:
        fields = ask(issuer, Terminal(), WANG_FANG)
    finally:
        issuer.close()
    assert fields[3] == "62" and fields[8] == {1: 11, 2: "app", 3: "137****1111"}


@pytest.mark.parametrize("args,message", [
    (["account", "freeze", "--pan", UNKNOWN], "is not on file"),
    (["account", "freeze", "--pan", "4761730000000012"], "Luhn check digit is wrong"),
    (["account", "unfreeze", "--pan", LI_WEI], "card 476173******0011 is not frozen"),
    (["account", "set-limit", "--pan", LI_WEI, "--limit", "lots"], "a decimal number expected"),
    (["account", "set-limit", "--pan", LI_WEI, "--limit", "-1"], "must not be negative"),
    (["account", "set-limit", "--pan", LI_WEI, "--limit", "20000"], "is already CNY 20,000.00"),
    (["account", "statement", "--pan", LI_WEI, "--amount", "10", "--minimum", "20",
      "--due", "2026-12-10"], "minimum payment is more than"),
    (["account", "statement", "--pan", LI_WEI, "--amount", "10", "--minimum", "1",
      "--due", "10/12/2026"], "date '10/12/2026': YYYY-MM-DD expected"),
    (["remind", "--due", "tomorrow"], "date 'tomorrow': YYYY-MM-DD expected"),
    (["remind"], "Missing option '--due'"),
])
def test_account_errors(db_path, args, message):
    assert_clean_failure(run("--db", db_path, *args), message)
    assert outbox(db_path) == []


def test_statement_and_remind(db_path):
    result = run("--db", db_path, "account", "statement", "--pan", "6225880000000076",
                 "--amount", "800", "--minimum", "80", "--due", "2026-12-10")
    assert result.output.strip() == ("card 622588******0076: statement CNY 800.00, "
                                     "minimum CNY 80.00, due 2026-12-10")
    result = run("--db", db_path, "remind", "--due", "2026-12-10")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [
        "card 476173******0011: statement CNY 2,345.00, minimum CNY 234.50, due 2026-12-10; "
        "alert: sent (sms 138****5678)",
        "card 476173******0037: statement CNY 1,000.00, minimum CNY 100.00, due 2026-12-10; "
        "alert: sent (app 137****1111)",
        "card 622588******0076: statement CNY 800.00, minimum CNY 80.00, due 2026-12-10; "
        "alert: kind not chosen (4)",
        "3 repayment reminder(s) for 2026-12-10",
    ]
    assert run("--db", db_path, "remind", "--due", "2026-12-10").output.strip() == \
        "0 repayment reminder(s) for 2026-12-10"
    assert [r["kind"] for r in outbox(db_path)] == ["repayment_reminder"] * 2


def test_remind_under_a_queueing_policy_then_dispatch(db_path, tmp_path):
    policy = tmp_path / "bank.toml"
    policy.write_text('delivery = "queue"\n')
    result = run("--db", db_path, "--policy", policy, "remind", "--due", "2026-12-10")
    assert "alert: queued (sms 138****5678)" in result.output
    assert [r["status"] for r in outbox(db_path)] == ["queued", "queued"]
    result = run("--db", db_path, "dispatch")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == \
        "dispatch: 2 sent, 0 failed, 0 held; 0 waiting in the outbox"
    assert [r["status"] for r in outbox(db_path)] == ["sent", "sent"]


# ---- outbox, dispatch, policy ---------------------------------------------------------------

def test_outbox_shows_failures_and_held_alerts(db_path):
    issuer = Issuer(Ledger.open(db_path), clock=lambda: ISSUER_NOW + 7 * 3600)   # 23:02
    try:
        ask(issuer, Terminal(now=ISSUER_NOW + 7 * 3600), WANG_FANG)
    finally:
        issuer.close()
    text = run("--db", db_path, "outbox").output
    assert "held " in text and "[zh]" in text and "held for quiet hours until" in text
    row = outbox(db_path)[0]
    assert {"message_id", "language", "attempts", "reason", "next_attempt_at"} <= set(row)


def test_dispatch_with_nothing_to_send(db_path):
    assert run("--db", db_path, "dispatch").output.strip() == \
        "dispatch: 0 sent, 0 failed, 0 held; 0 waiting in the outbox"


def test_policy_show_and_check(db_path, tmp_path):
    result = run("--db", db_path, "policy", "show")
    assert result.exit_code == 0
    assert "policy: built-in defaults" in result.output
    assert "threshold     CNY 0.00" in result.output
    bank = tmp_path / "bank.toml"
    bank.write_text('[alerts]\nbalance_inquiry = false\n[amounts]\ndefault_threshold = "100"\n')
    result = run("policy", "check", bank)
    assert result.exit_code == 0, result.output
    assert f"policy: {bank}" in result.output
    assert "not alerted   balance_inquiry" in result.output
    assert "threshold     CNY 100.00" in result.output
    result = run("--policy", bank, "policy", "show")
    assert "not alerted   balance_inquiry" in result.output


def test_policy_from_the_environment(db_path, tmp_path):
    bank = tmp_path / "bank.toml"
    bank.write_text('delivery = "queue"\n')
    result = run("--db", db_path, "policy", "show", env={"POSBRIDGE_ISSUER_POLICY": str(bank)})
    assert "delivery      queue" in result.output


@pytest.mark.parametrize("text,message", [
    ("[alerts\n", "not valid TOML"),
    ("[amounts]\ndefault_threshold = 'x'\n", "amounts.default_threshold: amount 'x'"),
    ("[templates.en]\npurchase = 'Card {pan}'\n", "field {pan} is not one of"),
])
def test_bad_policy_file_is_a_clean_error(db_path, tmp_path, text, message):
    bank = tmp_path / "bank.toml"
    bank.write_text(text)
    for args in (["--policy", bank, "remind", "--due", "2026-12-10"], ["policy", "check", bank]):
        assert_clean_failure(run("--db", db_path, *args), f"policy {bank}: ", message)


def test_missing_policy_file_is_a_clean_error(db_path, tmp_path):
    assert_clean_failure(run("--db", db_path, "--policy", tmp_path / "no.toml", "policy", "show"),
                         "cannot read it")


def test_the_bridge_reports_a_bad_policy_in_one_line(db_path, tmp_path, monkeypatch):
    import click

    from posbridge.cli import _open_issuer
    bank = tmp_path / "bank.toml"
    bank.write_text("delivery = 'later'\n")
    monkeypatch.setenv("POSBRIDGE_ISSUER_POLICY", str(bank))
    with pytest.raises(click.ClickException, match='delivery: "send" or "queue" expected'):
        _open_issuer(db_path)
    monkeypatch.setenv("POSBRIDGE_ISSUER_POLICY", "queue")
    issuer = _open_issuer(db_path)
    assert not issuer.policy.send_immediately
    issuer.close()
