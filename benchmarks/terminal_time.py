"""Time at the terminal: from the cardholder's last key (PIN Enter; for a contactless
purchase at or below the CVM limit, the amount's Enter with the card in the field) to
the result on the
screen, on the emulated board with its link paced at 115200 baud, 8N1 (the real
USB-UART's rate), split into

    board      the firmware's own time, as it reports it (transaction.py _spent):
               building the request (DUKPT, PIN block, MAC, CBOR), journaling a
               purchase on flash, framing and writing it; checking the answer (MAC,
               binding to the request), its result lines, the journal, drawing the
               Processing and result screens into the frame buffer
    panel      the emulator's panel (firmware/pipe_panel.py: a collection for the heap
               figure, the pipe), which the board does not have: it sends the frame
               buffer to the SSD1306 over I2C instead
    wire       the request's and the response's frames at the paced rate, and for a
               contactless purchase the bytes to and from the PN532 at its 115200
    card read  a contactless purchase's read of the card (emv.py, between the key and
               the Processing screen), less its wire time
    issuer     Issuer.handle, measured around the call at the bridge
    other      what is left: the board's 5 ms poll of the keypad and the link, the
               bridge's frame handling, pipe and thread hand-overs on the PC

against the physical limit: the wire time of the request and the response plus the
issuer's own time, which no terminal on this link can beat. The ratio is per
transaction, its percentiles over the run.

A kind of transaction is a function that drives the visit up to the last key: a
contactless purchase slots in as one more entry in KINDS once the board has a reader."""
import statistics
import time
from pathlib import Path
from typing import Optional

from posbridge.board.emulator import Emulator
from posbridge.board.peripherals import card_record, pin_keys
from posbridge.link import protocol as p
from posbridge.link.framing import encode_frame
from posbridge.link.paced_line import byte_time

from .rig import bridged, demo_issuer

PAN = "4761730000000011"   # the demo card with SMS alerts (docs/issuer.md)
BAUD = 115200


def _to_pin(em, start, menu_key, amount=None):
    """Card in, the menu, the amount for a purchase, the PIN's four digits: everything
    but the last key. Returns the index of the screen to look for the result after."""
    em.card_reader_sends(card_record(PAN, "3012"))
    em.wait_for_screen("2 Purchase", timeout=30, after=start)
    em.pin_pad_sends(menu_key)
    if amount is not None:
        em.wait_for_screen("Enter amount", timeout=30, after=start)
        em.pin_pad_sends(pin_keys(f"{amount}E"))
    em.wait_for_screen("Enter PIN", timeout=30, after=start)
    em.pin_pad_sends(pin_keys("1234"))
    em.wait_for_screen("****", timeout=30, after=start)
    return len(em.screens)


def balance(em, start):
    return _to_pin(em, start, b"1"), "BALANCE CNY", p.BALANCE_REQUEST


def purchase(em, start):
    # CNY 1.00 each: the demo card's 12,345.67 lasts the run, under its 5,000.00 limit
    return _to_pin(em, start, b"2", 100), "APPROVED", p.PURCHASE_REQUEST


def contactless(em, start):
    """The demo card tapped at idle, 2 Purchase, CNY 1.00 (below the CVM limit: no PIN),
    all but the amount's Enter; the card stays in the field for the read."""
    em.tap(PAN)
    em.wait_for_screen("2 Purchase", timeout=30, after=start)
    em.pin_pad_sends(b"2")
    em.wait_for_screen("Enter amount", timeout=30, after=start)
    em.pin_pad_sends(pin_keys("100"))
    em.wait_for_screen("CNY 1.00", timeout=30, after=start)
    return len(em.screens), "APPROVED", p.PURCHASE_REQUEST


# what the cardholder does, by kind
KINDS = {"balance inquiry": balance, "purchase": purchase, "contactless purchase": contactless}


class _NfcBytes:
    """Bytes between the board and the virtual PN532, both ways (its _send and
    _pace_in see each), for the contactless read's wire time."""

    def __init__(self, reader):
        self.count = 0
        send, pace_in = reader._send, reader._pace_in

        def counted_send(data, *args, **kwargs):
            self.count += len(data)
            return send(data, *args, **kwargs)

        def counted_in(size):
            self.count += size
            return pace_in(size)
        reader._send, reader._pace_in = counted_send, counted_in


class _TimedIssuer:
    """The issuer, with the time of its last handle() kept."""

    def __init__(self, issuer):
        self._issuer = issuer
        self.last_s = 0.0

    def __getattr__(self, name):
        return getattr(self._issuer, name)

    def handle(self, mtype, body):
        t0 = time.perf_counter()
        try:
            return self._issuer.handle(mtype, body)
        finally:
            self.last_s = time.perf_counter() - t0


def _phases(em, since):
    """{'request': (board µs, panel µs), 'answer': (...)} from the board's log after line
    `since`: each "compute" line with the "panel_us" line just before it, which is the
    screen that phase drew (Processing, the result)."""
    out, panel = {}, 0
    for line in em.stderr_lines[since:]:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "panel_us":
            panel = int(parts[1])
        elif len(parts) == 3 and parts[0] == "compute":
            out[parts[1]] = (int(parts[2]) - panel, panel)
    return out


def _settle(em, state_dir, timeout=120):
    """After a visit the board failed (a terminal error): idle again with nothing on its
    journal, the reversal of a purchase left in flight acknowledged and dismissed."""
    import json
    deadline = time.monotonic() + timeout
    pressed = None
    while time.monotonic() < deadline:
        last = em.screens[-1]
        try:
            empty = not json.loads((state_dir / "journal.json").read_text())["entries"]
        except FileNotFoundError:
            empty = True
        except ValueError:
            empty = False
        if "Insert card" in last.text and "Reversal pending" not in last.text and empty:
            return
        if last is not pressed and ("Acknowledged" in last.text or "Not ackn" in last.text):
            em.pin_pad_sends(b"E")
            pressed = last
        time.sleep(0.02)
    raise RuntimeError("the board did not come back to idle: " + em.screens[-1].text)


def measure(firmware_dir: Path, per_kind: int = 100, baud: int = BAUD,
            bodies: Optional[dict] = None) -> dict:
    """{kind: [sample dict, ...]}, or {kind: None} for a kind the board cannot do yet.
    Each sample's times are in ms. `bodies` gets, by kind, the last request and response
    bodies ({kind: {message type: body}})."""
    bodies = {} if bodies is None else bodies
    frames = {}

    def record(direction, mtype, seq, body):
        frames[mtype] = len(encode_frame(bytes(p.HEADER_SIZE) + bytes(body)))
        last[mtype] = bytes(body)
    last = {}

    results = {}
    failed = results["failed"] = {}
    with demo_issuer() as plain:
        issuer = _TimedIssuer(plain)
        em = Emulator(firmware_dir, baud=baud, timed=True)
        with bridged(em, issuer, frame_log=record):
            em.card_keys = issuer.ledger.keys     # personalises the virtual cards
            nfc = _NfcBytes(em.reader)
            first = em.wait_for_screen("Insert card", timeout=30)
            em.wait_for_screen("Insert card", timeout=30, after=em.screens.index(first) + 1)
            byte_ms = byte_time(baud) * 1000
            for kind, drive in KINDS.items():
                if drive is None:
                    results[kind] = None
                    continue
                samples = results[kind] = []
                failed[kind] = 0
                while len(samples) < per_kind:
                    start = len(em.screens)
                    after, result_text, req_type = drive(em, start)
                    log_from = max(0, len(em.stderr_lines) - 2)
                    nfc.count = 0
                    t_key = time.time()
                    em.pin_pad_sends(b"E")
                    shown = _first(em, (result_text, "Terminal error"), after)
                    if "Terminal error" in shown.text:
                        # the board failed the visit (a MemoryError, say): counted, and
                        # not a sample of the time it takes
                        failed[kind] += 1
                        if drive is contactless:
                            em.reader.remove()
                        _settle(em, em.state_dir)
                        continue
                    deadline = time.monotonic() + 5
                    while "answer" not in _phases(em, log_from):
                        if time.monotonic() > deadline:
                            raise RuntimeError("the board reported no compute times")
                        time.sleep(0.001)
                    c = _phases(em, log_from)
                    req, ans = c["request"], c["answer"]
                    nfc_ms = nfc.count * byte_ms
                    wire = (frames[req_type] + frames[req_type + 1]) * byte_ms + nfc_ms
                    issuer_ms = issuer.last_s * 1000
                    total = (shown.at - t_key) * 1000
                    read = 0.0
                    if drive is contactless:
                        processing = em.wait_for_screen("Processing", timeout=5, after=after)
                        read = max(0.0, (processing.at - t_key) * 1000 - nfc_ms)
                    board_req, board_ans = req[0] / 1000, ans[0] / 1000
                    # the result screen's panel time is after the screen reached the PC
                    panel = req[1] / 1000
                    samples.append({
                        "total": total, "board": board_req + board_ans,
                        "request": board_req, "answer": board_ans, "panel": panel,
                        "wire": wire, "issuer": issuer_ms,
                        "read": read,
                        "other": total - board_req - board_ans - panel - wire - issuer_ms
                        - read,
                        "limit": wire + issuer_ms, "ratio": total / (wire + issuer_ms),
                        "request_frame": frames[req_type],
                        "response_frame": frames[req_type + 1]})
                    bodies[kind] = {t: last[t] for t in (req_type, req_type + 1)}
                    if drive is contactless:
                        em.reader.remove()
                    em.pin_pad_sends(b"E")
                    em.wait_for_screen("Insert card", timeout=30, after=len(em.screens) - 1)
    return results


def _first(em, texts, after, timeout=30):
    """The first screen from index `after` on that shows one of texts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for screen in em.screens[after:]:
            if any(t in screen.text for t in texts):
                return screen
        time.sleep(0.001)
    raise RuntimeError(f"none of {texts}; last screen: {em.screens[-1].text}")


def pct(values, q):
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


COLUMNS = (("total", "key to screen"), ("board", "board"), ("request", "of which request"),
           ("answer", "of which answer"), ("wire", "wire"), ("issuer", "issuer"),
           ("read", "card read"),
           ("panel", "emulator's panel"), ("other", "other"), ("limit", "physical limit"))


def markdown(results: dict, baud: int = BAUD) -> list:
    lines = [
        f"Time at the terminal: from the last key (PIN Enter; for a contactless purchase at or "
        f"below the CVM limit, the amount's Enter with the card in the field) to the "
        f"result on the screen, "
        f"on the emulated board with its link paced at {baud} baud, 8N1 "
        "(`benchmarks/terminal_time.py`). *Board* is the firmware's own time as it "
        "reports it: the *request* (Processing screen drawn, DUKPT, PIN block, MAC, CBOR, "
        "the journal on flash for a purchase, framing and writing) and the *answer* (MAC "
        "and binding checks, result lines, journal, result screen drawn). *Wire* is the "
        "request and response frames at the line's rate, *issuer* `Issuer.handle` at the "
        "bridge (for a contactless purchase *wire* has the bytes to and from the PN532 "
        "at 115200 too, and *card read* is the card read less that wire time), "
        "*emulator's panel* the collection and pipe write the emulator makes per "
        "screen (the board sends its frame buffer over I2C instead), *other* the rest "
        "(the board's 5 ms poll of keypad and link, the bridge's frame handling, the PC's "
        "pipes and threads). The *physical limit* is the wire time plus the issuer's "
        "time; the ratio is the terminal's time over it. Percentiles over each run, ms:",
        "",
        "| transaction | n | | " + " | ".join(label for _, label in COLUMNS) +
        " | ratio to the limit |",
        "|---|---:|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    failed = results.get("failed", {})
    for kind, samples in results.items():
        if kind == "failed":
            continue
        if samples is None:
            lines.append(f"| {kind} | 0 | not measured: the board has no contactless "
                         "reader yet |" + " |" * (len(COLUMNS) + 1))
            continue
        for q in (50, 90, 99):
            cells = " | ".join(f"{pct([s[c] for s in samples], q):.1f}" for c, _ in COLUMNS)
            ratio = pct([s["ratio"] for s in samples], q)
            lines.append(f"| {kind if q == 50 else ''} | {len(samples) if q == 50 else ''} "
                         f"| p{q} | {cells} | {ratio:.2f} |")
        worst = max(samples, key=lambda s: s["total"])
        lines.append(f"| | | max | {worst['total']:.1f} |" + " |" * (len(COLUMNS) - 1) +
                     f" {max(s['ratio'] for s in samples):.2f} |")
    lines.append("")
    if any(failed.values()):
        lines += ["Visits the board failed on the way (a terminal error: not timed, counted "
                  "here; endurance below says where they fail): " +
                  ", ".join(f"{k} {v}" for k, v in failed.items()) + ".", ""]
    measured = {k: v for k, v in results.items() if v and k != "failed"}
    if measured:
        parts = []
        for kind, samples in measured.items():
            share = {c: statistics.mean(s[c] for s in samples) for c, _ in COLUMNS}
            parts.append(f"{kind}: of a mean {share['total']:.1f} ms, the wire "
                         f"{share['wire'] / share['total']:.0%}, the issuer "
                         f"{share['issuer'] / share['total']:.0%}, the board "
                         f"{share['board'] / share['total']:.0%}, the card read "
                         f"{share['read'] / share['total']:.0%}, the emulator's panel "
                         f"{share['panel'] / share['total']:.0%}, other "
                         f"{share['other'] / share['total']:.0%}")
        lines += ["Shares of the mean: " + "; ".join(parts) + ". The board's figures are "
                  "the MicroPython unix port on this PC; the ESP32 at 240 MHz runs the same "
                  "bytecode several times slower, and its SSD1306 takes some 25 ms a screen "
                  "over I2C at 400 kHz.", ""]
    return lines
