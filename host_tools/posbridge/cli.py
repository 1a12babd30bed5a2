"""posbridge: the PC side of the POS terminal.

    posbridge serve --port PORT [--port PORT2 ...] [--upstream iso8583://HOST:PORT]
                                      bridge boards on serial ports, to the in-process
                                      issuer or to an ISO 8583 host
    posbridge monitor --tap PATH      print the frames and ISO 8583 messages of a bridge
                                      started with serve --tap PATH, decoded and masked
    posbridge emulate [--link PATH]   run the real firmware under MicroPython
    posbridge console [--port 8080] [--upstream iso8583://HOST:PORT --issuer-db PATH]
                                      the emulated terminal in a browser page
    posbridge firmware build          precompile the firmware to .mpy
    posbridge firmware deploy         copy it (and a terminal's records) to a board
    posbridge provision               a terminal's identity and DUKPT key registers
"""
import contextlib
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

import click
from click.core import ParameterSource

from . import __version__
from .bridge import Bridge, serve_boards
from .console import console, log_frame, print_screen, setup_logging
from .board.emulator import Emulator, EmulatorError, FIRMWARE_DIR, attach_link_path
from .issuer.cli.common import DATABASE
from .link.host_link import HostLink, LinkClosed
from .ports import PortError, open_port

log = logging.getLogger("posbridge")


@click.group()
@click.version_option(__version__)
@click.option("-v", "--verbose", is_flag=True, help="Log link counters and debug detail.")
@click.option("-q", "--quiet", is_flag=True,
              help="Log warnings and errors only (a host under load: a line per "
                   "request costs more than the request).")
def main(verbose, quiet):
    """PC side of the ESP32 POS terminal."""
    setup_logging(verbose, quiet)


def _stop_on_signals(stop: threading.Event):
    def handler(signum, frame):
        stop.set()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _open_issuer(db, keys=None):
    from .issuer import Issuer
    from .issuer.errors import LedgerError
    try:
        return Issuer.open(db, keys=keys)
    except (LedgerError, ValueError) as exc:     # ValueError: POSBRIDGE_ISSUER_POLICY / _FAULTS
        raise click.ClickException(str(exc))


@main.command()
@click.option("--port", "ports", required=True, multiple=True,
              help="Serial device, pseudo-terminal or pyserial URL of a board; repeat "
                   "for more boards, each with its own terminal id.")
@click.option("--baud", default=115200, show_default=True)
@click.option("--status-interval", default=30.0, show_default=True,
              help="Seconds between liveness checks of the board (0: never).")
@click.option("--upstream", default=None,
              help="iso8583://HOST:PORT: the issuer is an ISO 8583 host there "
                   "(posbridge issuer serve); without it, the issuer runs in this process "
                   "on --issuer-db.")
@click.option("--upstream-timeout", default=10.0, show_default=True,
              type=click.FloatRange(0.1, 14.0),
              help="Seconds to wait for the ISO 8583 host's answer; then the board gets "
                   "ERROR 5 (it reverses a purchase). Under the board's 15 s, so that "
                   "the board hears why.")
@click.option("--echo-interval", default=30.0, show_default=True,
              type=click.FloatRange(0.1, None),
              help="Seconds of silence from the ISO 8583 host before an echo test.")
@click.option("--issuer-db", type=DATABASE, default="var/issuer.sqlite",
              envvar="POSBRIDGE_ISSUER_DB", show_default=True,
              help="The issuer simulator's database: a SQLite file or postgresql://... "
                   "(posbridge issuer init makes one).")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), default=None,
              envvar="POSBRIDGE_ISSUER_KEYS",
              help="The issuer's key store (default: beside the database, var/issuer.keys).")
@click.option("--tap", "tap_path", type=click.Path(dir_okay=False), default=None,
              help="Publish a copy of every serial byte and ISO 8583 message on this Unix "
                   "socket (owner only) for posbridge monitor. A monitor never slows the "
                   "bridge: one that does not keep up loses records, counted.")
def serve(ports, baud, status_interval, upstream, upstream_timeout, echo_interval,
          issuer_db, issuer_keys, tap_path):
    """Bridge the boards on the --port(s) to the issuer."""
    stack = contextlib.ExitStack()
    with stack:
        tap = _open_tap(stack, tap_path)
        links = []
        for port in ports:
            try:
                serial_port = open_port(port, baud)
            except PortError as exc:
                raise click.ClickException(str(exc))
            stack.callback(serial_port.close)
            link = HostLink(serial_port, frame_log=log_frame,
                            wire_tap=tap.serial(port) if tap else None).start()
            stack.callback(link.close)
            links.append((port, link))
        issuer = _bridge_issuer(stack, upstream, upstream_timeout, echo_interval,
                                issuer_db, issuer_keys, tap)
        stop = threading.Event()
        _stop_on_signals(stop)
        log.info("bridge on %s at %d baud; Ctrl-C stops", ", ".join(ports), baud)
        lost = serve_boards(links, issuer, stop, status_interval or None)
        if lost and len(ports) == 1:
            raise click.ClickException(f"lost the board: {lost[0]}")
    log.info("bridge stopped")


def _open_tap(stack, path):
    if path is None:
        return None
    from .tap import Tap
    try:
        tap = Tap(path).start()
    except OSError as exc:
        raise click.ClickException(f"cannot open the tap at {path}: {exc.strerror or exc}")
    stack.callback(tap.close)
    log.info("tap on %s: posbridge monitor --tap %s", path, path)
    return tap


def _bridge_issuer(stack, upstream, timeout, echo_interval, issuer_db, issuer_keys,
                   tap=None):
    """The issuer the bridges hand requests to: the ISO 8583 host at `upstream`, or
    the in-process issuer on `issuer_db`."""
    if upstream is None:
        issuer = _open_issuer(issuer_db, issuer_keys)
        stack.callback(issuer.close)
        return issuer
    from .upstream import Upstream, parse_url
    try:
        host, port = parse_url(upstream)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--upstream")
    client = Upstream(host, port, timeout=timeout, echo_interval=echo_interval,
                      tap=tap.iso(f"{host}:{port}") if tap else None).start()
    stack.callback(client.close)
    return client


@main.command()
@click.option("--tap", "tap_path", required=True, type=click.Path(dir_okay=False),
              help="The Unix socket of a bridge started with posbridge serve --tap.")
@click.option("--once", is_flag=True,
              help="Stop when the tap closes (default: wait for the bridge to come back).")
@click.option("--acks", is_flag=True, help="Show the link's ACK frames too.")
def monitor(tap_path, once, acks):
    """Print the board link's frames and the ISO 8583 messages of a bridge as they
    happen: fields named, the PAN masked, the PIN block and the ICC data as their length
    only, garbled frames said to be so."""
    from . import monitor as frame_monitor
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        seen = frame_monitor.run(tap_path, console, stop, once=once, acks=acks)
    except OSError as exc:
        raise click.ClickException(f"no tap at {tap_path}: {exc.strerror or exc}")
    console.print(seen.summary(), highlight=False)


@main.command()
@click.option("--link", "link_alias", type=click.Path(dir_okay=False),
              help="Put the board's host link on this path (a symlink to its tty) and "
                   "start no bridge: attach any bridge to it (posbridge serve --port PATH).")
@click.option("--scenario", type=click.Path(exists=True, dir_okay=False),
              help="JSON steps to run; without it the emulator runs until Ctrl-C. With "
                   "--link the steps drive the board's card reader and PIN pad and read its "
                   "screen; steps on the bridge or issuer (status, outbox, journal, "
                   "issuer_fault) are refused.")
@click.option("--heap", default="64k", show_default=True, help="MicroPython heap size.")
@click.option("--baud", type=click.IntRange(300, 4_000_000), default=None,
              help="Pace the host link at this rate, 8N1, both ways, like the board's "
                   "USB-UART (115200); default: as fast as the pty goes.")
@click.option("--terminal-id", default=None, help="Terminal id the board reports.")
@click.option("--screens", "screens_dir", type=click.Path(file_okay=False),
              help="Save every screen the firmware shows as a PNG in this directory.")
@click.option("--issuer-db", type=DATABASE, envvar="POSBRIDGE_ISSUER_DB",
              help="Issuer database to use; default: a fresh one with the demo data.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), default=None,
              envvar="POSBRIDGE_ISSUER_KEYS",
              help="The issuer's key store (default: beside the database, var/issuer.keys).")
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False),
              default=str(FIRMWARE_DIR), show_default=True)
def emulate(link_alias, scenario, heap, baud, terminal_id, screens_dir, issuer_db, issuer_keys,
            firmware_dir):
    """Run the real firmware under MicroPython with virtual peripherals."""
    from .scenario import Scenario, ScenarioError

    if link_alias and issuer_db and click.get_current_context().get_parameter_source(
            "issuer_db") is ParameterSource.COMMANDLINE:
        raise click.ClickException("--issuer-db has no use with --link: the bridge attached "
                                   "to the link has the issuer (posbridge serve --issuer-db)")
    try:
        steps = Scenario.load(scenario) if scenario else None
        if steps is not None and link_alias:
            steps.check_without_bridge()    # before the board starts, not half-way through
    except ScenarioError as exc:
        raise click.ClickException(str(exc))
    emulator = Emulator(Path(firmware_dir), heap=heap, terminal_id=terminal_id,
                        on_screen=_screen_printer(screens_dir), baud=baud)
    stop = threading.Event()
    _stop_on_signals(stop)
    stack = contextlib.ExitStack()
    try:
        link_path = emulator.start()
    except EmulatorError as exc:
        raise click.ClickException(str(exc))
    try:
        if link_alias:
            # the virtual cards come from the key store of the issuer the other
            # process runs, when it is found
            emulator.card_keys = _card_keys(issuer_keys)
            attach_link_path(link_path, link_alias)
            log.info("board's host link is on %s (-> %s); attach a bridge: "
                     "posbridge serve --port %s", link_alias, link_path, link_alias)
            if steps is None:
                stop.wait()
            else:
                steps.run(emulator, None, stop)
            return
        issuer = (_open_issuer(issuer_db, issuer_keys) if issuer_db
                  else _demo_issuer(stack, terminal_id))
        emulator.card_keys = issuer.ledger.keys       # personalises the virtual cards
        port = open_port(link_path)
        link = HostLink(port, frame_log=log_frame).start()
        bridge = Bridge(link, issuer=issuer)
        serving = threading.Thread(target=_serve_until_closed, args=(bridge, stop), daemon=True)
        serving.start()
        try:
            if steps is None:
                log.info("emulated board running; Ctrl-C stops")
                stop.wait()
            else:
                steps.run(emulator, bridge, stop)
        finally:
            stop.set()
            serving.join(timeout=2)
            link.close()
            port.close()
    except (EmulatorError, ScenarioError, PortError) as exc:
        raise click.ClickException(str(exc))
    finally:
        emulator.stop()
        stack.close()
        if link_alias:
            Path(link_alias).unlink(missing_ok=True)


@main.command("console")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port of the page (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anyone who can reach it can use the terminal: "
                   "keep it on this machine unless you mean otherwise.")
@click.option("--heap", default="64k", show_default=True, help="MicroPython heap size.")
@click.option("--issuer-db", type=click.Path(dir_okay=False), envvar="POSBRIDGE_ISSUER_DB",
              help="Issuer database to use; default: a fresh one with the demo data.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), default=None,
              envvar="POSBRIDGE_ISSUER_KEYS",
              help="The issuer's key store (default: beside the database, var/issuer.keys).")
@click.option("--upstream", default=None,
              help="iso8583://HOST:PORT: the board's requests go to the ISO 8583 host "
                   "there (posbridge issuer serve); --issuer-db then names that host's "
                   "database, read for the card list and the phone.")
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False),
              default=str(FIRMWARE_DIR), show_default=True)
def console_command(port, host, heap, issuer_db, issuer_keys, upstream, firmware_dir):
    """The emulated terminal in a browser page: its display, PIN pad and card reader,
    the cardholder's phone, the link's messages, issuer faults and power cuts."""
    from .web.run import run
    from .web.server import PortInUse

    def listening(address, bound_port):
        shown = f"[{address}]" if ":" in address else address
        console.print(f"POS console on http://{shown}:{bound_port}/  (Ctrl-C stops)")
        if address not in ("127.0.0.1", "::1", "localhost"):
            console.print(f"[bold yellow]listening on {address}: anyone who can reach "
                          "this machine can use the terminal[/]")

    with contextlib.ExitStack() as stack:
        if upstream:
            issuer = _console_upstream(stack, upstream, issuer_db, issuer_keys)
        elif issuer_db:
            issuer = _open_issuer(issuer_db, issuer_keys)
            stack.callback(issuer.close)
        else:
            issuer = _demo_issuer(stack)
        try:
            run(issuer, host, port, listening, heap=heap, firmware_dir=Path(firmware_dir))
        except PortInUse as exc:
            raise click.ClickException(str(exc))
        except (EmulatorError, PortError) as exc:
            raise click.ClickException(f"the emulated board did not start: {exc}")
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    log.info("console stopped")


def _console_upstream(stack, upstream, issuer_db, issuer_keys):
    """The console's issuer behind the ISO 8583 host at `upstream`, whose database
    `issuer_db` gives the cards and the phone's alerts."""
    from .issuer.errors import LedgerError
    from .issuer.ledger import Ledger
    from .upstream import Upstream, parse_url
    from .web.upstream_issuer import UpstreamIssuer
    try:
        host, port = parse_url(upstream)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--upstream")
    if not issuer_db:
        raise click.UsageError("--upstream needs --issuer-db: the database of the ISO 8583 "
                               "host, for the cards the page lists and the phone's alerts")
    try:
        ledger = Ledger.open(issuer_db, keys=issuer_keys)
    except LedgerError as exc:
        raise click.ClickException(str(exc))
    stack.callback(ledger.close)
    client = Upstream(host, port).start()
    stack.callback(client.close)
    log.info("console: the issuer is the ISO 8583 host at %s:%d", host, port)
    return UpstreamIssuer(client, ledger)


def _demo_issuer(stack, terminal_id=None):
    """A fresh issuer database with the demo data, gone when the emulator stops; the
    emulated board (`terminal_id`, else the demo's) registered with the demo key."""
    from .issuer.demo_data import load_demo
    from .issuer.ledger import Ledger
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="pos-issuer-"))
    path = Path(tmp) / "issuer.sqlite"
    ledger = Ledger.create(path)
    if terminal_id:
        load_demo(ledger, terminal_id)
    else:
        load_demo(ledger)
    ledger.close()
    issuer = _open_issuer(path)
    stack.callback(issuer.close)
    return issuer


def _card_keys(issuer_keys):
    """The issuer's key store at `issuer_keys` (default var/issuer.keys), or None when
    there is none: a tap then says so."""
    from .issuer.keystore import KeyStore, KeyStoreError, path_beside
    from .issuer.ledger import DEFAULT_PATH
    try:
        return KeyStore.open(issuer_keys or path_beside(DEFAULT_PATH))
    except KeyStoreError as exc:
        log.warning("no contactless cards: %s", exc)
        return None


def _screen_printer(screens_dir):
    count = [0]

    def show(screen):
        print_screen(screen)
        if screens_dir:
            from .board.screen_png import save
            count[0] += 1
            name = f"{count[0]:03d}-{_slug(screen.lines)}.png"
            save(screen.framebuffer, Path(screens_dir) / name)
    return show


def _slug(lines):
    words = "-".join(line.strip() for line in lines[1:4] if line.strip()) or "screen"
    return "".join(c if c.isalnum() else "-" for c in words.lower())[:32].strip("-")


def _serve_until_closed(bridge, stop):
    try:
        bridge.serve(stop)
    except LinkClosed as exc:
        if not stop.is_set():
            log.error("bridge lost the board: %s", exc)
            stop.set()


@main.group()
def firmware():
    """Firmware build and deployment."""


@firmware.command("build")
@click.option("--out", default="build", show_default=True, type=click.Path(file_okay=False))
@click.option("--firmware", "firmware_dir", type=click.Path(file_okay=False),
              default=str(FIRMWARE_DIR), show_default=True)
def firmware_build(out, firmware_dir):
    """Precompile every firmware module to .mpy with mpy-cross."""
    from .board.firmware_build import BuildError, build

    try:
        result = build(Path(firmware_dir), Path(out))
    except BuildError as exc:
        raise click.ClickException(str(exc))
    for path, size in result.files:
        console.print(f"  {path.name:<20} {size:>6} bytes")
    console.print(f"{len(result.files)} modules, {result.total} bytes of .mpy in {out}/")


@firmware.command("deploy")
@click.option("--port", required=True, help="The board's serial port, e.g. /dev/ttyUSB0.")
@click.option("--build", "build_dir", default="build", show_default=True,
              type=click.Path(file_okay=False), help="Where posbridge firmware build wrote.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False),
              help="Records of posbridge provision to put on the board's flash too.")
def firmware_deploy(port, build_dir, state_dir):
    """Copy the built firmware (and the terminal's records) to a board, then reset it."""
    from .board.deploy import DeployError, deploy
    try:
        deploy(port, Path(build_dir), Path(state_dir) if state_dir else None)
    except DeployError as exc:
        raise click.ClickException(str(exc))
    console.print(f"firmware from {build_dir}/ on {port}"
                  + (f", with the records of {state_dir}/" if state_dir else "")
                  + "; board reset")


@main.command()
@click.option("--out", "state_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for terminal.json and keys.bin (the board's flash root).")
@click.option("--terminal-id", required=True, help="1 to 16 letters or digits.")
@click.option("--issuer-db", type=DATABASE, default="var/issuer.sqlite",
              envvar="POSBRIDGE_ISSUER_DB", show_default=True,
              help="The issuer database whose registry records the terminal; its key "
                   "store derives the terminal's key.")
@click.option("--issuer-keys", type=click.Path(dir_okay=False), default=None,
              envvar="POSBRIDGE_ISSUER_KEYS",
              help="The issuer's key store (default: beside the database, var/issuer.keys).")
@click.option("--bdk-id", default="12345678", show_default=True,
              help="Key set (8 hex digits) in the issuer's key store.")
@click.option("--derivation-id", required=True,
              help="8 hex digits, never issued before in the key set.")
@click.option("--merchant-id", default=None,
              help="ISO 8583 field 42, 1 to 15 characters (default: the terminal's "
                   "registered one, else the demo merchant's).")
@click.option("--merchant-name", default=None,
              help="1 to 22 characters, the name the cardholder's alerts show (default: "
                   "the terminal's registered one, else the demo merchant's).")
@click.option("--utc-offset", "utc_offset_min", type=int, default=480, show_default=True,
              help="The merchant's local time on the screen, minutes east of UTC "
                   "(480: UTC+8, the demo merchant's; -300: UTC-5).")
@click.option("--cvm-limit", type=int, default=100_000, show_default=True,
              help="Contactless CVM limit, minor units: a tapped purchase above it asks "
                   "for the PIN, at or below it none (100000: CNY 1,000.00).")
@click.option("--force", is_flag=True,
              help="Re-key a terminal already provisioned, with a new derivation ID.")
def provision(state_dir, terminal_id, issuer_db, issuer_keys, bdk_id, derivation_id,
              merchant_id, merchant_name, utc_offset_min, cvm_limit, force):
    """A terminal's records: its id and its DUKPT key registers, filled from its initial
    key, which the issuer's key store derives from its BDK for initial key ID = BDK ID |
    derivation ID (X9.24-3-2017), and its entry in the issuer's terminal registry. The
    BDK never leaves the key store, and the initial key never reaches the board: it gets
    the registers only. A derivation ID is issued once."""
    from .issuer import terminals
    from .issuer.errors import LedgerError
    from .issuer.keystore import UnknownKeySet
    from .issuer.ledger import Ledger
    from .board.provision import TEST_MERCHANT_ID, TEST_MERCHANT_NAME, ProvisionError
    from .board.provision import provision as write_records
    try:
        key_id = bytes.fromhex(bdk_id) + bytes.fromhex(derivation_id)
    except ValueError:
        raise click.ClickException("--bdk-id and --derivation-id: hex digits")
    if len(key_id) != 8:
        raise click.ClickException("--bdk-id and --derivation-id: 8 hex digits each")
    try:
        ledger = Ledger.open(issuer_db, keys=issuer_keys)
    except LedgerError as exc:                  # the key store's errors are LedgerErrors
        raise click.ClickException(str(exc))
    try:
        try:
            initial_key = ledger.keys.initial_key(key_id)
        except UnknownKeySet:
            raise click.ClickException(f"no key set {bdk_id.upper()} in "
                                       f"{ledger.keys.path}") from None
        known = terminals.find(ledger, terminal_id)
        merchant_id = merchant_id or (known.merchant_id if known else TEST_MERCHANT_ID)
        merchant_name = merchant_name or (known.merchant_name if known else TEST_MERCHANT_NAME)
        # the registry and the board's records together: a refusal of either (a
        # derivation ID issued before, a board already provisioned) leaves both as they were
        with ledger.transaction():
            terminals.register(ledger, terminal_id, key_id, merchant_id, merchant_name,
                               utc_offset_min=utc_offset_min, force=force)
            path = write_records(Path(state_dir), terminal_id, initial_key, key_id,
                                 merchant_id=merchant_id, merchant_name=merchant_name,
                                 utc_offset_min=utc_offset_min, force=force,
                                 cvm_limit=cvm_limit)
    except (LedgerError, ProvisionError) as exc:
        raise click.ClickException(str(exc))
    finally:
        ledger.close()
    console.print(f"terminal {terminal_id}: initial key ID {key_id.hex().upper()}, "
                  f"merchant {merchant_id} {merchant_name!r}, registered in {ledger.path}; "
                  f"records in {path.parent}/")


from .issuer.cli import issuer as _issuer_group  # noqa: E402  (after main exists)
from .load.cli import load as _load_command  # noqa: E402

main.add_command(_issuer_group)
main.add_command(_load_command)

if __name__ == "__main__":
    sys.exit(main())
