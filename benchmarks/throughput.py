"""Authorisations a second: `posbridge load`'s simulated terminals (own key, DUKPT PIN
block, request MAC, answer MAC checked) against the issuer in process (1 and 8
terminals) and against `posbridge issuer serve` (ISO 8583 over TCP, through the
bridge's upstream client; 1, 8, 32 and 256 terminals), on SQLite and on PostgreSQL, and
two host processes on one PostgreSQL database (32 terminals), and through the bridge:
simulated boards (1, 8, 32), each on a pseudo-terminal of its own, over the board-bridge
link to one bridge with its issuer in process on SQLite. Each run is audited (no double,
no lost charge).

Each figure is a ratio against a baseline measured in the same run:
  in process   the terminal's own work alone: purchases built (three DUKPT working
               keys, a format 4 PIN block, the CMAC) and a MAC'd answer checked, one
               thread, a second of it; the issuer can go no faster than its terminals
  ISO 8583     0800 echo tests to the same host over the same kind of connection, as
               many at once as there are terminals: TCP, framing and ISO 8583 packing
               with no issuer work
  bridge       the same terminals calling the in-process issuer directly, on the same
               database, just before: the bridge's added latency is the difference of
               the p99s and their ratio
A single-thread profile of one purchase all the way (terminal, ISO 8583 both ways,
issuer) says where the time goes.

`python -m benchmarks.throughput` measures this part alone and puts its section in
docs/benchmarks.md in place of the last one; `make bench` runs it with the rest.
`python -m benchmarks.throughput --bridge` measures the bridge's rows alone and puts
only their table in place (in the section, or at the end of the file without one)."""
import asyncio
import contextlib
import cProfile
import datetime
import hashlib
import logging
import os
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from posbridge.issuer import Issuer, Ledger, Policy
from posbridge.issuer.demo_data import DEMO_BDK, DEMO_BDK_ID
from posbridge.link import iso8583_framing as framing
from posbridge.link import iso8583_map as m
from posbridge.link import iso8583_spec as spec
from posbridge.link.protocol import PURCHASE_REQUEST, PURCHASE_RESPONSE
from posbridge.load import fleet as fleet_module
from posbridge.load.cli import bridge_target, run_load
from posbridge.load.targets import InProcessTarget, Iso8583Target

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Throughput"
DURATION_S = float(os.environ.get("BENCH_THROUGHPUT_S", "4"))
TERMINALS = (1, 8, 32, 256)
BOARDS = (1, 8, 32)
BRIDGE_SECTION = "### Through the bridge"
MAX_CONNECTIONS = 8         # TCP connections to a host, each shared by its terminals
POSTGRES = os.environ.get("POSBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


# ---- baselines -------------------------------------------------------------------

def terminal_work_rate(seconds: float = 1.0) -> float:
    """Purchases a second one thread builds and checks the answer of, with no issuer:
    the answer is one the issuer made once, re-checked each time (the same MAC work)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "issuer.sqlite"
        ledger = Ledger.create(path)
        [terminal] = fleet_module.provision(ledger, 1)
        ledger.close()
        issuer = Issuer(Ledger.open(path), Policy())
        try:
            pending = terminal.purchase(1000, int(time.time()))
            answer = issuer.handle(PURCHASE_REQUEST, pending.body)
        finally:
            issuer.close()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        terminal.purchase(1000, int(time.time()))
        terminal.check(answer, pending)
        done += 1
    return done / (time.perf_counter() - start)


def echo_rate(host: str, port: int, concurrent: int, seconds: float = 2.0) -> float:
    """0800 echo tests answered a second by the host, `concurrent` in flight on one
    connection, closed loop."""
    async def run():
        reader, writer = await asyncio.open_connection(host, port)
        waiting, stan, done = {}, 0, 0
        deadline = time.perf_counter() + seconds

        async def read():
            while True:
                data = await framing.read_message(reader, 10)
                if data is None:
                    return
                iso = spec.unpack(data)
                future = waiting.pop(iso.get("11"), None)
                if future is not None:
                    future.set_result(iso)

        async def one_loop():
            nonlocal stan, done
            loop = asyncio.get_running_loop()
            while time.perf_counter() < deadline:
                stan = stan % 999_999 + 1
                iso = m.network(spec.ECHO_TEST, stan, time.time())
                future = loop.create_future()
                waiting[iso["11"]] = future
                writer.write(framing.frame(spec.pack(iso)))
                await future
                done += 1
        reading = asyncio.ensure_future(read())
        start = time.perf_counter()
        await asyncio.gather(*(one_loop() for _ in range(concurrent)))
        elapsed = time.perf_counter() - start
        reading.cancel()
        writer.close()
        return done / elapsed
    return asyncio.run(run())


# ---- the databases and the hosts ----------------------------------------------------

@contextlib.contextmanager
def database(kind: str, tmp: Path):
    """(location, keys) of a new, empty issuer database whose key store holds the test
    key set (before any host reads it); a PostgreSQL one is dropped after."""
    keys = tmp / f"{kind}-{secrets.token_hex(3)}.keys"
    if kind == "SQLite":
        location = tmp / f"issuer-{secrets.token_hex(3)}.sqlite"
    else:
        location = f"{POSTGRES}/posbridge_bench_{secrets.token_hex(4)}"
    ledger = Ledger.create(location, keys=keys, force=True)
    ledger.keys.import_bdk(DEMO_BDK_ID, DEMO_BDK, "X9.24-3 test BDK")
    ledger.close()
    if kind == "SQLite":
        yield location, keys
        return
    from posbridge.issuer import postgres
    try:
        yield location, keys
    finally:
        postgres.drop_database(location)


@contextlib.contextmanager
def hosts(location, keys, count: int = 1):
    """`count` `posbridge issuer serve` processes on the database: their URLs. What
    they log goes to a file (a pipe nobody reads would stop them once full)."""
    processes, urls = [], []
    with tempfile.TemporaryDirectory() as logs:
        try:
            for i in range(count):
                out = Path(logs) / f"host-{i}.log"
                with out.open("w") as sink:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", "posbridge.cli", "-q", "issuer", "--db",
                         str(location), "--keys", str(keys), "serve", "--listen",
                         "127.0.0.1:0"], stdout=sink, stderr=subprocess.STDOUT, text=True))
                urls.append("iso8583://" + _listening(out, processes[-1]))
            yield urls
        finally:
            for p in processes:
                p.terminate()
            for p in processes:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for log in Path(logs).glob("*.log"):
                warnings = [line for line in log.read_text().splitlines()
                            if "listening on" not in line]
                if warnings:
                    print(f"{log.name}: {len(warnings)} lines logged, first: {warnings[0]}",
                          file=sys.stderr)


def _listening(out: Path, process, timeout: float = 30.0) -> str:
    """HOST:PORT from the host's "listening on HOST:PORT" line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in out.read_text().splitlines():
            if line.startswith("listening on "):
                return line.split()[-1]
        if process.poll() is not None:
            raise RuntimeError(f"issuer serve ended: {out.read_text()[-300:]}")
        time.sleep(0.05)
    raise RuntimeError("issuer serve did not start listening")


def postgres_reachable() -> "str | None":
    """None if the PostgreSQL server can be used, else why not."""
    try:
        import psycopg
        with psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3):
            return None
    except Exception as exc:              # noqa: BLE001 - any failure: no PostgreSQL rows
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---- the runs ----------------------------------------------------------------------

def one_run(location, keys, terminals: int, make_target):
    figures, audit = run_load(location, keys, terminals, make_target, duration_s=DURATION_S)
    if not audit.ok:
        raise RuntimeError(f"benchmark run failed its audit: {audit.problems[:3]}")
    return figures, audit


def measure() -> dict:
    logging.getLogger("posbridge").setLevel(logging.WARNING)
    load_before = os.getloadavg()[0]
    rows = []
    baseline_terminal = terminal_work_rate()
    no_postgres = postgres_reachable()
    kinds = ["SQLite"] + ([] if no_postgres else ["PostgreSQL"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in kinds:
            for n in TERMINALS[:2]:         # one issuer lock: more terminals only queue
                with database(kind, tmp) as (location, keys):
                    figures, audit = one_run(location, keys, n, lambda: InProcessTarget(
                        Issuer(Ledger.open(location, keys), Policy())))
                rows.append(_row(f"in process, {kind}", n, 1, figures, audit,
                                 baseline_terminal, "terminal work alone"))
        for kind in kinds:
            for n in TERMINALS:
                with database(kind, tmp) as (location, keys), hosts(location, keys) as urls:
                    base = echo_rate(*_address(urls[0]), n)
                    connections = min(MAX_CONNECTIONS, max(1, n // 8))
                    figures, audit = one_run(location, keys, n,
                                             lambda: Iso8583Target(urls, connections))
                rows.append(_row(f"ISO 8583 host, {kind}", n, 1, figures, audit, base,
                                 "0800 echo, same host"))
        if not no_postgres:
            n = 32
            with database("PostgreSQL", tmp) as (location, keys), \
                    hosts(location, keys, 2) as urls:
                base = sum(echo_rate(*_address(u), n // 2) for u in urls)
                figures, audit = one_run(location, keys, n,
                                         lambda: Iso8583Target(urls, 4))
            rows.append(_row("two ISO 8583 hosts, one PostgreSQL", n, 2, figures, audit,
                             base, "0800 echo, both hosts"))
        bridge = measure_bridge(tmp)
    return {"rows": rows, "baseline_terminal": baseline_terminal,
            "load": (load_before, os.getloadavg()[0]), "bridge": bridge,
            "no_postgres": no_postgres, "profile": profile_one_purchase()}


def measure_bridge(tmp: Path) -> "list[dict]":
    """For each board count: the terminals against the in-process issuer directly, then
    as boards through the bridge to an issuer on the same database (SQLite)."""
    rows = []
    for n in BOARDS:
        with database("SQLite", tmp) as (location, keys):
            direct, _ = one_run(location, keys, n, lambda: InProcessTarget(
                Issuer(Ledger.open(location, keys), Policy())))
            bridged, audit = one_run(location, keys, n,
                                     lambda: bridge_target(location, keys))
        rows.append({"boards": n, "rate": bridged.rate, "p50": bridged.percentile(50),
                     "p99": bridged.percentile(99),
                     "errors": sum(bridged.errors.values()),
                     "double": audit.double, "lost": audit.lost + audit.unseen,
                     "direct_rate": direct.rate, "direct_p50": direct.percentile(50),
                     "direct_p99": direct.percentile(99)})
    return rows


def bridge_markdown(rows) -> "list[str]":
    lines = [
        BRIDGE_SECTION,
        "",
        f"Simulated boards, each on a pseudo-terminal pair of its own, over the "
        f"board-bridge link (COBS frames, stop-and-wait with ACKs, CBOR, HELLO first) to "
        f"one bridge in the load generator's process serving every port, its issuer in "
        f"process on SQLite; {DURATION_S:.0f} s a run, audited. Baseline: the same number "
        f"of terminals calling that issuer directly (no link, no bridge), on the same "
        f"database, just before. Added p50 and p99: the bridge's less the direct run's. "
        f"The bridge, its links and the simulated boards share the load generator's "
        f"process, so the rate ratio counts their CPU too. A negative added p99 is a "
        f"direct run whose tail is the longer: all its terminals wait at the issuer's "
        f"one lock, which does not serve them in turn; through the bridge part of each "
        f"board's time is on its link, so fewer wait there at once (the likely reason, "
        f"not measured apart).",
        "",
        "| boards | authorisations/s | p50 / p99 (ms) | errors | direct /s | direct p50 / "
        "p99 (ms) | rate ratio | added p50 / p99 (ms) | p99 ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['boards']} | {r['rate']:,.0f} | {r['p50']:.1f} / {r['p99']:.1f} | "
            f"{r['errors']} | {r['direct_rate']:,.0f} | {r['direct_p50']:.1f} / "
            f"{r['direct_p99']:.1f} | {r['rate'] / r['direct_rate']:.2f} | "
            f"{r['p50'] - r['direct_p50']:+.1f} / {r['p99'] - r['direct_p99']:+.1f} | "
            f"{r['p99'] / r['direct_p99']:.2f} |")
    return lines + [""]


def _address(url: str):
    host, port = url[len("iso8583://"):].rsplit(":", 1)
    return host, int(port)


def _row(where, terminals, hosts_, figures, audit, baseline, baseline_is):
    return {"where": where, "terminals": terminals, "hosts": hosts_,
            "rate": figures.rate, "p50": figures.percentile(50),
            "p90": figures.percentile(90), "p99": figures.percentile(99),
            "errors": sum(figures.errors.values()), "answered": figures.answered,
            "double": audit.double, "lost": audit.lost + audit.unseen,
            "baseline": baseline, "baseline_is": baseline_is}


# ---- where the time goes -------------------------------------------------------------

_ISSUER_PARTS = [
    # (label, the functions whose cumulative time it is), inside Issuer.handle
    ("SQL statements (SQLite, COMMIT included)",
     [("<method 'execute' of 'sqlite3.Connection' objects>",)]),
    ("DUKPT derivations from the BDK", [("dukpt.py", "derive_transaction_key")]),
    ("PIN verification (format 4 block, IBM 3624 offset)", [("keystore.py", "verify_pin")]),
    ("CBOR and its schema checks (request parsed, answer built)",
     [("cbor_profile.py", "encode"), ("cbor_profile.py", "decode"), ("protocol.py", "_read")]),
]


def profile_one_purchase(count: int = 300) -> dict:
    """One thread, one purchase after another, everything a purchase costs between the
    terminal and the ledger (SQLite) and back, ISO 8583 both ways, no socket: each
    stage timed, the COMMIT's fsync measured by the same purchases without it
    (synchronous = OFF, for this measurement only), and the issuer's own time split by
    a profile."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "issuer.sqlite"
        ledger = Ledger.create(path)
        [terminal] = fleet_module.provision(ledger, 1)
        ledger.close()
        issuer = Issuer(Ledger.open(path), Policy())
        clock = time.perf_counter
        stages = {"terminal": 0.0, "iso": 0.0, "issuer": 0.0}

        def purchase():
            t0 = clock()
            pending = terminal.purchase(1000, int(time.time()))
            t1 = clock()
            iso = spec.unpack(spec.pack(m.request_to_iso(PURCHASE_REQUEST, pending.body)))
            mtype, body = m.iso_to_request(iso)
            t2 = clock()
            response = issuer.handle(mtype, body)
            t3 = clock()
            answer = m.response_to_iso(PURCHASE_RESPONSE, response, iso)
            _, response = m.iso_to_response(spec.unpack(spec.pack(answer)),
                                            hashlib.sha256(pending.body).digest())
            t4 = clock()
            terminal.check(response, pending)
            t5 = clock()
            stages["terminal"] += (t1 - t0) + (t5 - t4)
            stages["iso"] += (t2 - t1) + (t4 - t3)
            stages["issuer"] += t3 - t2
        try:
            for _ in range(20):
                purchase()
            stages.update(dict.fromkeys(stages, 0.0))
            for _ in range(count):
                purchase()
            timed = {k: v / count * 1000 for k, v in stages.items()}
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                pending = terminal.purchase(1000, int(time.time()))
                issuer.handle(PURCHASE_REQUEST, pending.body)
            profiler.disable()
            issuer.ledger.execute("PRAGMA synchronous = OFF")
            stages.update(dict.fromkeys(stages, 0.0))
            for _ in range(count):
                purchase()
            no_fsync_ms = stages["issuer"] / count * 1000
        finally:
            issuer.close()
    stats = pstats.Stats(profiler).stats
    handle = next(ct for (f, _, name), (_, _, _, ct, _) in stats.items()
                  if name == "handle" and f.endswith("service.py"))
    parts = []
    for label, names in _ISSUER_PARTS:
        cumulative = 0.0
        for (filename, _, function), (_, _, _, ct, _) in stats.items():
            for name in names:
                if (len(name) == 1 and function == name[0]) or \
                        (len(name) == 2 and filename.endswith(name[0]) and function == name[1]):
                    cumulative += ct       # a recursion's inner calls are not in it
        parts.append((label, cumulative / handle))
    return {"stages_ms": timed, "fsync_ms": timed["issuer"] - no_fsync_ms, "parts": parts}


# ---- the section ----------------------------------------------------------------------

def markdown(result: dict) -> "list[str]":
    lines = [
        SECTION,
        "",
        f"`posbridge load` on {datetime.date.today()}, {os.cpu_count()} cores "
        f"({sys.platform}, Python {sys.version.split()[0]}), {DURATION_S:.0f} s a run, "
        "every run audited (double and lost charges: 0 or the bench fails). The load "
        "generator shares the machine with the hosts; PostgreSQL is the local server. "
        "Each simulated terminal sends a purchase, checks its answer, sends the next. "
        f"Load average {result['load'][0]:.1f} before the runs, {result['load'][1]:.1f} "
        "after: other work on the machine takes its share of the cores and of the "
        "disk's fsyncs, which is why the baselines of the same run are the measure.",
        "",
        "| issuer | terminals | authorisations/s | p50 / p90 / p99 (ms) | errors | "
        "baseline (/s) | ratio | baseline is |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    best = max(result["rows"], key=lambda r: r["rate"])
    for r in result["rows"]:
        lines.append(
            f"| {r['where']} | {r['terminals']} | {r['rate']:,.0f} | "
            f"{r['p50']:.1f} / {r['p90']:.1f} / {r['p99']:.1f} | {r['errors']} | "
            f"{r['baseline']:,.0f} | {r['rate'] / r['baseline']:.2f} | {r['baseline_is']} |")
    if result["no_postgres"]:
        lines += ["", f"No PostgreSQL rows: {result['no_postgres']}."]
    profile = result["profile"]
    stages = profile["stages_ms"]
    total = sum(stages.values())
    lines += [
        "",
        f"Best rate: **{best['rate']:,.0f} authorisations a second** ({best['where']}, "
        f"{best['terminals']} terminals).",
        "",
        f"Where the time of one purchase goes: {total:.2f} ms for all of it in one thread "
        "(terminal, ISO 8583 both ways, issuer on SQLite, no socket), each stage timed:",
        "",
        "| stage | ms | share |",
        "|---|---:|---:|",
        f"| terminal: request built (3 DUKPT keys, PIN block, CMAC, CBOR), answer checked "
        f"| {stages['terminal']:.3f} | {stages['terminal'] / total:.0%} |",
        f"| ISO 8583: CBOR to fields and packed, unpacked and back, both ways "
        f"| {stages['iso']:.3f} | {stages['iso'] / total:.0%} |",
        f"| issuer (Issuer.handle) | {stages['issuer']:.3f} | "
        f"{stages['issuer'] / total:.0%} |",
        f"| of which the COMMIT's fsync (the same purchases with synchronous = OFF) "
        f"| {profile['fsync_ms']:.3f} | {profile['fsync_ms'] / total:.0%} |",
        "",
        "Inside the issuer, shares of its profiled time (cProfile weighs Python code "
        "above C code such as AES, so these over-state CBOR and under-state SQL):",
        "",
        "| part of Issuer.handle | share |",
        "|---|---:|",
    ]
    for label, share in profile["parts"]:
        lines.append(f"| {label} | {share:.0%} |")
    return lines + [""] + bridge_markdown(result["bridge"])


def main():
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if "--bridge" in sys.argv[1:]:
        logging.getLogger("posbridge").setLevel(logging.WARNING)
        with tempfile.TemporaryDirectory() as tmp:
            lines = bridge_markdown(measure_bridge(Path(tmp)))
        print("\n".join(lines))
        doc.write_text(_in_place(text, BRIDGE_SECTION, lines))
        return
    lines = markdown(measure())
    print("\n".join(lines))
    if SECTION in text:
        text = text[:text.index(SECTION)]
    doc.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))


def _in_place(text: str, heading: str, lines) -> str:
    """`text` with the part from `heading` to the next heading of its level or above
    replaced by `lines` (appended when there is no such part)."""
    block = "\n".join(lines).rstrip("\n") + "\n"
    if heading not in text:
        return text.rstrip("\n") + "\n\n" + block
    start = text.index(heading)
    ends = [text.find(f"\n{h} ", start + len(heading)) for h in ("##", "###")]
    ends = [e for e in ends if e >= 0]
    end = min(ends) + 1 if ends else len(text)
    return text[:start] + block + ("\n" + text[end:] if end < len(text) else "")


if __name__ == "__main__":
    main()
