"""The bank's alert policy: a TOML file laid over the shipped defaults
(default_policy.toml, which documents every key).

    Policy.load("bank.toml")           # PolicyError naming the file and the key
    Policy.from_setting(value)         # --policy / POSBRIDGE_ISSUER_POLICY

A setting that ends in ".toml" is a policy file. Anything else is read as the words of
the spec string that came before the file (kept so that existing set-ups still work):
balance-alerts | no-balance-alerts, wrong-pin-alerts | no-wrong-pin-alerts,
purchase-alerts | no-purchase-alerts, send | queue, utc-offset=MINUTES, each applied on
top of the defaults (the *-alerts words switch a kind of [alerts] on or off).
"""
import os
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from . import codes
from .money import currency_code, format_amount, parse_amount
from .templates import LANGUAGES, TEMPLATE_FIELDS, TemplateError, check_template, \
    default_templates

ENV_VAR = "POSBRIDGE_ISSUER_POLICY"
DEFAULT_POLICY_FILE = "default_policy.toml"


class PolicyError(ValueError):
    """A policy file or setting the issuer cannot use: the message names the key."""


@dataclass(frozen=True)
class Policy:
    kinds: frozenset = frozenset(codes.POLICY_KINDS)  # the kinds the bank alerts at all
    default_threshold: int = 0             # minor units of `currency`
    large_amount_limit: int = 5_000_000    # CNY 50,000.00
    currency: int = 156
    send_immediately: bool = True          # "send": at once through the gateway; False: "queue"
    utc_offset_min: int = 480              # local time of messages and expiry (UTC+8)
    language: str = "en"                   # for cardholders who chose none
    retry_first_s: int = 60
    retry_max_s: int = 3600
    templates: dict = field(default_factory=default_templates, repr=False)
    source: str = field(default="built-in defaults", compare=False)

    # the switches the spec string had, for the code and tests that read them
    @property
    def alert_balance_inquiries(self) -> bool:
        return "balance_inquiry" in self.kinds

    @property
    def alert_wrong_pin(self) -> bool:
        return "wrong_pin" in self.kinds

    @property
    def alert_purchases(self) -> bool:
        return "purchase" in self.kinds

    def alerts(self, kind: str) -> bool:
        return kind in self.kinds

    def without(self, *kinds) -> "Policy":
        return replace(self, kinds=self.kinds - set(kinds))

    def retry_delay(self, attempts: int) -> int:
        """Seconds to wait after the `attempts`-th failed send (1, 2, ...)."""
        return min(self.retry_first_s * 2 ** max(attempts - 1, 0), self.retry_max_s)

    def amount_text(self, minor: int) -> str:
        return format_amount(minor, self.currency)

    # ---- loading -------------------------------------------------------------------

    @classmethod
    def load(cls, path) -> "Policy":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"policy {path}: cannot read it ({exc.strerror or exc})") from None
        return cls.from_toml(text, str(path))

    @classmethod
    def from_toml(cls, text: str, source: str = "policy") -> "Policy":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy {source}: not valid TOML: {exc}") from None
        return _from_data(_merge(_default_data(), data, source), source)

    @classmethod
    def from_spec(cls, spec: str) -> "Policy":
        policy = cls()
        for word in filter(None, (w.strip() for w in spec.split(","))):
            name, _, value = word.partition("=")
            if word in _FLAGS:
                policy = _FLAGS[word](policy)
            elif name == "utc-offset" and value.lstrip("-").isdigit() and abs(int(value)) <= 840:
                policy = replace(policy, utc_offset_min=int(value))
            else:
                raise PolicyError(f"issuer policy {word!r}: expected a .toml file, or one of "
                                  f"{', '.join(_FLAGS)}, utc-offset=MINUTES (-840..840)")
        return replace(policy, source=f"spec {spec!r}" if spec else "built-in defaults")

    @classmethod
    def from_setting(cls, value: "str | os.PathLike | None") -> "Policy":
        """A policy file (a name ending in .toml) or the older spec words."""
        if value is None:
            return cls()
        value = os.fspath(value)
        if value.strip().lower().endswith(".toml"):
            return cls.load(value.strip())
        return cls.from_spec(value)

    @classmethod
    def from_env(cls, environ=os.environ) -> "Policy":
        return cls.from_setting(environ.get(ENV_VAR) or None)


_FLAGS = {
    "balance-alerts": lambda p: replace(p, kinds=p.kinds | {"balance_inquiry"}),
    "no-balance-alerts": lambda p: p.without("balance_inquiry"),
    "wrong-pin-alerts": lambda p: replace(p, kinds=p.kinds | {"wrong_pin"}),
    "no-wrong-pin-alerts": lambda p: p.without("wrong_pin"),
    "purchase-alerts": lambda p: replace(p, kinds=p.kinds | {"purchase"}),
    "no-purchase-alerts": lambda p: p.without("purchase"),
    "send": lambda p: replace(p, send_immediately=True),
    "queue": lambda p: replace(p, send_immediately=False),
}


def _default_data() -> dict:
    text = resources.files(__package__).joinpath(DEFAULT_POLICY_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict, over: dict, source: str, where: str = "") -> dict:
    """`over` laid on `base`; a key `base` does not have is an error (a typo would
    otherwise be ignored silently). Template languages may be added."""
    out = dict(base)
    for key, value in over.items():
        path = f"{where}{key}"
        if key not in base and where != "templates.":
            if where == "alerts." and key in codes.SECURITY_KINDS:
                raise PolicyError(f"policy {source}: {path}: security alerts always go out")
            raise PolicyError(f"policy {source}: unknown key {path!r}")
        if isinstance(base.get(key), dict):
            if not isinstance(value, dict):
                raise PolicyError(f"policy {source}: {path} must be a table")
            out[key] = _merge(base[key], value, source, f"{path}.")
        else:
            out[key] = value
    return out


def _from_data(data: dict, source: str) -> Policy:
    def fail(key, problem):
        raise PolicyError(f"policy {source}: {key}: {problem}")

    def typed(key, value, kind, name):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            fail(key, f"{name} expected, not {value!r}")
        return value

    try:
        currency = currency_code(typed("currency", data["currency"], (str, int), "a currency"))
    except ValueError as exc:
        fail("currency", exc)
    offset = typed("utc_offset_min", data["utc_offset_min"], int, "minutes")
    if abs(offset) > 840:
        fail("utc_offset_min", "-840..840 expected")
    language = data["language"]
    if language not in LANGUAGES:
        fail("language", f"one of {', '.join(LANGUAGES)} expected, not {language!r}")
    if data["delivery"] not in ("send", "queue"):
        fail("delivery", f"\"send\" or \"queue\" expected, not {data['delivery']!r}")
    kinds = frozenset(kind for kind, on in data["alerts"].items()
                      if typed(f"alerts.{kind}", on, bool, "true or false"))

    def amount(key):
        text = typed(f"amounts.{key}", data["amounts"][key], str, 'a quoted amount, e.g. "100.00",')
        try:
            value = parse_amount(text, currency)
        except ValueError as exc:
            fail(f"amounts.{key}", exc)
        if value < 0:
            fail(f"amounts.{key}", "must not be negative")
        return value

    retry = {key: typed(f"retry.{key}", data["retry"][key], int, "seconds")
             for key in ("first_delay_s", "max_delay_s")}
    if not 1 <= retry["first_delay_s"] <= retry["max_delay_s"]:
        fail("retry", "1 <= first_delay_s <= max_delay_s expected")

    templates = {}
    for lang, texts in data["templates"].items():
        if lang not in LANGUAGES:
            fail(f"templates.{lang}", f"language one of {', '.join(LANGUAGES)} expected")
        if not isinstance(texts, dict):
            fail(f"templates.{lang}", "must be a table")
        missing = set(TEMPLATE_FIELDS) - set(texts)
        if missing:
            fail(f"templates.{lang}", f"missing {', '.join(sorted(missing))}")
        try:
            templates[lang] = {name: check_template(name, text) for name, text in texts.items()}
        except TemplateError as exc:
            fail(f"templates.{lang}", exc)
    if language not in templates:
        fail("language", f"no [templates.{language}]")

    return Policy(kinds=kinds, default_threshold=amount("default_threshold"),
                  large_amount_limit=amount("large_amount_limit"), currency=currency,
                  send_immediately=data["delivery"] == "send", utc_offset_min=offset,
                  language=language, retry_first_s=retry["first_delay_s"],
                  retry_max_s=retry["max_delay_s"], templates=templates, source=source)
