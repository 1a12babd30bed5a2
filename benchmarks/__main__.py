"""make bench: link and codec cost against wire time, firmware heap against its heap,
the issuer's cost of one authorisation against the scrypt PIN check it replaced, and
authorisations a second from simulated terminals (throughput.py, the last section).

Writes its section of docs/benchmarks.md (report.py) with the figures of this run:
also the time at the terminal against the physical limit (terminal_time.py) and the
bytes on the wire against JSON (wire_bytes.py)."""
import os
import re
import subprocess
import time
from pathlib import Path

from posbridge.link import protocol as p
from posbridge.board.emulator import Emulator
from posbridge.board.tools import beside_python

from . import (console_keys, issuer_auth, machine, report, tap_to_pan, terminal_time,
               throughput, wire_bytes)
from .visit import (balance_inquiry, contactless_purchase, contactless_purchase_with_pin,
                    purchase, reversed_purchase, smallest_heap_kib)
from .rig import bridged

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
BAUD = 115200
HEAP = 64 * 1024


def wire_us(nbytes: int) -> float:
    return nbytes * 10 / BAUD * 1e6  # 8N1: ten bits a byte


def micropython() -> str:
    return beside_python("micropython") or "micropython"


def codec_costs() -> dict:
    env = {"MICROPYPATH": f"{FIRMWARE}:.frozen", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([micropython(), "-X", "heapsize=64k",
                          str(Path(__file__).parent / "mp_codec_bench.py")],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out.stdout)}


def qstr_count() -> int:
    """Names interned once every board module is imported (what all the visits together
    intern), under the unix port, from the precompiled firmware as the emulator runs it:
    the count a full day of visits reaches."""
    import tempfile
    from posbridge.board.firmware_build import board_modules, compile_tree
    names = [m.stem for m in board_modules(FIRMWARE) if m.stem not in ("main", "wiring")]
    with tempfile.TemporaryDirectory() as tmp:
        compile_tree(FIRMWARE, Path(tmp))
        code = ("import micropython\n" + "".join(f"import {n}\n" for n in names) +
                "micropython.qstr_info()\n")
        env = {"MICROPYPATH": ".:.frozen", "PATH": "/usr/bin:/bin"}
        out = subprocess.run([micropython(), "-X", "heapsize=256k", "-c", code], cwd=tmp,
                             capture_output=True, text=True, env=env, timeout=60, check=True)
    return int(re.search(r"n_qstr=(\d+)", out.stdout).group(1))


def boot_and_measure(firmware_dir: Path, round_trips: int = 50) -> dict:
    emulator = Emulator(firmware_dir)
    with bridged(emulator) as bridge:
        emulator.wait_for_screen("Insert card", timeout=30)
        t0 = time.perf_counter()
        for _ in range(round_trips):
            before = bridge.board_status
            bridge.request_status()
            while bridge.board_status is before:
                time.sleep(0.0005)
        rtt_us = (time.perf_counter() - t0) / round_trips * 1e6
        status = bridge.board_status
    req = len(p.encode_body({})) + 4 + 4 + 2 + 1   # header, CRC, delimiters, COBS
    resp = 80  # a board STATUS frame is about this size on the wire
    ack = 4 + 4 + 2 + 1
    return {"heap_free": status["heap_free"], "rtt_us": rtt_us,
            "rtt_wire_us": wire_us(req + resp + 2 * ack)}


def main():
    codec = codec_costs()
    frame_wire = wire_us(codec["frame_bytes"])
    body_wire = wire_us(codec["body_bytes"])
    src = boot_and_measure(FIRMWARE)  # the emulator runs the firmware precompiled
    visits = [
        ("balance inquiry", "A balance inquiry (demo card, approved, SMS alert)",
         balance_inquiry, ["idle, before the card", "card read: the menu", "PIN entry",
                           "processing (request sent)", "result", "idle again"]),
        ("purchase", "A purchase of CNY 12.50 (demo card, approved, SMS alert)", purchase,
         ["idle, before the card", "card read: the menu", "amount entry", "PIN entry",
          "processing (request sent)", "result", "idle again"]),
        ("reversed purchase", "A purchase whose answer fails its MAC on the way, reversed "
         "and acknowledged", reversed_purchase,
         ["idle, before the card", "card read: the menu", "amount entry", "PIN entry",
          "processing (request sent)", "not completed, no charge", "idle, reversal pending",
          "sending the reversal", "acknowledged", "idle again"]),
        ("contactless purchase", "A contactless purchase of CNY 25.00, at or below the CVM "
         "limit: no PIN (demo card tapped, ARQC verified, approved, SMS alert)",
         contactless_purchase,
         ["idle, before the card", "tapped: the menu", "amount entry", "card read",
          "processing (request sent)", "result", "idle again"]),
        ("contactless purchase above the CVM limit", "A contactless purchase of CNY "
         "1,500.00, above the CVM limit: the online PIN after the read",
         contactless_purchase_with_pin,
         ["idle, before the card", "tapped: the menu", "amount entry", "card read",
          "PIN entry", "processing (request sent)", "result", "idle again"]),
    ]
    measured = [(name, what, fn(FIRMWARE), smallest_heap_kib(FIRMWARE, visit=fn), names)
                for name, what, fn, names in visits]
    qstrs = qstr_count()
    authorisation = issuer_auth.markdown(issuer_auth.measure())
    tap = tap_to_pan.markdown(tap_to_pan.measure())
    bodies = {}
    # BENCH_TRANSACTIONS: per kind of transaction (100 for make bench)
    timed = terminal_time.measure(FIRMWARE, int(os.environ.get("BENCH_TRANSACTIONS", "100")),
                                  bodies=bodies)
    rows = [
        ("encode a full frame (256-byte payload), MicroPython", codec["encode_frame_us"],
         frame_wire, "wire time of that frame"),
        ("decode a full frame, MicroPython", codec["decode_frame_us"], frame_wire,
         "wire time of that frame"),
        (f"CBOR encode, {codec['body_bytes']}-byte message, MicroPython",
         codec["cbor_encode_us"], body_wire, "wire time of its bytes"),
        (f"CBOR decode, {codec['body_bytes']}-byte message, MicroPython",
         codec["cbor_decode_us"], body_wire, "wire time of its bytes"),
        ("STATUS round trip, bridge <-> emulated board over a pty", src["rtt_us"],
         src["rtt_wire_us"], "wire time of request, answer and ACKs at 115200"),
    ]
    lines = [
        "# Benchmarks",
        "",
        f"Latest `make bench`: {machine.describe()}; MicroPython unix port, "
        "`-X heapsize=64k`. Ratios are against a baseline "
        "measured in the same run; on the ESP32 (240 MHz Xtensa) the MicroPython "
        "figures are several times slower than on a PC, so a ratio well below 1 here "
        "is what leaves the board's margin.",
        "",
    ] + terminal_time.markdown(timed) + [
        "| what | time (µs) | baseline (µs) | ratio | baseline is |",
        "|---|---:|---:|---:|---|",
    ]
    for name, t, base, what in rows:
        lines.append(f"| {name} | {t:.0f} | {base:.0f} | {t / base:.3f} | {what} |")
    lines += [
        "",
        "| heap free at the idle screen | bytes | of 64 KiB |",
        "|---|---:|---:|",
        f"| firmware precompiled (.mpy, as deployed), after boot | {src['heap_free']} | "
        f"{src['heap_free'] / HEAP:.0%} |",
        "",
    ]
    for name, what, visit, smallest, names in measured:
        if visit is None:
            lines += [f"**The {name} did not complete in a 64 KiB heap.**", ""]
            continue
        lines += [
            f"{what}, heap free on each screen of the visit after a collection "
            "(`-X heapsize=64k`):",
            "",
            "| screen | heap free (bytes) | of 64 KiB |",
            "|---|---:|---:|",
        ]
        for i, (title, free) in enumerate(visit["screens"]):
            label = names[i] if i < len(names) else title
            lines.append(f"| {label} ({title}) | {free} | {free / HEAP:.0%} |")
        lines += [
            "",
            f"Smallest heap the {name} completes in: **{smallest} KiB** "
            f"({64 - smallest} KiB to spare at 64 KiB)." if smallest else
            f"The {name} does not complete at 64 KiB.",
            "",
        ]
    sizes = {name: visit for name, _, visit, _, _ in measured if visit}
    lines += [
        "| on the wire | payload (header + CBOR body) | frame (COBS, CRC, delimiters) | "
        "wire time at 115200 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, label in (("balance inquiry", "balance"), ("purchase", "purchase"),
                        ("reversed purchase", "reversal"),
                        ("contactless purchase", "contactless purchase (no PIN)"),
                        ("contactless purchase above the CVM limit",
                         "contactless purchase (PIN)")):
        if name not in sizes:
            continue
        for kind in ("request", "response"):
            size = sizes[name][kind]
            if size:
                lines.append(f"| {label} {kind} | {size[0]} | {size[1]} | "
                             f"{wire_us(size[1]) / 1000:.1f} |")
    lines += [
        "",
        f"Names (qstrs) interned with every board module loaded: **{qstrs}**. MicroPython "
        "never frees them, and the unix port's pool grows by some 7 KB at once past 620 "
        "(docs/firmware-memory.md).",
        "",
    ] + wire_bytes.markdown(bodies) + authorisation + [""] + tap + [""] \
        + throughput.markdown(throughput.measure()) + console_keys.bench()
    text = "\n".join(lines)
    print(text)
    report.write_section("bench", text)


if __name__ == "__main__":
    main()
