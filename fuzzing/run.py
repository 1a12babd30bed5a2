"""Run a target's corpus under MicroPython, in one process, -X heapsize=64k (the board's
heap): the firmware precompiled as the board runs it, the inputs from a file."""
import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from posbridge.board.firmware_build import compile_tree
from posbridge.board.tools import beside_python

from . import corpus

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
DRIVER = Path(__file__).with_name("mp_fuzz.py")
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
TARGETS = ("cbor", "framing", "card", "tlv", "pn532")
# the board's module each target reads
MODULES = {"cbor": "firmware/cbor.py", "framing": "firmware/framing.py",
           "card": "firmware/card_reader.py", "tlv": "firmware/tlv.py",
           "pn532": "firmware/pn532.py, PN532.feed"}


@dataclass
class Result:
    target: str
    inputs: int = 0
    values: int = 0
    errors: int = 0
    max_us: int = 0
    slowest: int = -1
    heap_free: int = 0
    hist: list = field(default_factory=list)      # inputs per time bucket (mp_fuzz.py)
    crashes: list = field(default_factory=list)   # (index, exception type, message)
    seconds: float = 0.0


def run_inputs(target: str, items: list, heap: str = "64k", timeout: float = 3600) -> Result:
    import time
    with tempfile.TemporaryDirectory(prefix="pos-fuzz-") as tmp:
        path = Path(tmp) / "inputs.bin"
        corpus.write(path, items)
        compiled = compile_tree(FIRMWARE, Path(tmp) / "fw")
        env = dict(os.environ, MICROPYPATH=f"{compiled}{os.pathsep}.frozen")
        exe = beside_python("micropython") or "micropython"
        t0 = time.monotonic()
        proc = subprocess.run([exe, "-X", f"heapsize={heap}", str(DRIVER), target, str(path)],
                              capture_output=True, text=True, env=env, timeout=timeout)
        seconds = time.monotonic() - t0
    out = Result(target, seconds=seconds)
    for line in proc.stdout.splitlines():
        if line.startswith("CRASH "):
            _, index, kind, *msg = line.split(" ", 3) + [""]
            out.crashes.append((int(index), kind, " ".join(msg).strip()))
    done = re.search(r"DONE target=\w+ inputs=(\d+) values=(\d+) errors=(\d+) crashes=\d+ "
                     r"max_us=(\d+) slowest=(\d+) heap_free=(\d+) hist=([\d,]+)", proc.stdout)
    if proc.returncode != 0 or done is None:
        raise RuntimeError(f"the fuzz driver died on {target} (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    (out.inputs, out.values, out.errors, out.max_us, out.slowest,
     out.heap_free) = (int(g) for g in done.groups()[:6])
    out.hist = [int(h) for h in done.group(7).split(",")]
    return out


def time_below_us(result: Result, share: float) -> int:
    """A bound (µs, a power of two) under which `share` of the inputs ran."""
    want, seen = share * result.inputs, 0
    for b, n in enumerate(result.hist):
        seen += n
        if seen >= want:
            return 1 << b
    return 1 << len(result.hist)


def regressions(target: str) -> list:
    """The inputs that once crashed the target, kept as test cases."""
    folder = REGRESSIONS / target
    return [p.read_bytes() for p in sorted(folder.glob("*.bin"))] if folder.is_dir() else []


def keep_crashes(target: str, items: list, result: Result) -> list:
    """Write each crashing input to tests/fuzz_regressions/TARGET/; their paths."""
    paths = []
    for index, _, _ in result.crashes:
        data = items[index]
        folder = REGRESSIONS / target
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (hashlib.sha256(data).hexdigest()[:16] + ".bin")
        path.write_bytes(data)
        paths.append(path)
    return paths


def fuzz(target: str, count: int, seed: int) -> tuple:
    """(result, items): the regression cases first, then `count` seeded inputs."""
    items = regressions(target) + list(corpus.inputs(target, count, seed))
    return run_inputs(target, items), items
