"""The bank's policy file: the shipped defaults, a bank's file laid over them, every
error naming the key, the older spec words, and the message templates in both
languages."""
import re
from importlib import resources

import pytest

from posbridge.issuer import Policy, codes, notify
from posbridge.issuer.policy import PolicyError
from posbridge.issuer.templates import (TEMPLATE_FIELDS, TemplateError, check_template,
                                        default_templates)

DEFAULT_FILE = resources.files("posbridge.issuer").joinpath("default_policy.toml")


def write(tmp_path, text, name="bank.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_is_the_default_policy():
    policy = Policy.load(DEFAULT_FILE)
    assert policy == Policy()
    assert policy.kinds == frozenset(codes.POLICY_KINDS)
    assert "reversal" in policy.kinds and "reversal" not in codes.ALERT_KINDS
    assert (policy.default_threshold, policy.large_amount_limit, policy.currency) == \
        (0, 5_000_000, 156)
    assert policy.send_immediately and policy.language == "en" and policy.utc_offset_min == 480
    assert set(policy.templates) == {"en", "zh"}
    for texts in policy.templates.values():
        assert set(texts) == set(TEMPLATE_FIELDS)


def test_a_bank_file_changes_only_what_it_names(tmp_path):
    path = write(tmp_path, """
        currency = "156"
        language = "zh"
        delivery = "queue"
        [alerts]
        balance_inquiry = false
        [amounts]
        default_threshold = "100.00"
        large_amount_limit = "20,000"
        [retry]
        first_delay_s = 30
        [templates.en]
        purchase = "Card *{last4}: {amount} at {merchant}."
    """)
    policy = Policy.load(path)
    assert not policy.alert_balance_inquiries and policy.alert_wrong_pin
    assert policy.kinds == frozenset(codes.POLICY_KINDS) - {"balance_inquiry"}
    assert (policy.default_threshold, policy.large_amount_limit) == (10000, 2000000)
    assert not policy.send_immediately and policy.language == "zh"
    assert (policy.retry_first_s, policy.retry_max_s) == (30, 3600)
    assert policy.templates["en"]["purchase"] == "Card *{last4}: {amount} at {merchant}."
    assert policy.templates["en"]["wrong_pin"] == default_templates()["en"]["wrong_pin"]
    assert policy.source == str(path)


@pytest.mark.parametrize("text,message", [
    ("this is = = not toml", "not valid TOML"),
    ("colour = 'red'", "unknown key 'colour'"),
    ("[alerts]\ngossip = true", "unknown key 'alerts.gossip'"),
    ("[alerts]\npin_tries_exceeded = false", "alerts.pin_tries_exceeded: security alerts always go out"),
    ("[alerts]\npurchase = 'yes'", "alerts.purchase: true or false expected"),
    ("alerts = 3", "alerts must be a table"),
    ("currency = 'XYZ'", "currency: currency 'XYZ'"),
    ("utc_offset_min = 900", "utc_offset_min: -840..840"),
    ("utc_offset_min = '480'", "utc_offset_min: minutes expected"),
    ("language = 'fr'", "language: one of en, zh expected"),
    ("delivery = 'shout'", 'delivery: "send" or "queue" expected'),
    ("[amounts]\ndefault_threshold = 100", "amounts.default_threshold: a quoted amount"),
    ("[amounts]\ndefault_threshold = '1.005'", "at most 2 decimals in CNY"),
    ("[amounts]\nlarge_amount_limit = '-5'", "amounts.large_amount_limit: must not be negative"),
    ("[amounts]\nlarge_amount_limit = 'lots'", "a decimal number expected"),
    ("[retry]\nfirst_delay_s = 0", "retry: 1 <= first_delay_s <= max_delay_s"),
    ("[retry]\nfirst_delay_s = 7200", "retry: 1 <= first_delay_s <= max_delay_s"),
    ("[templates.en]\npurchase = 'Card {pan}'", "field {pan} is not one of"),
    ("[templates.en]\npurchase = 'Card {last4.real}'", "field {last4.real} is not one of"),
    ("[templates.en]\npurchase = 'Card {last4:>10}'", "{last4} takes no format spec"),
    ("[templates.en]\npurchase = 'Card {last4!r}'", "{last4} takes no format spec"),
    ("[templates.en]\npurchase = 'Card {last4'", "template purchase:"),
    ("[templates.en]\npurchase = ''", "a non-empty string expected"),
    ("[templates.en]\nthank_you = 'hi'", "unknown key 'templates.en.thank_you'"),
    ("[templates.en]\npurchase = 'Reply with your OTP for {amount}'",
     "alerts never ask for a one-time code"),
    ("[templates.zh]\npurchase = '请回复验证码确认{amount}'", "alerts never ask for a one-time code"),
    ("[templates.en]\npurchase = 'Enter the verification code sent for {amount}'",
     "never ask for a one-time code"),
    ("[templates.fr]\npurchase = 'Carte {last4}'", "templates.fr: language one of en, zh"),
    ("[templates]\nen = 'x'", "templates.en must be a table"),
])
def test_bad_policy_file_names_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    assert str(info.value).startswith(f"policy {path}: ")
    assert message in str(info.value)


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match=r"policy .*nope.toml: cannot read it"):
        Policy.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("spec,kinds_off,queue,offset", [
    ("", (), False, 480),
    ("no-balance-alerts", ("balance_inquiry",), False, 480),
    ("no-balance-alerts, queue", ("balance_inquiry",), True, 480),
    ("no-wrong-pin-alerts,send,utc-offset=-300", ("wrong_pin",), False, -300),
    ("no-balance-alerts,balance-alerts,wrong-pin-alerts", (), False, 480),
    ("no-purchase-alerts", ("purchase",), False, 480),
    ("no-purchase-alerts,purchase-alerts,queue", (), True, 480),
])
def test_the_older_spec_words_still_work(spec, kinds_off, queue, offset):
    policy = Policy.from_setting(spec) if spec else Policy.from_spec(spec)
    assert policy == Policy(send_immediately=not queue, utc_offset_min=offset).without(*kinds_off)
    assert policy.alert_purchases == ("purchase" not in kinds_off)


@pytest.mark.parametrize("bad", ["loud", "utc-offset=900", "utc-offset=x", "queue,nope"])
def test_bad_spec_word(bad):
    with pytest.raises(PolicyError, match="issuer policy .*expected a .toml file"):
        Policy.from_spec(bad)


def test_the_environment_names_a_file_or_words(tmp_path):
    path = write(tmp_path, "delivery = 'queue'\n", name="Bank.TOML")
    assert Policy.from_env({"POSBRIDGE_ISSUER_POLICY": str(path)}) == \
        Policy(send_immediately=False)
    assert Policy.from_env({"POSBRIDGE_ISSUER_POLICY": "queue"}) == Policy(send_immediately=False)
    assert Policy.from_env({"POSBRIDGE_ISSUER_POLICY": ""}) == Policy()
    assert Policy.from_env({}) == Policy()
    with pytest.raises(PolicyError, match="cannot read it"):
        Policy.from_env({"POSBRIDGE_ISSUER_POLICY": str(tmp_path / "gone.toml")})


def test_retry_delays_double_up_to_the_cap():
    policy = Policy(retry_first_s=60, retry_max_s=600)
    assert [policy.retry_delay(n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


# ---- templates ---------------------------------------------------------------------------

FIELDS = dict(last4="0011", when="2026-11-22 16:02", terminal_id="T0000001")
TEXTS = {
    "purchase": lambda lang: notify.purchase_text(
        lang, amount=12345, currency=156, merchant="Demo Shop", available=1222222, **FIELDS),
    "large_amount": lambda lang: notify.large_amount_text(
        lang, amount=6000000, currency=156, merchant="Demo Shop", available=1222222,
        limit=5000000, **FIELDS),
    "balance_inquiry": lambda lang: notify.balance_inquiry_text(
        lang, available=1234567, ledger=1234567, currency=156, **FIELDS),
    "wrong_pin": lambda lang: notify.wrong_pin_text(lang, tries_left=2, **FIELDS),
    "pin_tries_exceeded": lambda lang: notify.pin_tries_exceeded_text(lang, **FIELDS),
    "frozen_card": lambda lang: notify.frozen_card_text(lang, **FIELDS),
    "limit_raised": lambda lang: notify.account_change_text(
        lang, change="limit_raised", last4="0011", when=FIELDS["when"], currency=156,
        old_limit=1000000, new_limit=2000000),
    "card_frozen": lambda lang: notify.account_change_text(
        lang, change="card_frozen", last4="0011", when=FIELDS["when"]),
    "repayment_reminder": lambda lang: notify.repayment_reminder_text(
        lang, last4="0011", statement_amount=234500, minimum_payment=23450, currency=156,
        due_date="2026-12-10"),
}
EXPECTED_EN = {
    "purchase": "Card ending 0011: purchase of CNY 123.45 at Demo Shop (T0000001), "
                "2026-11-22 16:02. Available CNY 12,222.22.",
    "large_amount": "Large amount alert: card ending 0011: purchase of CNY 60,000.00 at Demo "
                    "Shop (T0000001), 2026-11-22 16:02, above your limit of CNY 50,000.00. "
                    "Available CNY 12,222.22.",
    "wrong_pin": "Card ending 0011: wrong PIN entered at terminal T0000001, 2026-11-22 16:02. "
                 "Tries left before the PIN is locked: 2.",
    "limit_raised": "Card ending 0011: your credit limit was raised from CNY 10,000.00 to "
                    "CNY 20,000.00, 2026-11-22 16:02.",
    "repayment_reminder": "Card ending 0011: statement balance CNY 2,345.00, minimum payment "
                          "CNY 234.50, due 2026-12-10.",
}
EXPECTED_ZH = {
    "purchase": "您尾号0011的卡于2026-11-22 16:02在Demo Shop（终端T0000001）消费CNY 123.45，"
                "可用余额CNY 12,222.22。",
    "repayment_reminder": "您尾号0011的卡本期账单金额CNY 2,345.00，最低还款额CNY 234.50，"
                          "到期还款日2026-12-10。",
}


@pytest.mark.parametrize("name", TEXTS)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_kind_has_a_text_in_both_languages(name, lang):
    text = TEXTS[name](lang)
    assert "0011" in text and "{" not in text
    assert bool(re.search(r"[\u4e00-\u9fff]", text)) == (lang == "zh")
    assert "4761730000000011" not in text
    expected = (EXPECTED_ZH if lang == "zh" else EXPECTED_EN).get(name)
    if expected:
        assert text == expected


def test_an_unknown_language_falls_back_to_the_banks():
    assert TEXTS["purchase"]("fr") == EXPECTED_EN["purchase"]
    zh_bank = Policy(language="zh")
    assert notify.wrong_pin_text("fr", tries_left=1, policy=zh_bank, **FIELDS).startswith("您尾号")


def test_a_banks_own_template_is_used(tmp_path):
    policy = Policy.load(write(tmp_path, "[templates.en]\n"
                                         "wrong_pin = 'PIN wrong on *{last4}, {tries_left} left'\n"))
    assert notify.wrong_pin_text("en", tries_left=1, policy=policy, **FIELDS) == \
        "PIN wrong on *0011, 1 left"


def test_account_change_names_its_change():
    with pytest.raises(ValueError, match="account change 'renamed'"):
        notify.account_change_text("en", change="renamed", last4="0011", when="x")


def test_no_template_field_is_a_pan_or_a_pin():
    for fields in TEMPLATE_FIELDS.values():
        assert not fields & {"pan", "pin", "card", "phone", "otp", "code"}


def test_check_template_accepts_the_defaults():
    for texts in default_templates().values():
        for name, text in texts.items():
            assert check_template(name, text) == text
    with pytest.raises(TemplateError, match="template 'poem'"):
        check_template("poem", "roses")
