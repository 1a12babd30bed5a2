"""The emulated board with its bridge, on one flash directory that outlives the firmware
process: a power cut kills the MicroPython process (SIGKILL, no chance to tidy up) and
starts the firmware again on the same records, as a board that lost its power, so that
what it kept on flash (a purchase in flight) is reversed at boot."""
import logging
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from ..board.emulator import Emulator, FIRMWARE_DIR, Screen
from ..bridge import Bridge
from ..link.host_link import HostLink, LinkClosed
from ..ports import open_port

log = logging.getLogger("posbridge")

FrameLog = Callable[[str, int, int, bytes], None]


class BoardSession:
    def __init__(self, state_dir: Path, issuer, on_screen: Callable[[Screen], None],
                 on_frame: FrameLog, heap: str = "64k", firmware_dir: Path = FIRMWARE_DIR):
        self.state_dir = Path(state_dir)
        self.issuer = issuer
        self.heap = heap
        self.firmware_dir = Path(firmware_dir)
        self._on_screen = on_screen
        self._on_frame = on_frame
        self._lock = threading.Lock()      # one start, cut or stop at a time
        self.emulator: Optional[Emulator] = None
        self.bridge: Optional[Bridge] = None
        self._link: Optional[HostLink] = None
        self._port = None
        self._stop: Optional[threading.Event] = None
        self._serving: Optional[threading.Thread] = None
        self.boots = 0
        self._chips: dict = {}             # the virtual contactless cards, by PAN

    @property
    def running(self) -> bool:
        return self.emulator is not None and self.emulator.proc is not None \
            and self.emulator.proc.poll() is None

    def start(self):
        """Boot the firmware on the flash directory and bridge it (EmulatorError,
        PortError if it cannot start)."""
        with self._lock:
            self._start()

    def _start(self):
        emulator = Emulator(self.firmware_dir, heap=self.heap, on_screen=self._on_screen,
                            state_dir=self.state_dir, card_keys=self.issuer.ledger.keys)
        # the contactless cards outlive a power cut of the board: a chip keeps its ATC,
        # and a new one starting again at 1 would be refused by the issuer as a replay
        emulator.cards = self._chips
        link_path = emulator.start()
        try:
            port = open_port(link_path)
        except Exception:
            emulator.stop()
            raise
        link = HostLink(port, frame_log=self._on_frame).start()
        self.emulator, self._port, self._link = emulator, port, link
        self.bridge = Bridge(link, issuer=self.issuer)
        self._stop = threading.Event()
        self._serving = threading.Thread(target=self._serve, args=(self.bridge, self._stop),
                                         daemon=True, name="bridge")
        self._serving.start()
        self.boots += 1

    @staticmethod
    def _serve(bridge, stop):
        try:
            bridge.serve(stop)
        except LinkClosed as exc:
            if not stop.is_set():
                log.warning("bridge lost the board: %s", exc)

    def power_cut(self, off_s: float = 1.0):
        """Kill the firmware where it stands, wait `off_s`, boot it again on the same flash."""
        with self._lock:
            if self.emulator and self.emulator.proc:
                self.emulator.proc.kill()
                self.emulator.proc.wait()
            self._close()
            time.sleep(off_s)
            self._start()

    def stop(self):
        with self._lock:
            self._close()

    def _close(self):
        if self._stop is not None:
            self._stop.set()
        if self._serving is not None:
            # a worker held up by a slow issuer is left to find the link closed
            self._serving.join(timeout=1)
        if self._link is not None:
            self._link.close()
        if self._port is not None:
            self._port.close()
        if self.emulator is not None:
            self.emulator.stop()
        self.emulator = self.bridge = self._link = self._port = None
        self._stop = self._serving = None

    def request_status(self):
        bridge = self.bridge
        if bridge is not None:
            bridge.request_status()

    def link_counters(self) -> dict:
        link = self._link
        return link.counters() if link is not None else {}
