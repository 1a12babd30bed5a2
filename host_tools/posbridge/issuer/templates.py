"""Alert message texts: the bank's templates (policy file, `[templates.LANG]`) filled in.

A template is a str.format string with named fields only; each template has a fixed set
of fields it may use, and none of them is a full PAN or a PIN: the card appears as its
last 4 digits. Templates are checked when the policy is loaded (check_template): an
unknown field, an attribute or index lookup, a format spec, or wording that asks for a
one-time code is refused. Amounts arrive formatted with their currency, times in the
policy's local time.

The *_text functions, one per alert kind, take the language first ("en", "zh"); a
language the policy has no templates for falls back to the policy's own language.
"""
import functools
import re
import string
import tomllib
from importlib import resources

from .money import format_amount

LANGUAGES = ("en", "zh")

# template name -> the fields it may use
TEMPLATE_FIELDS = {
    "purchase": {"last4", "amount", "merchant", "time", "available", "terminal"},
    "large_amount": {"last4", "amount", "merchant", "time", "available", "terminal", "limit"},
    # a purchase cancelled and credited back: its amount, merchant and terminal, the time
    # of the reversal and the balance after the credit
    "reversal": {"last4", "amount", "merchant", "time", "available", "terminal"},
    "balance_inquiry": {"last4", "time", "terminal", "available", "ledger"},
    "wrong_pin": {"last4", "time", "terminal", "tries_left"},
    "pin_tries_exceeded": {"last4", "time", "terminal"},
    "frozen_card": {"last4", "time", "terminal"},
    "cryptogram_failure": {"last4", "time", "terminal"},
    "limit_raised": {"last4", "time", "old_limit", "new_limit"},
    "limit_lowered": {"last4", "time", "old_limit", "new_limit"},
    "card_frozen": {"last4", "time"},
    "stop_payment": {"last4", "time"},
    "card_unfrozen": {"last4", "time"},
    "repayment_reminder": {"last4", "statement_amount", "minimum_payment", "due_date"},
}
ACCOUNT_CHANGES = ("limit_raised", "limit_lowered", "card_frozen", "stop_payment",
                   "card_unfrozen")

# a bank never asks for a code by SMS: phishing texts do (checked case-insensitively)
_CODE_REQUEST = re.compile(r"验证码|动态码|动态密码|校验码|\botp\b|one[- ]time|"
                           r"verification code|security code|passcode", re.IGNORECASE)


class TemplateError(ValueError):
    """A template the issuer will not use; the message names the template."""


def check_template(name: str, text: str) -> str:
    """`text` if it is a usable template for `name`, else TemplateError."""
    if name not in TEMPLATE_FIELDS:
        raise TemplateError(f"template {name!r} is not one of {', '.join(TEMPLATE_FIELDS)}")
    if not isinstance(text, str) or not text.strip():
        raise TemplateError(f"template {name}: a non-empty string expected")
    allowed = TEMPLATE_FIELDS[name]
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"template {name}: {exc}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in allowed:
            raise TemplateError(f"template {name}: field {{{field}}} is not one of "
                                f"{', '.join(sorted(allowed))}")
        if spec or conversion:
            raise TemplateError(f"template {name}: {{{field}}} takes no format spec")
    if _CODE_REQUEST.search(text):
        raise TemplateError(f"template {name}: alerts never ask for a one-time code")
    return text


def default_templates() -> dict:
    """The templates of the shipped default policy (default_policy.toml), a copy the
    caller may keep."""
    return {lang: dict(texts) for lang, texts in _shipped_templates().items()}


@functools.cache
def _shipped_templates() -> dict:
    data = tomllib.loads(resources.files(__package__).joinpath("default_policy.toml")
                         .read_text(encoding="utf-8"))
    return data["templates"]


def render(policy, name: str, lang: "str | None", **fields) -> str:
    """Template `name` of `policy` (None: the defaults) in `lang`, filled in."""
    templates = policy.templates if policy is not None else default_templates()
    fallback = policy.language if policy is not None else "en"
    texts = templates.get(lang) or templates[fallback]
    return texts[name].format_map(fields)


def language_of(policy, lang: "str | None") -> str:
    """The language a message in `lang` is really written in under `policy`."""
    templates = policy.templates if policy is not None else default_templates()
    if lang in templates:
        return lang
    return policy.language if policy is not None else "en"


# ---- one function per alert kind -------------------------------------------------------

def purchase_text(lang, *, last4, amount, currency, merchant, when, available,
                  terminal_id, policy=None) -> str:
    return render(policy, "purchase", lang, last4=last4, amount=format_amount(amount, currency),
                  merchant=merchant, time=when, available=format_amount(available, currency),
                  terminal=terminal_id)


def large_amount_text(lang, *, last4, amount, currency, merchant, when, available,
                      terminal_id, limit, policy=None) -> str:
    return render(policy, "large_amount", lang, last4=last4,
                  amount=format_amount(amount, currency), merchant=merchant, time=when,
                  available=format_amount(available, currency), terminal=terminal_id,
                  limit=format_amount(limit, currency))


def reversal_text(lang, *, last4, amount, currency, merchant, when, available,
                  terminal_id, policy=None) -> str:
    return render(policy, "reversal", lang, last4=last4, amount=format_amount(amount, currency),
                  merchant=merchant, time=when, available=format_amount(available, currency),
                  terminal=terminal_id)


def balance_inquiry_text(lang, *, last4, available, ledger, currency, when, terminal_id,
                         policy=None) -> str:
    return render(policy, "balance_inquiry", lang, last4=last4, time=when,
                  terminal=terminal_id, available=format_amount(available, currency),
                  ledger=format_amount(ledger, currency))


def wrong_pin_text(lang, *, last4, tries_left, when, terminal_id, policy=None) -> str:
    return render(policy, "wrong_pin", lang, last4=last4, time=when, terminal=terminal_id,
                  tries_left=tries_left)


def pin_tries_exceeded_text(lang, *, last4, when, terminal_id, policy=None) -> str:
    return render(policy, "pin_tries_exceeded", lang, last4=last4, time=when,
                  terminal=terminal_id)


def frozen_card_text(lang, *, last4, when, terminal_id, policy=None) -> str:
    return render(policy, "frozen_card", lang, last4=last4, time=when, terminal=terminal_id)


def cryptogram_failure_text(lang, *, last4, when, terminal_id, policy=None) -> str:
    return render(policy, "cryptogram_failure", lang, last4=last4, time=when,
                  terminal=terminal_id)


def account_change_text(lang, *, change, last4, when, currency=None, old_limit=None,
                        new_limit=None, policy=None) -> str:
    """`change`: one of ACCOUNT_CHANGES; the limits (minor units) for limit changes."""
    if change not in ACCOUNT_CHANGES:
        raise ValueError(f"account change {change!r}: one of {', '.join(ACCOUNT_CHANGES)}")
    fields = {"last4": last4, "time": when}
    if change in ("limit_raised", "limit_lowered"):
        fields.update(old_limit=format_amount(old_limit, currency),
                      new_limit=format_amount(new_limit, currency))
    return render(policy, change, lang, **fields)


def repayment_reminder_text(lang, *, last4, statement_amount, minimum_payment, currency,
                            due_date, policy=None) -> str:
    return render(policy, "repayment_reminder", lang, last4=last4,
                  statement_amount=format_amount(statement_amount, currency),
                  minimum_payment=format_amount(minimum_payment, currency),
                  due_date=due_date)
