"""The time from tap to PAN: the board's own PN532 driver and EMV read under
MicroPython (`-X heapsize=64k`) against the virtual PN532 and a demo card, with the
reader's stream paced at 115200 baud, against the wire time of the bytes that crossed
between the card's activation and its PAN record (benchmarks/mp_tap_read.py does the
board's side). An unpaced run beside it gives what the software adds alone.

    python -m benchmarks.tap_to_pan      (make bench includes it)
"""
import re
import socket
import subprocess
import tempfile
from pathlib import Path

from posbridge.board.emv_card import EmvCard
from posbridge.board.firmware_build import compile_tree
from posbridge.board.pn532_sim import Pn532Simulator
from posbridge.board.tools import beside_python
from posbridge.issuer.keystore import KeyStore

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
BAUD = 115200
CARDS = (("4761730000000011", "visa-18"), ("5413330000000019", "mastercard-16"))


def _one(compiled: Path, card, baud) -> dict:
    board, chip = socket.socketpair()
    board.setblocking(False)
    fd = board.detach()
    sim = Pn532Simulator(chip, baud=baud).start()
    sim.tap(card)
    try:
        out = subprocess.run(
            [beside_python("micropython") or "micropython", "-X", "heapsize=64k",
             str(Path(__file__).parent / "mp_tap_read.py"), str(fd)],
            pass_fds=(fd,), cwd=compiled, capture_output=True, text=True, timeout=60,
            env={"MICROPYPATH": ".:.frozen", "PATH": "/usr/bin:/bin"})
    finally:
        import os
        os.close(fd)
        sim.stop()
    figures = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", out.stdout)}
    if out.returncode or "read_us" not in figures:
        raise RuntimeError(f"the board's read failed: {out.stdout} {out.stderr}")
    line = sim.timeline
    figures["tap_to_pan_ms"] = (line.pan_at - line.listed_at) * 1000
    figures["wire_ms"] = line.wire_bits / BAUD * 1000
    return figures


def measure() -> list:
    """(card, paced figures, unpaced figures) for each card of CARDS."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        compiled = Path(tmp) / "fw"
        compile_tree(FIRMWARE, compiled)
        keys = KeyStore.create(Path(tmp) / "issuer.keys")
        for pan, profile in CARDS:
            keys.create_issuer_master_keys(pan[:6])
            runs = []
            for baud in (BAUD, None):
                card = EmvCard.personalise(keys, pan, expiry="3012", profile=profile)
                runs.append(_one(compiled, card, baud))
            results.append((profile, *runs))
    return results


def markdown(results) -> list:
    lines = [
        "Time from tap to PAN: the board's PN532 driver and EMV read under MicroPython "
        "(`-X heapsize=64k`, precompiled) against the virtual PN532 with a demo card, "
        "from the card's activation to its PAN record delivered, the reader's stream "
        f"paced at {BAUD} baud; baseline: the wire time of the bytes that crossed in "
        "that span (10 bits a byte). The card itself answers at once here; a real card "
        "adds its own time (up to a second for a GPO).",
        "",
        "| card | tap to PAN (ms) | wire time (ms) | ratio | unpaced (ms) | whole read, "
        "board's clock (ms) | ICC data (bytes) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for profile, paced, unpaced in results:
        lines.append(f"| {profile} | {paced['tap_to_pan_ms']:.1f} | {paced['wire_ms']:.1f} | "
                     f"{paced['tap_to_pan_ms'] / paced['wire_ms']:.2f} | "
                     f"{unpaced['tap_to_pan_ms']:.1f} | {paced['read_us'] / 1000:.1f} | "
                     f"{paced['icc_bytes']} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(measure())))
