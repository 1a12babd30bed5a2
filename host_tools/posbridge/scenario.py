"""Scenarios: what the emulator does at the virtual board, step by step (JSON).

    {"steps": [
        {"expect": "Insert card", "timeout": 15},   wait until a screen shows the text
        {"say": "Balance inquiry, SMS alert"},       a heading in the output
        {"swipe": "4761730000000011", "expiry": "3012"}   the card reader sends a swipe
        {"bad_swipe": true},                         the card reader reports a bad read
        {"tap": "4761730000000011"}                  the card enters the contactless
                                                     reader's field (a demo card's chip,
                                                     board/emv_card.py); "card_faults":
                                                     ["ppse_6a82", ...] for a broken one
        {"tap_remove_after": 3}                      the card in the field, or the next
                                                     tapped, leaves after 3 APDUs
        {"tap_garbage": true}                        the reader answers noise until the
                                                     next tap
        {"keys": "1"}, {"keys": "1234E"},            PIN pad keys (digits, C, B, X, E)
        {"amount": "12.50"}                          a purchase amount keyed in minor units
                                                     (1250), then Enter; two decimals, the
                                                     board's currency (CNY)
        {"status": true},                            the bridge asks the board's status
        {"outbox": true},                            print the issuer's outbox
        {"journal": true},                           print the issuer's journal: what is
                                                     charged, what reversed
        {"issuer_fault": "delay=16"},                set the issuer's faults (issuer/
                                                     faults.py), "" for none
        {"sleep": 0.5}
    ]}

With `posbridge emulate --link PATH` another process bridges the board: a scenario then
drives the board's peripherals only, and the steps that act on the in-process bridge
or its issuer (BRIDGE_STEPS) are refused before the board starts.
"""
import json
import logging
import re
import threading
import time
from pathlib import Path

from .console import console
from .issuer.codes import REVERSAL_OUTCOMES
from .issuer.faults import Faults
from .issuer.money import format_amount
from .board.emv_card import FAULTS as CARD_FAULTS
from .board.peripherals import bad_read_record, card_record, pin_keys

log = logging.getLogger("posbridge")

STEP_KINDS = {"expect", "status", "sleep", "say", "swipe", "bad_swipe", "keys", "outbox",
              "amount", "journal", "issuer_fault", "tap", "tap_remove_after", "tap_garbage"}
# steps that act on the emulator's own bridge or issuer, not on the board's peripherals
BRIDGE_STEPS = ("status", "outbox", "journal", "issuer_fault")
AMOUNT_RE = re.compile(r"^([0-9]+)(?:\.([0-9]{2}))?$")
MAX_AMOUNT = 9999999    # minor units: the board's largest purchase (firmware/settings.py)


class ScenarioError(Exception):
    pass


class Scenario:
    def __init__(self, steps: list, name: str = "scenario"):
        self.steps = steps
        self.name = name
        for i, step in enumerate(steps, 1):
            kinds = STEP_KINDS & set(step) if isinstance(step, dict) else set()
            if len(kinds) != 1:
                raise ScenarioError(f"{name}: step {i} must have exactly one of "
                                    f"{sorted(STEP_KINDS)}: {step!r}")
            problem = _check_values(step)
            if problem:
                raise ScenarioError(f"{name}: step {i} {problem}: {step!r}")

    @classmethod
    def load(cls, path) -> "Scenario":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ScenarioError(f"no scenario file at {path}") from None
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise ScenarioError(f"{path}: expected an object with a 'steps' list")
        return cls(data["steps"], Path(path).name)

    def bridge_steps(self) -> list:
        """(step number, kind) of each step that needs the in-process bridge or issuer."""
        return [(i, kind) for i, step in enumerate(self.steps, 1)
                for kind in BRIDGE_STEPS if kind in step]

    def check_without_bridge(self):
        """Refuse, in one line, a scenario that needs the in-process bridge or issuer:
        with --link the bridge is another process, out of the scenario's reach."""
        steps = self.bridge_steps()
        if steps:
            listed = ", ".join(f"{i} ({kind})" for i, kind in steps)
            raise ScenarioError(
                f"{self.name}: with --link another process bridges the board, so step"
                f"{'s' if len(steps) > 1 else ''} {listed} cannot run (they need the "
                f"emulator's own bridge and issuer): remove {'them' if len(steps) > 1 else 'it'}"
                " or run without --link")

    def run(self, emulator, bridge, stop: threading.Event):
        """Run the steps; `bridge` None when another process bridges the board (--link)."""
        seen = 0
        for i, step in enumerate(self.steps, 1):
            if stop.is_set():
                raise ScenarioError("stopped")
            if bridge is None and any(kind in step for kind in BRIDGE_STEPS):
                raise ScenarioError(f"{self.name}: step {i} needs the emulator's own bridge")
            if "expect" in step:
                screen = emulator.wait_for_screen(step["expect"], step.get("timeout", 10), seen)
                seen = emulator.screens.index(screen) + 1
            elif "status" in step:
                self._status(bridge, step.get("timeout", 5))
            elif "sleep" in step:
                time.sleep(float(step["sleep"]))
            elif "say" in step:
                console.rule(step["say"])
            elif "swipe" in step:
                emulator.card_reader_sends(card_record(step["swipe"], step.get("expiry", "3012"),
                                                       step.get("service_code", "201")))
            elif "bad_swipe" in step:
                emulator.card_reader_sends(bad_read_record())
            elif "tap" in step:
                emulator.tap(step["tap"], step.get("card_faults", ()))
            elif "tap_remove_after" in step:
                emulator.tap_remove_after(step["tap_remove_after"])
            elif "tap_garbage" in step:
                emulator.tap_garbage()
            elif "keys" in step:
                emulator.pin_pad_sends(pin_keys(step["keys"]))
            elif "amount" in step:
                emulator.pin_pad_sends(pin_keys(amount_keys(step["amount"])))
            elif "outbox" in step:
                self._outbox(bridge)
            elif "journal" in step:
                self._journal(bridge)
            elif "issuer_fault" in step:
                self._issuer(bridge).faults = Faults.from_spec(step["issuer_fault"])
                console.print(f"issuer faults: {step['issuer_fault'] or 'none'}")
        log.info("%s: %d steps done", self.name, len(self.steps))

    @staticmethod
    def _issuer(bridge):
        if bridge.issuer is None:
            raise ScenarioError("no issuer behind the bridge")
        return bridge.issuer

    def _outbox(self, bridge):
        rows = self._issuer(bridge).ledger.outbox()
        console.rule(f"issuer outbox: {len(rows)} message(s)")
        for r in rows:
            console.print(f"#{r['id']} *{r['card_last4']} {r['channel']} to {r['destination']} "
                          f"[{r['status']}] {r['kind']}\n    {r['text']}", markup=False)

    def _journal(self, bridge):
        rows = self._issuer(bridge).ledger.journal()
        console.rule(f"issuer journal: {len(rows)} transaction(s)")
        for r in rows:
            money = (format_amount(r["amount"], r["currency"])
                     if r["amount"] is not None and r["currency"] else "")
            what = ""
            if r["kind"] == "purchase" and r["response_code"] == "00":
                what = (f"reversed by #{r['reversed_by']}" if r["reversed_by"] else "charged")
            elif r["kind"] == "reversal":
                what = (f"of trace {r['original_trace']}: "
                        f"{REVERSAL_OUTCOMES.get(r['reversal_outcome'], '-')}")
            console.print(f"#{r['id']} {r['terminal_id']}/{r['trace_number']} {r['kind']} "
                          f"{r['response_code']} {r['card'] or '-'} {money} {what}".rstrip(),
                          markup=False)

    @staticmethod
    def _status(bridge, timeout):
        before = bridge.board_status
        bridge.request_status()
        deadline = time.monotonic() + timeout
        while bridge.board_status is before and time.monotonic() < deadline:
            time.sleep(0.05)
        if bridge.board_status is before:
            raise ScenarioError("the board did not answer STATUS_REQUEST")
        st = bridge.board_status
        console.print(f"board status: state={st.get('state')} uptime={st.get('uptime_s')}s "
                      f"heap free={st.get('heap_free')} bytes link={st.get('link')}")


def amount_keys(text: str) -> str:
    """"12.50" -> "1250E": the PIN pad keys of an amount in minor units, then Enter."""
    m = AMOUNT_RE.match(text) if isinstance(text, str) else None
    minor = int(m.group(1) + (m.group(2) or "00")) if m else 0
    if not 0 < minor <= MAX_AMOUNT:
        raise ValueError(f"amount {text!r}: expected 0.01 to 99999.99, e.g. 12.50")
    return str(minor) + "E"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_values(step: dict):
    """What is wrong with a step's values, or None: caught at load, before the board
    starts, rather than half-way through a run."""
    if "expect" in step and not (isinstance(step["expect"], str) and step["expect"]):
        return "'expect' must be the text to wait for"
    if "sleep" in step and not (_is_number(step["sleep"]) and step["sleep"] >= 0):
        return "'sleep' must be a number of seconds"
    if "status" in step and step["status"] is not True:
        return "'status' must be true"
    if "timeout" in step and not (_is_number(step["timeout"]) and step["timeout"] >= 0):
        return "'timeout' must be a number of seconds"
    if "swipe" in step and not (isinstance(step["swipe"], str) and step["swipe"].isdigit()):
        return "'swipe' must be the card number, digits only"
    if "expiry" in step and not (isinstance(step["expiry"], str) and len(step["expiry"]) == 4
                                 and step["expiry"].isdigit()):
        return "'expiry' must be YYMM"
    if "tap" in step and not (isinstance(step["tap"], str) and step["tap"].isdigit()):
        return "'tap' must be the card number, digits only"
    if "card_faults" in step and not (isinstance(step["card_faults"], list) and
                                      set(step["card_faults"]) <= set(CARD_FAULTS)):
        return f"'card_faults' must be a list of {', '.join(CARD_FAULTS)}"
    if "tap_remove_after" in step and not (isinstance(step["tap_remove_after"], int)
                                           and not isinstance(step["tap_remove_after"], bool)
                                           and step["tap_remove_after"] >= 0):
        return "'tap_remove_after' must be a number of APDUs"
    if "tap_garbage" in step and step["tap_garbage"] is not True:
        return "'tap_garbage' must be true"
    if "keys" in step:
        try:
            pin_keys(step["keys"])
        except (ValueError, TypeError):
            return "'keys' must be PIN pad keys: digits, C, B, X, E"
    if "say" in step and not isinstance(step["say"], str):
        return "'say' must be text"
    if "amount" in step:
        try:
            amount_keys(step["amount"])
        except ValueError:
            return "'amount' must be an amount from 0.01 to 99999.99, such as \"12.50\""
    if "journal" in step and step["journal"] is not True:
        return "'journal' must be true"
    if "issuer_fault" in step:
        try:
            Faults.from_spec(step["issuer_fault"])
        except (ValueError, AttributeError) as exc:
            return f"'issuer_fault': {exc}"
    return None
