"""The console's one owner of state: the board session, the issuer's cards as the page
may see them, the phone, the link's recent messages, the last screen and status. Page
commands (page_input.py) act here; every change goes to the pages through the hub.

The page never gets a full card number: cards are listed masked and chosen by their
place in the list; the PAN stays here and goes to the emulated card reader only."""
import base64
import dataclasses
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Optional

from ..board.emulator import FIRMWARE_DIR, EmulatorError, Screen
from ..board.peripherals import bad_read_record, card_record, pin_keys
from ..issuer.preferences import mask_phone
from ..link import protocol as p
from ..link.host_link import LinkError
from ..link.pan import mask_pans_in_text
from . import page_input as pi
from .board_session import BoardSession
from .hub import Hub
from .link_monitor import frame_event
from .phone import Phone

log = logging.getLogger("posbridge")

SLOW_ANSWER_S = 20.0      # past the board's 15 s wait for an answer: it reverses
STATUS_EVERY_S = 5.0      # the board's STATUS (heap, link counters), asked this often
PHONE_EVERY_S = 0.3       # the outbox looked at this often
MESSAGES_KEPT = 300       # the link panel's history a new page gets


@dataclasses.dataclass(frozen=True)
class ListedCard:
    pan: str = dataclasses.field(repr=False)
    expiry: str
    page: dict                 # what the page sees of it


class Terminal:
    def __init__(self, issuer, state_dir: Path, hub: Hub, heap: str = "64k",
                 firmware_dir: Path = FIRMWARE_DIR):
        self.issuer = issuer
        self.hub = hub
        self.cards = self._list_cards(issuer)
        self.session = BoardSession(state_dir, issuer, self._on_screen, self._on_frame,
                                    heap=heap, firmware_dir=firmware_dir)
        self.phone = Phone(issuer)
        self._phone_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._screen: Optional[dict] = None
        self._messages: deque = deque(maxlen=MESSAGES_KEPT)
        self._status: dict = {}
        self._phone_event: dict = self.phone.snapshot()
        self._power = "off"
        self._power_lock = threading.Lock()    # held through a power cut
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None

    @staticmethod
    def _list_cards(issuer) -> dict:
        out = {}
        for n, card in enumerate(issuer.ledger.cards(), 1):
            holder = card.holder
            out[n] = ListedCard(card.pan, card.expiry, {
                "id": n, "masked": card.masked, "name": holder.name,
                "phone": mask_phone(holder.phone) if holder.phone else None,
                "alerts": holder.channel if holder.subscribed else None,
                "language": holder.language or "en", "status": card.status})
        return out

    # -- lifecycle --

    def start(self):
        self._set_power("booting")
        self.session.start()
        self._set_power("on")
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="console-tick")
        self._ticker.start()

    def stop(self):
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=3)
        self.session.stop()
        self._set_power("off")
        with self._phone_lock:
            self.phone.close()

    # -- what the board and the link say --

    def _on_screen(self, screen: Screen):
        event = {"type": "screen", "lines": [mask_pans_in_text(s) for s in screen.lines],
                 "fb": base64.b64encode(screen.framebuffer).decode("ascii"),
                 "heap_free": screen.heap_free, "at": screen.at}
        with self._state_lock:
            self._screen = event
        self.hub.publish(event)

    def _on_frame(self, direction: str, mtype: int, seq: int, body: bytes):
        if mtype == p.TYPE_ACK:
            return                     # one per message: the counters say enough
        event = frame_event(direction, mtype, seq, body)
        with self._state_lock:
            self._messages.append(event)
        self.hub.publish(event)

    def _tick(self):
        next_status = 0.0
        while not self._stop.wait(PHONE_EVERY_S):
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                try:
                    self.session.request_status()
                except LinkError:
                    pass               # the board is off or booting: asked next time
            self._watch_board()
            self._publish_status()
            with self._phone_lock:
                if self._stop.is_set():
                    return
                event = self.phone.news()
            if event is not None:
                self._phone_event = event
                self.hub.publish(event)

    def _watch_board(self):
        """A firmware that ended by itself (an uncaught error, the heap exhausted) is
        said on the page, with its last lines; the power button boots it again."""
        if not self._power_lock.acquire(blocking=False):
            return                     # a power cut under way: the firmware is meant to stop
        try:
            if self._power != "on" or self.session.running:
                return
            self._firmware_stopped()
        finally:
            self._power_lock.release()

    def _firmware_stopped(self):
        emulator = self.session.emulator
        last = emulator.stderr_lines[-3:] if emulator is not None else []
        log.error("console: the firmware stopped: %s", " | ".join(last))
        self._set_power("stopped")
        self._note("FIRMWARE_STOPPED", mask_pans_in_text(" | ".join(last)) or "no output")

    def _publish_status(self):
        bridge = self.session.bridge
        board = dict(bridge.board_status) if bridge is not None else {}
        status = {"type": "status", "power": self._power, "boots": self.session.boots,
                  "board": board, "bridge_link": self.session.link_counters(),
                  "pages": self.hub.pages,
                  "faults": self._faults_event()["faults"]}
        if status != self._status:
            self._status = status
            self.hub.publish(status)

    def _set_power(self, state: str):
        self._power = state
        self.hub.publish({"type": "power", "state": state, "boots": self.session.boots})

    def _faults_event(self) -> dict:
        f = self.issuer.faults
        return {"type": "faults", "faults": {"slow": f.delay_s > 0, "unavailable": f.unavailable,
                                             "bad_mac": f.bad_mac},
                "slow_s": SLOW_ANSWER_S}

    # -- a new page --

    def snapshot(self) -> list[dict]:
        """Everything a page opened now needs, as the events it would have had."""
        hello = {"type": "hello", "cards": [c.page for c in self.cards.values()],
                 "contactless": True, "slow_s": SLOW_ANSWER_S}
        with self._state_lock:
            screen, messages = self._screen, list(self._messages)
        events = [hello, {"type": "power", "state": self._power, "boots": self.session.boots},
                  self._faults_event(), {"type": "messages", "items": messages},
                  self._phone_event]
        if screen is not None:
            events.append(screen)
        if self._status:
            events.append(self._status)
        return events

    # -- what the page asks for --

    def parse(self, raw) -> object:
        """The page's message as a command (page_input.PageInputError if it is not one)."""
        return pi.parse(raw, self.cards.keys())

    def act(self, command) -> Optional[str]:
        """Carry out a parsed command; a refusal a person can read, or None when done."""
        if isinstance(command, pi.SetFaults):
            return self._set_faults(command)
        if isinstance(command, pi.PowerCut):
            return self._power_cut()
        emulator = self.session.emulator
        if self._power != "on" or emulator is None:
            return "the board is off"
        try:
            if isinstance(command, pi.Key):
                emulator.pin_pad_sends(pin_keys(command.key))
            elif isinstance(command, (pi.Swipe, pi.Tap)):
                card = self.cards[command.card]
                if isinstance(command, pi.Tap):
                    emulator.tap(card.pan)
                else:
                    emulator.card_reader_sends(card_record(card.pan, card.expiry))
                with self._phone_lock:
                    self.phone.use_card(card.pan[-4:], card.page)
                    self._phone_event = self.phone.snapshot()
                self.hub.publish(self._phone_event)
            elif isinstance(command, pi.BadSwipe):
                emulator.card_reader_sends(bad_read_record())
        except (OSError, TypeError):   # the board went off between the check and the write
            return "the board is off"
        except EmulatorError as exc:    # a card the virtual reader cannot make a chip of
            return str(exc)
        return None

    def _set_faults(self, command: pi.SetFaults) -> None:
        self.issuer.faults = dataclasses.replace(
            self.issuer.faults, unavailable=command.unavailable, bad_mac=command.bad_mac,
            delay_s=SLOW_ANSWER_S if command.slow else 0.0)
        log.info("console: issuer faults %s", self._faults_event()["faults"])
        self.hub.publish(self._faults_event())
        return None

    def _power_cut(self) -> Optional[str]:
        if not self._power_lock.acquire(blocking=False):
            return "the board is off already: it boots again by itself"
        try:
            return self._cut_and_boot()
        finally:
            self._power_lock.release()

    def _cut_and_boot(self) -> Optional[str]:
        if self._power not in ("on", "stopped", "failed"):
            return "the board is off already: it boots again by itself"
        self._set_power("off")
        log.info("console: power cut")
        self._note("POWER_CUT", "the firmware killed where it stood")
        try:
            self.session.power_cut()
        except Exception as exc:       # noqa: BLE001 - said to the page and the log
            log.error("console: the board did not boot again: %s", exc)
            self._set_power("failed")
            return f"the board did not boot again: {exc}"
        self._note("POWER_ON", "the firmware booted again on the same flash")
        self._set_power("on")
        return None

    def _note(self, name: str, text: str):
        """A line of the link panel that is not a message: where the power went."""
        event = {"type": "message", "dir": "console", "name": name, "seq": None,
                 "fields": {}, "problem": text, "at": time.time()}
        with self._state_lock:
            self._messages.append(event)
        self.hub.publish(event)
