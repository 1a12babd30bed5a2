"""make bench: link and codec cost against wire time, firmware heap against its heap.

Writes docs/benchmarks.md with the figures of this run."""
import datetime
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from posbridge import protocol as p
from posbridge.bridge import Bridge
from posbridge.emulator import Emulator
from posbridge.link import HostLink, LinkClosed
from posbridge.ports import open_port

from .visit import balance_inquiry, smallest_heap_kib

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
BAUD = 115200
HEAP = 64 * 1024


def wire_us(nbytes: int) -> float:
    return nbytes * 10 / BAUD * 1e6  # 8N1: ten bits a byte


def micropython() -> str:
    return str(Path(sys.executable).parent / "micropython")


def codec_costs() -> dict:
    env = {"MICROPYPATH": f"{FIRMWARE}:.frozen", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([micropython(), "-X", "heapsize=64k",
                          str(Path(__file__).parent / "mp_codec_bench.py")],
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out.stdout)}


def boot_and_measure(firmware_dir: Path, round_trips: int = 50) -> dict:
    emulator = Emulator(firmware_dir)
    path = emulator.start()
    port = open_port(path)
    link = HostLink(port).start()
    bridge = Bridge(link)
    stop = threading.Event()

    def serve():
        try:
            bridge.serve(stop)
        except LinkClosed:
            pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        emulator.wait_for_screen("Insert card", timeout=30)
        t0 = time.perf_counter()
        for _ in range(round_trips):
            before = bridge.board_status
            bridge.request_status()
            while bridge.board_status is before:
                time.sleep(0.0005)
        rtt_us = (time.perf_counter() - t0) / round_trips * 1e6
        status = bridge.board_status
    finally:
        stop.set()
        t.join(timeout=2)
        link.close()
        port.close()
        emulator.stop()
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
    visit = balance_inquiry(FIRMWARE)
    smallest = smallest_heap_kib(FIRMWARE)
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
        f"Latest `make bench` on {datetime.date.today()} ({sys.platform}, "
        f"MicroPython unix port, `-X heapsize=64k`). Ratios are against a baseline "
        "measured in the same run; on the ESP32 (240 MHz Xtensa) the MicroPython "
        "figures are several times slower than on a PC, so a ratio well below 1 here "
        "is what leaves the board's margin.",
        "",
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
    if visit is None:
        lines += ["**The balance inquiry did not complete in a 64 KiB heap.**", ""]
    else:
        lines += [
            "A balance inquiry (demo card, approved, SMS alert), heap free on each screen "
            "of the visit after a collection (`-X heapsize=64k`):",
            "",
            "| screen | heap free (bytes) | of 64 KiB |",
            "|---|---:|---:|",
        ]
        names = ["idle, before the card", "card read: the menu", "PIN entry",
                 "processing (request sent)", "result", "idle again"]
        for i, (title, free) in enumerate(visit["screens"]):
            name = names[i] if i < len(names) else title
            lines.append(f"| {name} ({title}) | {free} | {free / HEAP:.0%} |")
        req, rsp = visit["request"], visit["response"]
        lines += [
            "",
            f"Smallest heap the inquiry completes in: **{smallest} KiB** "
            f"({64 - smallest} KiB to spare at 64 KiB)." if smallest else
            "The inquiry does not complete at 64 KiB.",
            "",
            "| on the wire | payload (header + CBOR body) | frame (COBS, CRC, delimiters) | "
            "wire time at 115200 (ms) |",
            "|---|---:|---:|---:|",
            f"| balance request | {req[0]} | {req[1]} | {wire_us(req[1]) / 1000:.1f} |",
            f"| balance response | {rsp[0]} | {rsp[1]} | {wire_us(rsp[1]) / 1000:.1f} |",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "docs" / "benchmarks.md").write_text(text)


if __name__ == "__main__":
    main()
