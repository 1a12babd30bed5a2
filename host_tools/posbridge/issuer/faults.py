"""Failing on purpose, for tests and demos. Set in the constructor, or from the
environment of the process that runs the issuer (the bridge):

    POSBRIDGE_ISSUER_FAULTS="unavailable"        every request raises IssuerUnavailable
    POSBRIDGE_ISSUER_FAULTS="delay=2.5"          answer 2.5 s late (after processing:
                                                 the ledger has changed, the answer lags)
    POSBRIDGE_ISSUER_FAULTS="bad-mac"            one bit of every response MAC flipped
    POSBRIDGE_ISSUER_FAULTS="gateway-down"       the built-in gateway refuses every alert
                                                 (status 9; the outbox keeps it, failed)
    POSBRIDGE_ISSUER_FAULTS="delay=1,bad-mac"    combined
"""
import os
from dataclasses import dataclass

from ..link import cbor_profile, protocol

ENV_VAR = "POSBRIDGE_ISSUER_FAULTS"


@dataclass(frozen=True)
class Faults:
    unavailable: bool = False
    delay_s: float = 0.0
    bad_mac: bool = False
    gateway_down: bool = False

    @classmethod
    def from_spec(cls, spec: str) -> "Faults":
        """Comma-separated words: unavailable, delay=SECONDS, bad-mac, gateway-down. ValueError
        names the word it does not know."""
        fields = {}
        for word in filter(None, (w.strip() for w in spec.split(","))):
            name, _, value = word.partition("=")
            if word == "unavailable":
                fields["unavailable"] = True
            elif word == "bad-mac":
                fields["bad_mac"] = True
            elif word == "gateway-down":
                fields["gateway_down"] = True
            elif name == "delay" and _seconds(value) is not None:
                fields["delay_s"] = _seconds(value)
            else:
                raise ValueError(f"issuer fault {word!r}: expected unavailable, "
                                 f"delay=SECONDS, bad-mac, gateway-down")
        return cls(**fields)

    @classmethod
    def from_env(cls, environ=os.environ) -> "Faults":
        return cls.from_spec(environ.get(ENV_VAR, ""))


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= 3600 else None


def corrupt_mac(mtype: int, response: bytes) -> bytes:
    """The response (a message of type `mtype`) with the lowest bit of its MAC's first
    byte flipped: still valid CBOR of the same shape, but the board's MAC check must
    refuse it."""
    key = protocol.mac_key(mtype)
    fields = cbor_profile.decode(response)
    mac = bytearray(fields[key])
    mac[0] ^= 0x01
    fields[key] = bytes(mac)
    return cbor_profile.encode(fields)
