"""The bank's alert policy, as far as balance inquiries and purchases need it. Issue 5 replaces the
spec string with a TOML file; the fields stay.

    POSBRIDGE_ISSUER_POLICY="no-balance-alerts,queue,utc-offset=-300"
"""
import os
from dataclasses import dataclass, replace

ENV_VAR = "POSBRIDGE_ISSUER_POLICY"


@dataclass(frozen=True)
class Policy:
    alert_balance_inquiries: bool = True   # False: status 6 for every balance inquiry
    alert_wrong_pin: bool = True           # False: status 6 for a wrong PIN
    alert_purchases: bool = True           # False: status 6 for every approved purchase
    send_immediately: bool = True          # built-in gateway: "sent" (2); False: "queued" (1)
    utc_offset_min: int = 480              # local time of messages and expiry (UTC+8)

    @classmethod
    def from_spec(cls, spec: str) -> "Policy":
        """Comma-separated words: balance-alerts | no-balance-alerts, wrong-pin-alerts |
        no-wrong-pin-alerts, purchase-alerts | no-purchase-alerts, send | queue, utc-offset=MINUTES. ValueError otherwise."""
        policy = cls()
        for word in filter(None, (w.strip() for w in spec.split(","))):
            name, _, value = word.partition("=")
            if word in _FLAGS:
                policy = replace(policy, **_FLAGS[word])
            elif name == "utc-offset" and value.lstrip("-").isdigit() and abs(int(value)) <= 840:
                policy = replace(policy, utc_offset_min=int(value))
            else:
                raise ValueError(f"issuer policy {word!r}: expected one of "
                                 f"{', '.join(_FLAGS)}, utc-offset=MINUTES (-840..840)")
        return policy

    @classmethod
    def from_env(cls, environ=os.environ) -> "Policy":
        return cls.from_spec(environ.get(ENV_VAR, ""))


_FLAGS = {
    "balance-alerts": {"alert_balance_inquiries": True},
    "no-balance-alerts": {"alert_balance_inquiries": False},
    "wrong-pin-alerts": {"alert_wrong_pin": True},
    "no-wrong-pin-alerts": {"alert_wrong_pin": False},
    "purchase-alerts": {"alert_purchases": True},
    "no-purchase-alerts": {"alert_purchases": False},
    "send": {"send_immediately": True},
    "queue": {"send_immediately": False},
}
