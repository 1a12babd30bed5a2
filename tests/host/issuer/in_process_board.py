"""The real firmware Terminal (app.py and the visit modules) under CPython, wired to
scripted streams for the link, the card reader and the PIN pad, with its flash in a
temporary directory provisioned like the emulator's, and a firmware Link playing the
bridge. For review tests that need the whole visit without pseudo-terminals."""
from pathlib import Path

from tests.cpython_shims import install

install()

import cbor  # noqa: E402
import messages as m  # noqa: E402
from app import Terminal  # noqa: E402
from fwtest import FakeClock, ScriptedStream  # noqa: E402
from link import Link  # noqa: E402
from store import Store  # noqa: E402

from posbridge.board.peripherals import card_record, pin_keys  # noqa: E402
from posbridge.board.provision import provision_test_terminal  # noqa: E402

NOW = 1795305600


class Panel:
    def __init__(self):
        self.screens = []

    def show(self, buf, lines=()):
        self.screens.append(tuple(lines))

    def last(self):
        return "\n".join(self.screens[-1])

    def seen(self, text):
        return any(text in "\n".join(s) for s in self.screens)


class InProcessBoard:
    """Stands in for the board: the real firmware in this process, on scripted streams."""

    def __init__(self, state_dir, answer=None, provision=True, hello=True):
        """`answer(mtype, body)` -> (mtype, body) or None is called for every message the
        board sends (the bridge's part)."""
        self.state_dir = Path(state_dir)
        if provision:
            provision_test_terminal(self.state_dir)
        self.clock = FakeClock(1000)
        self.link_stream = ScriptedStream()
        self.card = ScriptedStream()
        self.pinpad = ScriptedStream()
        self.panel = Panel()
        self.answer = answer
        self.sent = []          # (mtype, body) the board sent
        self.term = Terminal(self.link_stream, self.panel, clock=self.clock,
                             card_stream=self.card, pinpad_stream=self.pinpad,
                             store=Store(str(self.state_dir)))
        self.bridge = Link(ScriptedStream(), self.clock)
        if hello:
            self.step(3)
            self.to_board(m.HELLO_REPLY, {1: 1, 2: NOW, 3: "0.1.0"})
            self.step(5)

    def step(self, n=1, ms=10):
        for _ in range(n):
            self.term.guarded_step()
            self.bridge.stream.feed(self.link_stream.take_written())
            self.bridge.poll()
            while True:
                msg = self.bridge.receive()
                if msg is None:
                    break
                self.sent.append((msg[0], bytes(msg[1])))
                if self.answer is not None:
                    reply = self.answer(msg[0], bytes(msg[1]))
                    if reply is not None:
                        self.bridge.send(*reply)
            self.bridge.poll()
            self.link_stream.feed(self.bridge.stream.take_written())
            self.clock.advance(ms)

    def to_board(self, mtype, fields):
        self.bridge.send(mtype, cbor.encode(fields) if isinstance(fields, dict) else fields)

    def swipe(self, pan, expiry="3012"):
        self.card.feed(card_record(pan, expiry))
        self.step(5)

    def keys(self, text):
        self.pinpad.feed(pin_keys(text))
        self.step(5)

    def requests(self):
        return [b for t, b in self.sent if t == m.BALANCE_REQUEST]
