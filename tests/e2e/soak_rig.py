"""The widened soak's rig: the real firmware on one flash (a state directory), behind
the fault-injecting link (posbridge/link/fault_injector.py), bridged to the issuer,
with the two disruptions a shop sees: the board's power cut (its MicroPython process
killed, started again on the same flash) and the bridge restarted (its port closed
and opened again, the board running on). Every screen of every life of the board is
kept, and the counts of what happened.

Options:
    card_keys   the issuer's key store: the board's reader has virtual contactless
                cards (emulator.tap), one set of them for every life of the board, so
                that each card's ATC goes on rising across power cuts as a real card's
                does (a card counted back would be declined 82)
    host_db     the bridge reaches the issuer as an ISO 8583 host (`posbridge issuer
                serve`, a process of its own on this database, on one port for good)
                through its upstream (posbridge/upstream.py), and the host can be
                killed (SIGKILL, or SIGTERM as a service manager stops it) and started
                again on the same database and port: restart_host. `issuer`, what
                the bridge calls, is then a function of the upstream: issuer(upstream)"""
import json
import random
import signal
import socket
import subprocess
import threading
import time
from collections import Counter

from posbridge.board.emulator import Emulator
from posbridge.bridge import Bridge
from posbridge.link.fault_injector import FaultInjector
from posbridge.link.host_link import HostLink, LinkClosed
from posbridge.ports import open_port
from posbridge.upstream import Upstream

from tests.iso8583_net import HostProcess

# screens a person dismisses with a key; the rest (Processing, sending) wait on their own
DISMISS = ("APPROVED", "DECLINED", "NOT COMPLETED", "NOT AVAILABLE", "NOT SENT", "BUSY",
           "NO ANSWER", "SECURITY ERROR", "BALANCE CNY", "LAST PURCHASE", "Acknowledged",
           "Not acknowledged", "Terminal error", "Reversals due", "Cancelled", "Timed out")


UPSTREAM_TIMEOUT_S = 5.0      # the upstream's wait for an answer, under the board's 15 s


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rig:
    def __init__(self, issuer, state_dir, seed, card_keys=None, host_db=None):
        self.state_dir = state_dir
        self.rng = random.Random(seed)
        self.lives = []               # each life's screens, oldest first
        self.counts = Counter()
        self._life_status = {}        # the board's last link counters in this life
        self.em = self.injector = self.port = self.link = self.bridge = None
        self.bridge_path = None
        self._stop = self._thread = None
        self.card_keys = card_keys
        self.cards = {}               # the virtual cards by PAN, shared by every life
        self.host = self.upstream = None
        self.host_db = host_db
        if host_db is not None:
            self.host_port = _free_port()
            self.host = HostProcess(host_db, port=self.host_port)
            self.upstream = Upstream("127.0.0.1", self.host_port,
                                     timeout=UPSTREAM_TIMEOUT_S, echo_interval=60).start()
            issuer = issuer(self.upstream)
        self.issuer = issuer

    # -- the issuer host --

    def restart_host(self, sig=signal.SIGKILL):
        """The host killed with `sig` (SIGKILL: it gets no chance to tidy up), and
        started again on the same database and port; the upstream reconnects."""
        self.host.proc.send_signal(sig)
        try:
            self.host.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.host.proc.kill()
            self.host.proc.wait()
        self.counts[f"host restarts ({signal.Signals(sig).name})"] += 1
        self.counts["host restarts"] += 1
        for _ in range(50):           # the port may be a moment in coming free
            try:
                self.host = HostProcess(self.host_db, port=self.host_port)
                return
            except AssertionError:
                time.sleep(0.2)
        raise AssertionError("the issuer host did not start again")

    # -- the board --

    def start_board(self):
        self.em = Emulator(state_dir=self.state_dir, card_keys=self.card_keys)
        self.em.cards = self.cards    # the same cards, their ATCs, in every life
        self.injector = FaultInjector(self.em.start(), seed=self.rng.randrange(1 << 30))
        self.bridge_path = self.injector.start()
        self.lives.append(self.em.screens)
        self._start_bridge()

    def cut_power(self):
        self.em.proc.kill()           # SIGKILL: the firmware gets no chance to tidy up
        self.em.proc.wait()
        self._stop_bridge()
        self._end_life()
        self.injector.stop()
        self.em.stop()                # the flash (state_dir) stays
        self.counts["power cuts"] += 1
        self.start_board()

    def restart_bridge(self):
        self._stop_bridge()
        self._start_bridge()
        self.counts["bridge restarts"] += 1

    def close(self):
        self._stop_bridge()
        self._end_life()
        if self.injector:
            self.injector.stop()
        if self.em:
            self.em.stop()
        if self.upstream:
            self.upstream.close()
        if self.host:
            self.host.close()

    def _start_bridge(self):
        self.port = open_port(self.bridge_path)
        self.link = HostLink(self.port).start()
        self.bridge = Bridge(self.link, issuer=self.issuer)
        self._stop = threading.Event()

        def serve():
            try:
                self.bridge.serve(self._stop)
            except LinkClosed:
                pass
        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def _stop_bridge(self):
        if self.link is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self.counts["bridge retransmissions"] += self.link.stats["retransmits"]
        self.link.close()
        self.port.close()
        self.link = self.port = None

    def _end_life(self):
        for k in ("retransmits", "crc_errors", "failures"):
            self.counts[f"board {k}"] += self._life_status.get(k, 0)
        self._life_status = {}
        if self.em:                   # the board's tracebacks, by their last line
            for last, where in self.em.tracebacks():
                where = where.replace('File "', "").replace('", line ', ":")
                self.counts[f"board error {last.split(':')[0]} at {where}"] += 1
        if self.injector:
            for k, v in self.injector.counts.items():
                self.counts[f"link {k}"] += v

    def note_board_status(self, timeout=2.0):
        """Ask the board for its link counters (kept per life: a power cut zeroes them)."""
        before = self.bridge.board_status
        self.bridge.request_status()
        deadline = time.monotonic() + timeout
        while self.bridge.board_status is before and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.bridge.board_status is not before:
            self._life_status = dict(self.bridge.board_status["link"])

    # -- what the board shows and keeps --

    def journal(self):
        path = self.state_dir / "journal.json"
        try:
            return json.loads(path.read_text())["entries"]
        except FileNotFoundError:
            return []
        except ValueError:            # read between the write and the rename
            return [None]

    def settle(self, timeout=240):
        """Until the board is idle, online, with nothing on its journal: the answers
        dismissed, the reversals acknowledged, an approval shown again at boot seen."""
        deadline = time.monotonic() + timeout
        pressed = None
        while time.monotonic() < deadline:
            screens = self.em.screens
            last = screens[-1] if screens else None
            if last is not None:
                text = last.text
                if ("Insert card" in text and "online" in text
                        and "Reversal pending" not in text and not self.journal()):
                    return
                if last is not pressed and any(t in text for t in DISMISS):
                    self.lift_card()     # the visit is over: a tapped card is lifted
                    self.em.pin_pad_sends(b"E")
                    pressed = last
                elif (last is not pressed and last.lines[:1] == ["CONTACTLESS"]
                      and "2 Purchase" in text):
                    # a card still in the field after its visit (one a failed read
                    # did not let go), seen again at idle: lifted, the menu cancelled
                    self.counts["card lifted at the menu after its visit"] += 1
                    self.lift_card()
                    self.em.pin_pad_sends(b"X")
                    pressed = last
            time.sleep(0.05)
        last = self.em.screens[-1].text if self.em.screens else "(nothing)"
        raise AssertionError(f"the board did not settle: journal {self.journal()}, "
                             f"last screen:\n{last}\n" + "\n".join(self.em.stderr_lines[-20:]))

    def lift_card(self):
        if self.em.reader is not None:
            self.em.reader.remove()

    def screens(self):
        return [s for life in self.lives for s in life]

    def mark(self):
        """Where the screens are now: screens_since(mark) are those shown after it."""
        return len(self.lives) - 1, len(self.lives[-1])

    def screens_since(self, mark):
        life, at = mark
        return self.lives[life][at:] + [s for lf in self.lives[life + 1:] for s in lf]
