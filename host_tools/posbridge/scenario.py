"""Scenarios: what the emulator does at the virtual board, step by step (JSON).

    {"steps": [
        {"expect": "Insert card", "timeout": 15},   wait until a screen shows the text
        {"status": true},                            the bridge asks the board's status
        {"sleep": 0.5}
    ]}
"""
import json
import logging
import threading
import time
from pathlib import Path

from .console import console

log = logging.getLogger("posbridge")

STEP_KINDS = {"expect", "status", "sleep"}


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

    def run(self, emulator, bridge, stop: threading.Event):
        seen = 0
        for i, step in enumerate(self.steps, 1):
            if stop.is_set():
                raise ScenarioError("stopped")
            if "expect" in step:
                screen = emulator.wait_for_screen(step["expect"], step.get("timeout", 10), seen)
                seen = emulator.screens.index(screen) + 1
            elif "status" in step:
                self._status(bridge, step.get("timeout", 5))
            elif "sleep" in step:
                time.sleep(float(step["sleep"]))
        log.info("%s: %d steps done", self.name, len(self.steps))

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
    return None
