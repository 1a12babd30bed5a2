"""make fuzz: each board decoder's seeded corpus under MicroPython (-X heapsize=64k, one
process per target), the host decoders over the same corpora, then the hypothesis
properties of tests/host/test_fuzz_host.py; a crash keeps its input in
tests/fuzz_regressions/ (run again by make test) and fails the run. Writes its section
of docs/benchmarks.md.

    python -m fuzzing [INPUTS [EXAMPLES]]   (100,000 inputs per target, 10,000 examples
                                            per hypothesis property)"""
import logging
import os
import sys
import time

from . import host_corpus, run

SEED = 2026


def main(argv):
    count = int(argv[0]) if argv else 100_000
    examples = int(argv[1]) if len(argv) > 1 else 10_000
    os.environ["FUZZ_EXAMPLES"] = str(examples)
    # the bridge logs each malformed message it answers: thousands here
    logging.getLogger("posbridge").setLevel(logging.CRITICAL)
    crashed = []
    rows = []
    for target in run.TARGETS:
        result, items = run.fuzz(target, count, SEED)
        kept = run.keep_crashes(target, items, result)
        crashed += [(target, c) for c in result.crashes]
        rows.append(f"| {target} ({run.MODULES[target]}), MicroPython | {result.inputs} | "
                    f"{result.values} | {result.errors} | {len(result.crashes)} | "
                    f"{run.time_below_us(result, 0.999)} | {result.max_us} | "
                    f"{result.seconds:.0f} |")
        print(rows[-1], "kept:", [str(k) for k in kept], flush=True)
    for name in host_corpus.TARGETS:
        result, items = host_corpus.run(name, count, SEED)
        crashed += [(name, c) for c in result.crashes]
        rows.append(f"| {name}, CPython | {result.inputs} | {result.values} | "
                    f"{result.errors} | {len(result.crashes)} | | {result.max_us} | "
                    f"{result.seconds:.0f} |")
        print(rows[-1], flush=True)
    # the hypothesis properties, called as plain functions: each runs its examples
    sys.path.insert(0, str(run.ROOT))
    from tests.host import test_fuzz_host as props
    hypo = []
    for name in sorted(n for n in dir(props) if n.startswith("test_")):
        t0 = time.monotonic()
        try:
            getattr(props, name)()
            verdict = "passed"
        except Exception as exc:   # a falsified property: hypothesis shrank it already
            verdict = f"FAILED: {type(exc).__name__}: {exc}"[:300]
            crashed.append((name, verdict))
        hypo.append((name, time.monotonic() - t0, verdict))
        print(name, verdict, flush=True)
    from benchmarks import machine, report
    lines = [
        "## Fuzzing",
        "",
        f"Latest `make fuzz`: {machine.describe()}. Seeded corpora (seed {SEED}, "
        "`fuzzing/corpus.py`: valid inputs from the host's own encoders, mutated, crafted "
        "extremes, random bytes) run under MicroPython with `-X heapsize=64k` in one "
        "process per target (`fuzzing/mp_fuzz.py`), and the same corpora through the "
        "host's decoders. *Values* are inputs that decoded (a frame delivered, a card "
        "read, a CBOR value that encodes back to the very input), *errors* those that "
        "ended in the module's documented error; a *crash* is anything else, a "
        "MemoryError included. Times per input, µs: a bound over 99.9 % of inputs "
        "(a power of two) and the slowest, which on a shared PC includes the scheduler's "
        "pauses.",
        "",
        "| target | inputs | values | documented errors | crashes | 99.9 % under (µs) | "
        "slowest (µs) | run (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows + [
        "",
        f"Hypothesis properties (`tests/host/test_fuzz_host.py`, {examples} examples each "
        "asked for):",
        "",
        "| property | inputs run | run (s) | result |",
        "|---|---:|---:|---|",
    ] + [f"| {name} | {props.CALLS.get(name, 0)} | {secs:.0f} | {verdict} |"
         for name, secs, verdict in hypo] + [
        "",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if crashed:
        print("CRASHES:", *crashed, sep="\n")
        return 1
    report.write_section("fuzz", text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
