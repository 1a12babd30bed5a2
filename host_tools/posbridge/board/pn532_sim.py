"""A virtual NXP PN532 on the reader's serial stream (HSU), for the emulator and the
tests: it answers the host's bytes as the chip does, holding the virtual cards of
emv_card.py in its field.

    sim = Pn532Simulator(sock, baud=115200).start()   # sock: the host end of the stream
    sim.tap(card)                   # a card enters the field
    sim.remove_after(3)             # the card in the field (or the next) leaves after 3 APDUs
    sim.garbage()                   # the reader answers noise until the next tap
    sim.stop()

The byte protocol (PN532 User Manual UM0701-02, 6.2):
  information frame   00 00 FF LEN LCS TFI data DCS 00, LEN + LCS = 0 and
                      TFI + data + DCS = 0 (mod 256); TFI D4 host -> chip, D5 back
  extended frame      00 00 FF FF FF LENM LENL LCS TFI data DCS 00, for LEN > 255
  ACK, NACK           00 00 FF 00 FF 00 and 00 00 FF FF 00 00
  error frame         00 00 FF 01 FF 7F 81 00 (a command the chip does not know)
The chip sleeps until a 0x55 comes (the wake-up of HSU, 7.2.11); a frame before it is
lost. A frame with a bad LCS or DCS is dropped without an ACK, as the chip does. Every
command it takes is acknowledged at once (ACK), then answered with D5 and the command
code plus one:
  GetFirmwareVersion 02 -> 32 01 06 07 (PN532, version 1.6, ISO 14443 A/B, ISO 18092)
  SAMConfiguration 14, RFConfiguration 32 (item 05: the passive activation retries)
  InListPassiveTarget 4A (106 kbit/s type A only) -> 01 01 SENS_RES SEL_RES NFCID ATS
      when a card is in the field; none: it waits, as the chip does with retries FF,
      or answers 00 (no target) after the retries RFConfiguration set; an ACK from the
      host aborts the wait
  InDataExchange 40 -> status 00 and the card's answer; status 01 (time-out) once the
      card has left the field, 27 with no target listed
  InRelease 52, InDeselect 44 -> 00; after a release the card is taken away (the
      cardholder lifts it after the beep)
With `baud` the simulator paces its bytes at that rate (10 bits a byte) and takes each
command's bytes no faster, so a read takes its wire time at least; `timeline` keeps
what crossed, for the tap-to-PAN figure (docs/benchmarks.md).
"""
import os
import socket
import threading
import time
from dataclasses import dataclass

from pyemv import tlv

PREAMBLE_START = b"\x00\x00\xff"
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
WAKE = 0x55
TFI_HOST, TFI_CHIP = 0xD4, 0xD5

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_DESELECT = 0x44
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52
FIRMWARE_VERSION = bytes([0x32, 0x01, 0x06, 0x07])
STATUS_OK, STATUS_TIMEOUT, STATUS_NOT_ACCEPTABLE = 0x00, 0x01, 0x27
# a card's answer to activation: SENS_RES (ATQA), SEL_RES (SAK 20: ISO 14443-4), a
# 4-byte NFCID1, ATS
SENS_RES, SEL_RES = b"\x00\x04", 0x20
NFCID = bytes.fromhex("08A1B2C3")
ATS = bytes.fromhex("0578807002")
RETRY_S = 0.01                        # one passive activation try without a card


def information_frame(data: bytes, tfi: int = TFI_CHIP) -> bytes:
    """A normal frame, or an extended one when TFI and data exceed 255 bytes."""
    body = bytes([tfi]) + bytes(data)
    dcs = (-sum(body)) & 0xFF
    n = len(body)
    if n <= 255:
        return PREAMBLE_START + bytes([n, (-n) & 0xFF]) + body + bytes([dcs, 0])
    high, low = n >> 8, n & 0xFF
    return (PREAMBLE_START + b"\xff\xff" + bytes([high, low, (-(high + low)) & 0xFF])
            + body + bytes([dcs, 0]))


@dataclass
class Event:
    kind: str              # "frame", "ack", "nack", "bad"
    data: bytes = b""      # a frame's TFI and data; a bad frame's reason as text
    size: int = 0          # bytes the frame took on the wire


class FrameReader:
    """Frames out of a byte stream: anything before a start code (wake-up bytes, noise,
    postambles) is skipped; a frame with a bad checksum is an event of its own."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> "list[Event]":
        self.buf += data
        events = []
        while True:
            start = self.buf.find(b"\x00\xff")
            if start < 0:
                del self.buf[:max(0, len(self.buf) - 1)]
                return events
            head = self.buf[start + 2:start + 4]
            if len(head) < 2:
                del self.buf[:start]
                return events
            if head == b"\x00\xff":
                events.append(Event("ack", size=6))
                del self.buf[:start + 4]
                continue
            if head == b"\xff\x00":
                events.append(Event("nack", size=6))
                del self.buf[:start + 4]
                continue
            at = start + 2
            if head == b"\xff\xff":                        # extended
                if len(self.buf) < at + 5:
                    del self.buf[:start]
                    return events
                high, low, lcs = self.buf[at + 2:at + 5]
                if (high + low + lcs) & 0xFF:
                    events.append(Event("bad", b"LCS"))
                    del self.buf[:at]
                    continue
                length, at = (high << 8) | low, at + 5
            else:
                length, lcs = head
                if (length + lcs) & 0xFF:
                    events.append(Event("bad", b"LCS"))
                    del self.buf[:at]
                    continue
                at += 2
            if len(self.buf) < at + length + 1:
                del self.buf[:start]
                return events
            body = bytes(self.buf[at:at + length])
            dcs = self.buf[at + length]
            del self.buf[:at + length + 1]
            if length == 0 or (sum(body) + dcs) & 0xFF:
                events.append(Event("bad", b"DCS"))
                continue
            events.append(Event("frame", body, size=at - start + length + 2 + 1))


@dataclass
class _Field:
    """The card in the field and what limits its stay."""
    card: object = None
    leaves_after: "int | None" = None    # APDUs it answers before it leaves
    active: bool = False                 # listed (activated) by InListPassiveTarget
    noise: bool = False                  # the reader answers garbage


@dataclass
class Timeline:
    """When a tap happened and what crossed after it: the tap-to-PAN figure
    (time.monotonic() seconds)."""
    tap_at: "float | None" = None        # the card put in the field
    listed_at: "float | None" = None     # its activation answered to the board's poll
    pan_at: "float | None" = None        # the READ RECORD answer holding 5A delivered
    wire_bits: int = 0                   # both ways, from the activation to the PAN

    @property
    def counting(self) -> bool:
        return self.listed_at is not None and self.pan_at is None


class Pn532Simulator:
    def __init__(self, sock: socket.socket, baud: "int | None" = None,
                 card_delay_s: float = 0.0):
        self.sock = sock
        self.baud = baud
        self.card_delay_s = card_delay_s  # a card's own time to answer each APDU
        self.awake = False
        self.sam_configured = False
        self.passive_retries = 0xFF       # RFConfiguration item 05; FF: wait for a card
        self.commands: list[int] = []     # every command code taken, in order
        self.dropped = 0                  # frames lost asleep or with a bad checksum
        self.timeline = Timeline()
        self._field = _Field()
        self._pending_leave: "int | None" = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: "threading.Thread | None" = None
        self._reader = FrameReader()
        self._waiting: "tuple | None" = None   # InListPassiveTarget: (deadline or None,)
        self._last: bytes = b""           # the last answer, for a NACK

    # ---- what the scenario does ----------------------------------------------------

    def tap(self, card):
        """`card` enters the field (the one before leaves it)."""
        with self._lock:
            card.tap()
            self._field = _Field(card, self._pending_leave)
            self._pending_leave = None
            self.timeline = Timeline(tap_at=time.monotonic())

    def remove(self):
        with self._lock:
            self._field = _Field()

    def remove_after(self, apdus: int):
        """The card in the field, or else the next one tapped, leaves after `apdus`
        APDUs from its tap."""
        with self._lock:
            if self._field.card is not None:
                self._field.leaves_after = apdus
            else:
                self._pending_leave = apdus

    def garbage(self):
        """Until the next tap, the reader answers every command with noise."""
        with self._lock:
            self._field.noise = True

    @property
    def card(self):
        return self._field.card

    # ---- running -------------------------------------------------------------------

    def start(self) -> "Pn532Simulator":
        self.sock.settimeout(RETRY_S)
        self._thread = threading.Thread(target=self._run, name="pn532-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        try:
            self.sock.close()
        except OSError:
            pass

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1024)
            except socket.timeout:
                data = None
            except OSError:
                return
            if data == b"":
                return                                      # the board closed its end
            try:
                if data:
                    self.receive(data)
                self._poll_waiting()
            except OSError:
                return

    def receive(self, data: bytes):
        """Bytes from the host (the board's UART TX)."""
        if not self.awake:
            wake = data.find(bytes([WAKE]))
            if wake < 0:
                self.dropped += data.count(b"\x00\xff")      # a frame lost: still asleep
                return
            self.awake = True
            data = data[wake:].lstrip(bytes([WAKE]))
        for event in self._reader.feed(data):
            self._pace_in(event.size)
            if event.kind == "frame":
                self._command(event.data, event.size)
            elif event.kind == "ack":
                self._waiting = None                         # the host aborts a wait
            elif event.kind == "nack":
                self._send(self._last)
            else:
                self.dropped += 1

    # ---- the chip's answers ----------------------------------------------------------

    def _send(self, data: bytes, record: bool = True):
        if not data:
            return
        if self.baud:
            time.sleep(len(data) * 10 / self.baud)
        self.sock.sendall(data)
        if record and self.timeline.counting:
            self.timeline.wire_bits += len(data) * 10

    def _pace_in(self, size: int):
        if self.baud and size:
            time.sleep(size * 10 / self.baud)
        if self.timeline.counting:
            self.timeline.wire_bits += size * 10

    def _answer(self, command: int, data: bytes = b"", holds_pan: bool = False):
        frame = information_frame(bytes([command + 1]) + bytes(data))
        self._last = frame
        line = self.timeline
        if holds_pan and line.counting:
            # the PAN is the board's once this frame's last byte is there
            line.wire_bits += len(frame) * 10
            line.pan_at = time.monotonic() + (len(frame) * 10 / self.baud if self.baud else 0)
            self._send(frame, record=False)
            return
        self._send(frame)

    def _command(self, body: bytes, size: int):
        if body[0] != TFI_HOST or len(body) < 2:
            self.dropped += 1
            return
        command, args = body[1], body[2:]
        self.commands.append(command)
        with self._lock:
            noise = self._field.noise
        if noise:
            self._send(os.urandom(9) + b"\x00\xff\x05\x03" + os.urandom(4))
            return
        self._send(ACK)
        self._waiting = None
        if command == GET_FIRMWARE_VERSION:
            self._answer(command, FIRMWARE_VERSION)
        elif command == SAM_CONFIGURATION:
            self.sam_configured = True
            self._answer(command)
        elif command == RF_CONFIGURATION:
            if len(args) >= 4 and args.startswith(b"\x05"):   # MaxRetries: ATR, PSL, passive
                self.passive_retries = args[3]
            self._answer(command)
        elif command == IN_LIST_PASSIVE_TARGET:
            if len(args) < 2 or args[1] != 0x00:             # 106 kbit/s type A only
                self._send(ERROR_FRAME)
                return
            deadline = None if self.passive_retries == 0xFF else \
                time.monotonic() + (self.passive_retries + 1) * RETRY_S
            self._waiting = (deadline,)
            self._poll_waiting()
        elif command == IN_DATA_EXCHANGE:
            self._exchange(args)
        elif command in (IN_RELEASE, IN_DESELECT):
            with self._lock:
                if command == IN_RELEASE and self._field.active:
                    self._field = _Field()                   # lifted after the beep
            self._answer(command, b"\x00")
        else:
            self._send(ERROR_FRAME)

    def _poll_waiting(self):
        if self._waiting is None:
            return
        with self._lock:
            present = self._field.card is not None and not self._card_gone()
            if present:
                self._field.active = True
        if present:
            self._waiting = None
            self._answer(IN_LIST_PASSIVE_TARGET,
                         bytes([1, 1]) + SENS_RES + bytes([SEL_RES, len(NFCID)]) + NFCID + ATS)
            if self.timeline.tap_at is not None and self.timeline.listed_at is None:
                self.timeline.listed_at = time.monotonic()
        elif self._waiting[0] is not None and time.monotonic() >= self._waiting[0]:
            self._waiting = None
            self._answer(IN_LIST_PASSIVE_TARGET, b"\x00")    # no target found

    def _card_gone(self) -> bool:
        f = self._field
        return f.leaves_after is not None and f.card.apdus >= f.leaves_after

    def _exchange(self, args: bytes):
        with self._lock:
            f = self._field
            if not args or not f.active or f.card is None:
                status, answer = STATUS_NOT_ACCEPTABLE, b""
            elif self._card_gone():
                status, answer = STATUS_TIMEOUT, b""
            else:
                status, answer = STATUS_OK, f.card.apdu(args[1:])
        if status == STATUS_TIMEOUT:
            time.sleep(0.05)                                 # the chip waits out the card
        elif status == STATUS_OK and self.card_delay_s:
            time.sleep(self.card_delay_s)
        self._answer(IN_DATA_EXCHANGE, bytes([status]) + answer,
                     holds_pan=status == STATUS_OK and _holds_pan(answer))


def _holds_pan(answer: bytes) -> bool:
    """Whether a card's answer is a record (70) holding the PAN (5A)."""
    try:
        return "5A" in tlv.decode(answer[:-2]).get("70", {})
    except (tlv.DecodeError, AttributeError):
        return False
