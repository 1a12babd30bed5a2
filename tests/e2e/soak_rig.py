"""The widened soak's rig: the real firmware on one flash (a state directory), behind
the fault-injecting link (posbridge/link/fault_injector.py), bridged to the issuer,
with the two disruptions a shop sees: the board's power cut (its MicroPython process
killed, started again on the same flash) and the bridge restarted (its port closed
and opened again, the board running on). Every screen of every life of the board is
kept, and the counts of what happened."""
import json
import random
import threading
import time
from collections import Counter

from posbridge.board.emulator import Emulator
from posbridge.bridge import Bridge
from posbridge.link.fault_injector import FaultInjector
from posbridge.link.host_link import HostLink, LinkClosed
from posbridge.ports import open_port

# screens a person dismisses with a key; the rest (Processing, sending) wait on their own
DISMISS = ("APPROVED", "DECLINED", "NOT COMPLETED", "NOT AVAILABLE", "NOT SENT", "BUSY",
           "NO ANSWER", "SECURITY ERROR", "BALANCE CNY", "LAST PURCHASE", "Acknowledged",
           "Not acknowledged", "Terminal error", "Reversals due", "Cancelled", "Timed out")


class Rig:
    def __init__(self, issuer, state_dir, seed):
        self.issuer = issuer
        self.state_dir = state_dir
        self.rng = random.Random(seed)
        self.lives = []               # each life's screens, oldest first
        self.counts = Counter()
        self._life_status = {}        # the board's last link counters in this life
        self.em = self.injector = self.port = self.link = self.bridge = None
        self.bridge_path = None
        self._stop = self._thread = None

    # -- the board --

    def start_board(self):
        self.em = Emulator(state_dir=self.state_dir)
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
                    self.em.pin_pad_sends(b"E")
                    pressed = last
            time.sleep(0.05)
        last = self.em.screens[-1].text if self.em.screens else "(nothing)"
        raise AssertionError(f"the board did not settle: journal {self.journal()}, "
                             f"last screen:\n{last}\n" + "\n".join(self.em.stderr_lines[-20:]))

    def screens(self):
        return [s for life in self.lives for s in life]
