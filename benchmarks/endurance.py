"""Months of use in minutes (make endurance): many mixed transactions on the emulated
board under `-X heapsize=64k`, the heap free at each idle screen, the size of each
record on its flash and the count of interned names recorded as they go, and none
of the three may grow over the run.

The mix, drawn from a seeded generator after a first round of one of each:
    balance      a balance inquiry
    purchase     a purchase, approved
    contactless  a purchase with the card tapped, at or below the CVM limit (no PIN)
    damaged      a purchase whose answer fails its MAC on the way (after the charge):
                 the board reverses it, the issuer credits it back
    refused      the issuer fails (unavailable) before it charges: an ERROR, which the
                 board takes for no authenticated answer and reverses
    lost         a purchase whose answer the bridge never sends: the board waits out
                 its 15 s and reverses (rare: each costs those 15 s)

`python -m benchmarks.endurance [COUNT]` runs it, asserts, plots docs/endurance-heap.png
and writes its section of docs/benchmarks.md; tests/e2e/test_endurance.py runs a short
one with the same assertions."""
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from posbridge.board.emulator import Emulator
from posbridge.board.peripherals import card_record, pin_keys
from posbridge.issuer.errors import IssuerUnavailable
from posbridge.issuer.faults import corrupt_mac
from posbridge.link import protocol as p

from .rig import bridged, demo_issuer

ROOT = Path(__file__).resolve().parents[1]
PAN = "4761730000000011"   # demo card: CNY 12,345.67 (docs/issuer.md)
KINDS = ("balance", "purchase", "contactless", "damaged", "refused", "lost")
OUTCOME_SCREENS = ("BALANCE CNY", "APPROVED", "DECLINED", "NOT COMPLETED", "NOT AVAILABLE",
                   "NOT SENT", "BUSY", "NO ANSWER", "Terminal error")


def _outcome(screen) -> str:
    return next(t for t in OUTCOME_SCREENS if t in screen.text)


def _journal_empty(state_dir: Path) -> bool:
    try:
        return not json.loads((state_dir / "journal.json").read_text())["entries"]
    except FileNotFoundError:
        return True
    except ValueError:   # caught between the write and the rename: look again
        return False


class _Faults:
    """The issuer as the bridge sees it, with the fault of the transaction under way."""

    def __init__(self, issuer):
        self._issuer = issuer
        self.kind = None

    def __getattr__(self, name):
        return getattr(self._issuer, name)

    def handle(self, mtype, body):
        if mtype == p.PURCHASE_REQUEST and self.kind == "refused":
            raise IssuerUnavailable("endurance: issuer down for this purchase")
        answer = self._issuer.handle(mtype, body)
        if mtype == p.PURCHASE_REQUEST and self.kind == "damaged":
            return corrupt_mac(p.PURCHASE_RESPONSE, answer)
        return answer


class _LosingLink:
    """The bridge's link, which loses the purchase answer of a "lost" transaction."""

    def __init__(self, link, faults):
        self._link = link
        self._faults = faults

    def __getattr__(self, name):
        return getattr(self._link, name)

    def send(self, mtype, body):
        if mtype == p.PURCHASE_RESPONSE and self._faults.kind == "lost":
            return None
        return self._link.send(mtype, body)


@dataclass
class Run:
    kinds: list = field(default_factory=list)        # per transaction
    heap: list = field(default_factory=list)         # heap free at the idle screen after it
    flash: list = field(default_factory=list)        # {record: bytes} then
    names: list = field(default_factory=list)        # interned names then
    outcomes: dict = field(default_factory=dict)
    shown: list = field(default_factory=list)        # per transaction, what it showed
    faults: list = field(default_factory=list)       # (transaction, the board's error)
    seconds: float = 0.0


def _flash(state_dir: Path) -> dict:
    return {f.name: f.stat().st_size for f in sorted(state_dir.iterdir()) if f.is_file()}


def _wait_for(em, texts, after, timeout):
    deadline = time.monotonic() + timeout
    while True:
        for i, screen in enumerate(em.screens[after:], after):
            if any(t in screen.text for t in texts):
                return i, screen
        if time.monotonic() > deadline or em.proc.poll() is not None:
            last = em.screens[-1].text if em.screens else "(nothing)"
            raise RuntimeError(f"none of {texts} within {timeout}s; last screen:\n{last}\n"
                               + "\n".join(em.stderr_lines[-20:]))
        time.sleep(0.002)


def _visit(em, kind, start, rng):
    """Card, menu, amount, PIN: (index, screen) of the screen that ends the visit, which
    is a "Terminal error" if the board failed at any step (it then ends the visit)."""
    steps = [(None, ("2 Purchase",))]
    if kind == "contactless":
        steps += [(b"2", ("Enter amount",)), (pin_keys(f"{rng.randrange(1, 100)}E"),
                                               OUTCOME_SCREENS)]
        em.tap(PAN)
    elif kind == "balance":
        steps.append((b"1", ("Enter PIN",)))
    else:
        # CNY 0.01 to 0.99: the demo card lasts far beyond 10,000
        steps += [(b"2", ("Enter amount",)),
                  (pin_keys(f"{rng.randrange(1, 100)}E"), ("Enter PIN",))]
    if kind != "contactless":
        steps.append((pin_keys("1234E"), OUTCOME_SCREENS))
        em.card_reader_sends(card_record(PAN, "3012"))
    for keys, texts in steps:
        if keys:
            em.pin_pad_sends(keys)
        i, screen = _wait_for(em, texts + ("Terminal error",), start, 60)
        if "Terminal error" in screen.text:
            break
    if kind == "contactless":
        em.reader.remove()     # the card leaves the field once the visit has its answer
    return i, screen


def _last_fault(em) -> str:
    """The last line of the board's last traceback, e.g. "MemoryError: ...", and where."""
    found = em.tracebacks()
    return f"{found[-1][0]} at {found[-1][1]}" if found else "?"


def _schedule(count, seed, lost_rate):
    rng = random.Random(seed)
    # one of each first, so that every path has interned its names before the count
    first = [k for k in KINDS if k != "lost" or lost_rate > 0]
    kinds = first[:count]
    weights = {"balance": 0.30, "purchase": 0.30, "contactless": 0.24, "damaged": 0.08,
               "refused": 0.08 - lost_rate, "lost": lost_rate}
    while len(kinds) < count:
        kinds.append(rng.choices(list(weights), list(weights.values()))[0])
    return kinds


def run(count: int, seed: int = 2026, lost_rate: float = 0.0005,
        firmware_dir: Path = ROOT / "firmware", progress=None, heap: str = "64k") -> Run:
    """Run `count` transactions; progress(n, run) is called after each."""
    out = Run(kinds=_schedule(count, seed, lost_rate))
    rng = random.Random(seed + 1)
    t0 = time.monotonic()
    with demo_issuer("pos-endurance-") as issuer:
        faults = _Faults(issuer)
        em = Emulator(firmware_dir, heap=heap, count_names=True)
        with bridged(em, faults, link_wrapper=lambda link: _LosingLink(link, faults)):
            em.card_keys = issuer.ledger.keys     # personalises the virtual cards
            first, _ = _wait_for(em, ("Insert card",), 0, 30)
            _wait_for(em, ("Insert card",), first + 1, 30)
            for n, kind in enumerate(out.kinds):
                faults.kind = kind
                start = len(em.screens)
                i, screen = _visit(em, kind, start, rng)
                outcome = _outcome(screen)
                out.outcomes[outcome] = out.outcomes.get(outcome, 0) + 1
                out.shown.append(outcome)
                if outcome == "Terminal error":
                    out.faults.append((n + 1, _last_fault(em)))
                else:
                    em.pin_pad_sends(b"E")
                # idle with nothing on the journal: a reversal is sent (and its
                # acknowledgement dismissed) first, and so is a purchase a fault left in
                # flight (a "Terminal error" visit)
                while True:
                    i, screen = _wait_for(em, ("Insert card", "Acknowledged", "Not ackn"),
                                          i + 1, 60)
                    if ("Insert card" in screen.text and "Reversal pending" not in screen.text
                            and _journal_empty(em.state_dir)):
                        break
                    if "Insert card" not in screen.text:
                        em.pin_pad_sends(b"E")
                faults.kind = None
                # the name count printed after that screen
                deadline = time.monotonic() + 5
                while len(em.name_counts) <= i:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the board did not report its interned names")
                    time.sleep(0.001)
                out.heap.append(screen.heap_free)
                out.names.append(em.name_counts[i])
                out.flash.append(_flash(em.state_dir))
                if progress:
                    progress(n, out)
    out.seconds = time.monotonic() - t0
    return out


def warmup(run_: Run) -> int:
    """Transactions before the figures are compared: the first round of one of each kind,
    and a tenth of the run."""
    return max(len(KINDS), len(run_.kinds) // 10)


def windows(run_: Run):
    """The heap figures compared: the first and the last third after the warm-up."""
    w = warmup(run_)
    rest = run_.heap[w:]
    third = max(1, len(rest) // 3)
    return rest[:third], rest[-third:]


NOISE_FLOOR = 4 * 16  # bytes: four of the MicroPython heap's 16-byte blocks


def growth(run_: Run) -> list:
    """What grew after the warm-up, as sentences; empty when nothing did.

    Flash and names are exact: each flash record at each idle screen (the journal then
    empty) no larger than after the warm-up, the interned names no more. The heap free
    at idle is not exact: MicroPython's collector is conservative, and a stale word that
    looks like a pointer keeps a dead block alive for a while, so two idle screens differ
    by some hundreds of bytes at random. A leak is a drift under that noise: the mean of
    the last third after the warm-up may not fall below the first third's by more than
    three standard errors of the difference (nor at all by 1 KB or more). The heap hands
    out 16-byte blocks, so a leak of even one block every few transactions moves the
    mean by many blocks between the thirds; a fall under four blocks is the collector's
    noise whatever its standard error."""
    w = warmup(run_)
    problems = []
    first, last = windows(run_)
    if len(first) > 1 and len(last) > 1:
        fall = statistics.mean(first) - statistics.mean(last)
        se = (statistics.variance(first) / len(first) +
              statistics.variance(last) / len(last)) ** 0.5
        if fall > min(max(3 * se, NOISE_FLOOR), 1024):
            problems.append(f"heap free at idle fell by {fall:.0f} bytes on average from "
                            f"the first third after the warm-up to the last (3 standard "
                            f"errors: {3 * se:.0f})")
    base = run_.flash[w - 1]
    for n, sizes in enumerate(run_.flash[w:], w):
        grown = {k: v for k, v in sizes.items() if v > base.get(k, 0)}
        if grown:
            problems.append(f"flash grew at transaction {n + 1}: {grown} (was {base})")
            break
    if max(run_.names[w:], default=0) > run_.names[w - 1]:
        problems.append(f"interned names rose from {run_.names[w - 1]} to "
                        f"{max(run_.names[w:])}")
    return problems


def plot(run_: Run, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    ax.plot(range(1, len(run_.heap) + 1), run_.heap, lw=0.6, color="tab:blue")
    ax.set_xlabel("transaction")
    ax.set_ylabel("heap free at the idle screen (bytes)")
    ax.set_title(f"{len(run_.heap)} mixed transactions, MicroPython -X heapsize=64k")
    ax.set_ylim(0, max(run_.heap) * 1.15)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(run_: Run, machine: str, png: str) -> list:
    n = len(run_.heap)
    counts = {k: run_.kinds.count(k) for k in KINDS}
    w = warmup(run_)
    flash_first, flash_last = run_.flash[0], run_.flash[-1]
    return [
        "## Endurance",
        "",
        f"Latest `make endurance`: {machine}. {n} mixed transactions on the emulated "
        f"board (`-X heapsize=64k`) in {run_.seconds / 60:.1f} minutes: "
        + ", ".join(f"{k} {v}" for k, v in counts.items()) +
        " (`benchmarks/endurance.py` says what each is). Screens: "
        + ", ".join(f"{k} {v}" for k, v in sorted(run_.outcomes.items())) + ".",
        "",
        "| at the idle screen after | heap free (bytes) | interned names | flash records "
        "(bytes) |",
        "|---|---:|---:|---|",
        f"| transaction 1 | {run_.heap[0]} | {run_.names[0]} | "
        + ", ".join(f"{k} {v}" for k, v in flash_first.items()) + " |",
        f"| transaction {w} (end of the warm-up) | {run_.heap[w - 1]} | {run_.names[w - 1]} | "
        + ", ".join(f"{k} {v}" for k, v in run_.flash[w - 1].items()) + " |",
        f"| transaction {n} (last) | {run_.heap[-1]} | {run_.names[-1]} | "
        + ", ".join(f"{k} {v}" for k, v in flash_last.items()) + " |",
        f"| least / most over the run | {min(run_.heap)} / {max(run_.heap)} | "
        f"{min(run_.names)} / {max(run_.names)} | |",
        "",
        _faults_line(run_),
        "",
        f"![heap free at each idle screen]({png})",
        "",
        f"Asserted after the warm-up (a tenth of the run): no flash record grows and no "
        f"name is interned; the mean heap free at idle of the last third "
        f"({statistics.mean(windows(run_)[1]):.0f} bytes) is not below the first "
        f"third's ({statistics.mean(windows(run_)[0]):.0f}) beyond three standard errors "
        f"or {NOISE_FLOOR} bytes, whichever is more (the collector is conservative: idle "
        "screens differ by some hundreds of bytes at random; the heap hands out 16-byte "
        "blocks; `growth` in `benchmarks/endurance.py`).",
        "",
    ]


def _faults_line(run_: Run) -> str:
    if not run_.faults:
        return "No visit ended in a terminal error."
    from collections import Counter
    kinds = Counter(error for _, error in run_.faults)
    return (f"**{len(run_.faults)} visits ended in a terminal error** (the board's step "
            "failed; the visit ends, a purchase in flight is reversed, the terminal goes "
            "on): " + "; ".join(f"{n} × `{e}`" for e, n in kinds.most_common()) +
            f" (transactions {', '.join(str(t) for t, _ in run_.faults[:12])}"
            + (", ..." if len(run_.faults) > 12 else "") + ").")


def main(argv):
    from . import machine, report
    count = int(argv[0]) if argv else 10_000

    def progress(n, r):
        if (n + 1) % 500 == 0:
            print(f"{n + 1} transactions, heap free {r.heap[-1]}, names {r.names[-1]}, "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    started = time.monotonic()
    result = run(count, progress=progress)
    png = ROOT / "docs" / "endurance-heap.png"
    plot(result, png)
    text = "\n".join(markdown(result, machine.describe(), png.name))
    print(text)
    problems = growth(result)
    if problems:
        print("GREW:\n" + "\n".join(problems))
        return 1
    report.write_section("endurance", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
