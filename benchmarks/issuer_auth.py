"""The cost of one authorisation at the issuer, in process: balance inquiries and
purchases with the demo data through Issuer.handle (MAC check, PIN check, journal,
posting, alert, response MAC), the PIN on file as an IBM 3624 offset under the key
store's PVK, and, in the same run, as the salted scrypt hash the issuer kept before
schema version 6 (what a migrated card still has at its first PIN). The requests are
built as the board builds them (tests/host/issuer/request_builder.py)."""
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "firmware", ROOT / "tests" / "firmware"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# the firmware modules the request builder runs import const from MicroPython's own
# module, which CPython lacks: the tests' stand-in, as tests/conftest.py installs it
from tests.cpython_shims import install_micropython_module  # noqa: E402

install_micropython_module()

from posbridge.issuer import Issuer, Ledger, Policy, cards  # noqa: E402
from posbridge.issuer.demo_data import DEMO_BDK, DEMO_BDK_ID, DEMO_PIN, load_demo  # noqa: E402
from posbridge.issuer.keystore import KeyStore  # noqa: E402
from posbridge.issuer.pins import hash_pin, verify_pin  # noqa: E402
from posbridge.link import cbor_profile  # noqa: E402
from posbridge.link.protocol import BALANCE_REQUEST, PURCHASE_REQUEST  # noqa: E402

from tests.host.issuer.request_builder import NOW, TerminalRequestBuilder  # noqa: E402

PAN = "4761730000000011"          # Li Wei: approved, an SMS sent for each
N_OFFSET = 300
N_SCRYPT = 60


def _summary(samples_s) -> dict:
    ms = sorted(s * 1000 for s in samples_s)
    return {"n": len(ms), "mean": statistics.fmean(ms), "p50": ms[len(ms) // 2],
            "p99": ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]}


def _authorisations(issuer, terminal, mtype, count, before_each=None):
    samples = []
    for _ in range(count):
        if before_each:
            before_each()
        if mtype == BALANCE_REQUEST:
            body, pending = terminal.request(PAN)
        else:
            body, pending = terminal.purchase(PAN, 1)    # CNY 0.01: within every limit
        t0 = time.perf_counter()
        response = issuer.handle(mtype, body)
        samples.append(time.perf_counter() - t0)
        code = terminal.check(response, pending)[3]
        if code != "00":
            raise RuntimeError(f"benchmark request answered {code}, not approved")
    return samples


def _pin_checks(count=N_SCRYPT) -> "dict[str, dict]":
    """The PIN check alone: the key store's (PIN block deciphered, offset computed and
    compared) against scrypt's verify at the cost hash_pin writes."""
    with tempfile.TemporaryDirectory(prefix="pos-bench-") as tmp:
        keys = KeyStore.create(Path(tmp) / "issuer.keys")
        keys.import_bdk(DEMO_BDK_ID, DEMO_BDK)
        reference = keys.pin_reference(DEMO_PIN, PAN)
        terminal = TerminalRequestBuilder()
        requests = [cbor_profile.decode(terminal.request(PAN)[0]) for _ in range(N_OFFSET)]
        offset = []
        for fields in requests:         # key 6: the KSN, key 5: the PIN block
            t0 = time.perf_counter()
            assert keys.verify_pin(fields[6], fields[5], PAN, reference).ok
            offset.append(time.perf_counter() - t0)
    stored = hash_pin(DEMO_PIN)
    scrypt = []
    for _ in range(count):
        t0 = time.perf_counter()
        assert verify_pin(DEMO_PIN, stored)
        scrypt.append(time.perf_counter() - t0)
    return {"offset": _summary(offset), "scrypt": _summary(scrypt)}


def measure() -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="pos-bench-") as tmp:
        db = Path(tmp) / "issuer.sqlite"
        ledger = Ledger.create(db)
        load_demo(ledger)
        ledger.close()
        # the issuer's clock a minute after the requests' own time (request_builder.NOW):
        # inside its time window, so that every request is authorised, not refused 68
        issuer = Issuer(Ledger.open(db), Policy(), clock=lambda: NOW + 60)
        terminal = TerminalRequestBuilder()
        try:
            for mtype, name in ((BALANCE_REQUEST, "balance inquiry"), (PURCHASE_REQUEST, "purchase")):
                _authorisations(issuer, terminal, mtype, 5)               # warm up
                out[("offset", name)] = _summary(
                    _authorisations(issuer, terminal, mtype, N_OFFSET))
            # the same card with its PIN as a scrypt hash, as before version 6: put back
            # before each request, since a right PIN replaces it by the offset
            card = issuer.ledger.card_by_pan(PAN)
            sealed = issuer.keys.seal_pin_hash(hash_pin(DEMO_PIN))

            def as_before():
                cards.set_pin_reference(issuer.ledger, card.id, sealed)
            for mtype, name in ((BALANCE_REQUEST, "balance inquiry"), (PURCHASE_REQUEST, "purchase")):
                out[("scrypt", name)] = _summary(
                    _authorisations(issuer, terminal, mtype, N_SCRYPT, as_before))
        finally:
            issuer.close()
    out["pin check"] = _pin_checks()
    return out


def markdown(figures: dict) -> "list[str]":
    lines = [
        "One authorisation at the issuer, in process (`benchmarks/issuer_auth.py`): the "
        "demo card 4761730000000011, approved with an SMS sent, through `Issuer.handle` "
        "(request MAC, PIN, journal, posting, alert, response MAC). The baseline is the "
        "same request in the same run with the PIN on file as the salted scrypt hash of "
        "schema version 5 and before (what a migrated card still has at its first PIN).",
        "",
        "| authorisation | PIN on file | n | mean (ms) | p50 (ms) | p99 (ms) | "
        "mean against scrypt |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("balance inquiry", "purchase"):
        base = figures[("scrypt", name)]
        for scheme, label in (("scrypt", "scrypt hash (before)"),
                              ("offset", "IBM 3624 offset under the PVK")):
            f = figures[(scheme, name)]
            lines.append(f"| {name} | {label} | {f['n']} | {f['mean']:.2f} | "
                         f"{f['p50']:.2f} | {f['p99']:.2f} | {f['mean'] / base['mean']:.3f} |")
    pin = figures["pin check"]
    lines += [
        "",
        "| the PIN check alone | n | mean (ms) | p50 (ms) | p99 (ms) | ratio |",
        "|---|---:|---:|---:|---:|---:|",
        f"| scrypt verify (N=2^14, r=8, p=1), the baseline | {pin['scrypt']['n']} | "
        f"{pin['scrypt']['mean']:.3f} | {pin['scrypt']['p50']:.3f} | "
        f"{pin['scrypt']['p99']:.3f} | 1 |",
        f"| key store: PIN block deciphered (DUKPT), offset computed and compared | "
        f"{pin['offset']['n']} | {pin['offset']['mean']:.3f} | {pin['offset']['p50']:.3f} | "
        f"{pin['offset']['p99']:.3f} | {pin['offset']['mean'] / pin['scrypt']['mean']:.4f} |",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(markdown(measure())))
