"""posbridge provision (a terminal's records from the issuer's key set) and
posbridge firmware deploy (mpremote, mocked: no board here)."""
import json
import subprocess

import pytest
from click.testing import CliRunner

from posbridge.cli import main
from posbridge.board.deploy import DeployError, deploy, deploy_command
from posbridge.issuer.demo_data import load_demo
from posbridge.issuer.ledger import Ledger
from posbridge.issuer.dukpt import derive_initial_key
from posbridge.board.provision import TEST_BDK, register_record


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])



def clean_failure(result, *fragments):
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def issuer_db(tmp_path):
    path = tmp_path / "issuer.sqlite"
    ledger = Ledger.create(path)
    load_demo(ledger)
    ledger.close()
    return path


def test_provision_derives_the_key_from_the_issuers_bdk(tmp_path, issuer_db):
    out = tmp_path / "board"
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-db", issuer_db, "--derivation-id", "90123457")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "terminal.json").read_text())
    key_id = bytes.fromhex("1234567890123457")
    key = derive_initial_key(TEST_BDK, key_id)
    assert record == {"terminal_id": "T0000002", "merchant_id": "104110070110001",
                      "merchant_name": "DEMO SHOP", "utc_offset_min": 480,
                      "cvm_limit": 100000}   # no key in it
    keys = (out / "keys.bin").read_bytes()
    assert keys == register_record(key, key_id) and key not in keys
    assert keys[1:17] == key_id + bytes.fromhex("00000001 00000000")
    assert sorted(p.name for p in out.iterdir()) == ["keys.bin", "terminal.json"]
    assert key.hex() not in result.output.lower()           # key material is not shown


def test_reprovisioning_needs_force_and_keeps_the_trace_number(tmp_path, issuer_db):
    out = tmp_path / "board"
    args = ["provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db", issuer_db]
    assert run(*args, "--derivation-id", "90123457").exit_code == 0
    used(out, 42, 41)
    clean_failure(run(*args, "--derivation-id", "90123458"), "registered already", "--force")
    assert run(*args, "--derivation-id", "90123458", "--force").exit_code == 0
    # a new key starts its counter; the trace goes on (the issuer knows trace numbers)
    key_id = bytes.fromhex("1234567890123458")
    assert (out / "keys.bin").read_bytes() == register_record(
        derive_initial_key(TEST_BDK, key_id), key_id, 1, 41)


def used(out, counter, trace):
    """keys.bin as the board leaves it with `counter` next and `trace` the last trace."""
    record = bytearray((out / "keys.bin").read_bytes())
    key_id = bytes(record[1:9])
    (out / "keys.bin").write_bytes(register_record(
        derive_initial_key(TEST_BDK, key_id), key_id, counter, trace))


@pytest.mark.parametrize("extra,fragment", [
    (["--derivation-id", "xyz"], "hex digits"),
    (["--derivation-id", "1234"], "8 hex digits"),
    (["--derivation-id", "90123457", "--bdk-id", "AAAAAAAA"], "no key set AAAAAAAA"),
    (["--derivation-id", "90123457", "--terminal-id", "T-1"], "terminal id"),
    (["--derivation-id", "90123457", "--utc-offset", "900"], "UTC offset"),
    (["--derivation-id", "90123457", "--utc-offset", "+08:00"], "--utc-offset"),
])
def test_provision_refuses_bad_values_clearly(tmp_path, issuer_db, extra, fragment):
    args = ["provision", "--out", tmp_path / "b", "--terminal-id", "T0000002",
            "--issuer-db", issuer_db] + extra
    clean_failure(run(*args), fragment)
    assert not (tmp_path / "b" / "terminal.json").exists()


@pytest.mark.parametrize("extra, offset", [([], 480), (["--utc-offset", "-300"], -300)])
def test_provision_writes_the_merchants_utc_offset(tmp_path, issuer_db, extra, offset):
    # the board's screen shows the merchant's local time from this, not the bridge PC's
    out = tmp_path / "board"
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-db", issuer_db, "--derivation-id", "90123457", *extra)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "terminal.json").read_text())["utc_offset_min"] == offset


@pytest.mark.parametrize("extra, limit", [([], 100000), (["--cvm-limit", "30000"], 30000),
                                          (["--cvm-limit", "0"], 0)])
def test_provision_writes_the_contactless_cvm_limit(tmp_path, issuer_db, extra, limit):
    out = tmp_path / "board"
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-db", issuer_db, "--derivation-id", "90123457", *extra)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "terminal.json").read_text())["cvm_limit"] == limit


def test_provision_refuses_a_negative_cvm_limit(tmp_path, issuer_db):
    clean_failure(run("provision", "--out", tmp_path / "b", "--terminal-id", "T0000002",
                      "--issuer-db", issuer_db, "--derivation-id", "90123457",
                      "--cvm-limit", "-1"), "CVM limit")
    assert not (tmp_path / "b" / "terminal.json").exists()


def test_provision_without_an_issuer_database(tmp_path):
    clean_failure(run("provision", "--out", tmp_path / "b", "--terminal-id", "T1",
                      "--issuer-db", tmp_path / "none.sqlite", "--derivation-id", "90123457"),
                  "no issuer database")


def test_provision_without_an_issuer_key_store(tmp_path, issuer_db):
    issuer_db.with_suffix(".keys").unlink()
    clean_failure(run("provision", "--out", tmp_path / "b", "--terminal-id", "T0000002",
                      "--issuer-db", issuer_db, "--derivation-id", "90123457"),
                  "no issuer key store at", "issuer.keys")
    assert not (tmp_path / "b" / "terminal.json").exists()


def test_provision_takes_the_key_store_it_is_given_and_writes_private_records(tmp_path,
                                                                            issuer_db):
    """The BDK is in the key store (--issuer-keys), not in the database (whose registry
    records the terminal); the records hold the terminal's key registers, so they are
    the owner's alone."""
    keys = tmp_path / "elsewhere.keys"
    issuer_db.with_suffix(".keys").rename(keys)
    out = tmp_path / "board"
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-db", issuer_db, "--issuer-keys", keys, "--derivation-id", "90123457")
    assert result.exit_code == 0, result.output
    for name in ("terminal.json", "keys.bin"):
        assert (out / name).stat().st_mode & 0o777 == 0o600, name
    # again with --force over existing records: still private
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-db", issuer_db, "--issuer-keys", keys,
                 "--derivation-id", "90123458", "--force")
    assert result.exit_code == 0, result.output
    for name in ("terminal.json", "keys.bin"):
        assert (out / name).stat().st_mode & 0o777 == 0o600, name


@pytest.fixture
def built(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    for name in ("app.mpy", "link.mpy", "cbor.mpy"):
        (build / name).write_bytes(b"M\x06")
    (build / "main.py").write_text("import app\n")
    state = tmp_path / "state"
    state.mkdir()
    for name in ("terminal.json", "keys.bin"):
        (state / name).write_text("{}")
    return build, state


def test_deploy_copies_firmware_and_records_in_one_session_then_resets(built, mocker):
    build, state = built
    runner = mocker.Mock(return_value=subprocess.CompletedProcess([], 0, "", ""))
    deploy("/dev/ttyUSB0", build, state, run=runner)
    cmd = runner.call_args.args[0]
    assert cmd[1:5] == ["connect", "/dev/ttyUSB0", "fs", "cp"]
    first, records, reset = " ".join(cmd[5:]).split(" + ")
    assert first.split()[-1] == ":" and first.split()[:-1] == [
        str(build / n) for n in ("app.mpy", "cbor.mpy", "link.mpy", "main.py")]
    assert records.split() == ["fs", "cp", str(state / "terminal.json"),
                               str(state / "keys.bin"), ":"]
    assert reset == "reset"


def test_deploy_without_records_copies_the_firmware_only(built):
    build, _ = built
    cmd = deploy_command("/dev/ttyUSB0", build)
    assert "terminal.json" not in " ".join(cmd) and cmd[-2:] == ["+", "reset"]


def test_deploy_errors_are_clear(built, tmp_path, mocker):
    build, state = built
    (state / "keys.bin").unlink()
    with pytest.raises(DeployError, match="no keys.bin.*posbridge provision"):
        deploy_command("/dev/ttyUSB0", build, state)
    with pytest.raises(DeployError, match="no firmware in .*firmware build"):
        deploy_command("/dev/ttyUSB0", tmp_path / "empty")
    failing = mocker.Mock(return_value=subprocess.CompletedProcess(
        [], 1, "", "Traceback...\nmpremote: failed to access /dev/ttyUSB9"))
    with pytest.raises(DeployError, match="mpremote failed on /dev/ttyUSB9: mpremote: "
                                          "failed to access"):
        deploy("/dev/ttyUSB9", build, run=failing)
    with pytest.raises(DeployError, match="mpremote not found"):
        deploy("/dev/ttyUSB0", build, run=mocker.Mock(side_effect=FileNotFoundError))


def test_deploy_cli_reports_a_failure_in_one_line(built, mocker):
    build, _ = built
    mocker.patch("posbridge.board.deploy.subprocess.run",
                 return_value=subprocess.CompletedProcess([], 1, "", "no device"))
    clean_failure(run("firmware", "deploy", "--port", "/dev/ttyUSB0", "--build", build),
                  "mpremote failed on /dev/ttyUSB0: no device")


def test_reprovisioning_with_the_same_key_is_refused(tmp_path, issuer_db):
    out = tmp_path / "board"
    args = ["provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db", issuer_db,
            "--derivation-id", "90123457"]
    assert run(*args).exit_code == 0
    used(out, 42, 41)
    before = (out / "keys.bin").read_bytes()
    # the same derivation ID again would hand out keys already used: refused, even forced,
    # and the board's records stay as they were
    clean_failure(run(*args, "--force"), "1234567890123457 was issued already")
    assert (out / "keys.bin").read_bytes() == before
    # nor may another terminal get it
    clean_failure(run("provision", "--out", tmp_path / "other", "--terminal-id", "T0000003",
                      "--issuer-db", issuer_db, "--derivation-id", "90123457"),
                  "issued already")
    assert not (tmp_path / "other" / "terminal.json").exists()


def test_provision_registers_the_terminal_and_its_merchant(tmp_path, issuer_db):
    from posbridge.issuer import terminals
    out = tmp_path / "board"
    assert run("provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db",
               issuer_db, "--derivation-id", "90123457", "--merchant-id", "M2",
               "--merchant-name", "CORNER CAFE").exit_code == 0
    record = json.loads((out / "terminal.json").read_text())
    assert (record["merchant_id"], record["merchant_name"]) == ("M2", "CORNER CAFE")
    # the demo's own terminal id is refused without --force: it is registered already
    clean_failure(run("provision", "--out", tmp_path / "b", "--terminal-id", "T0000001",
                      "--issuer-db", issuer_db, "--derivation-id", "90123458"),
                  "T0000001 is registered already")
    assert not (tmp_path / "b").exists() or not (tmp_path / "b" / "terminal.json").exists()
    # re-keyed with --force: a new key, the merchant kept, the old key retired
    assert run("provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db",
               issuer_db, "--derivation-id", "90123459", "--force").exit_code == 0
    ledger = Ledger.open(issuer_db)
    try:
        [t] = [t for t in terminals.terminals(ledger) if t["terminal_id"] == "T0000002"]
    finally:
        ledger.close()
    assert (t["merchant_id"], t["merchant_name"]) == ("M2", "CORNER CAFE")
    assert [(k["initial_key_id"], k["active"]) for k in t["keys"]] == \
        [("1234567890123457", 0), ("1234567890123459", 1)]


def test_reprovisioning_a_board_of_the_firmware_that_kept_the_initial_key(tmp_path,
                                                                         issuer_db):
    # its terminal.json held the initial key, counters.json the last counter used: the
    # counter goes on from there, and neither the key nor counters.json is left
    out = tmp_path / "board"
    out.mkdir()
    key_id = bytes.fromhex("1234567890123457")
    key = derive_initial_key(TEST_BDK, key_id)
    (out / "terminal.json").write_text(json.dumps(
        {"terminal_id": "T0000002", "initial_key": key.hex().upper(),
         "initial_key_id": key_id.hex().upper()}))
    (out / "counters.json").write_text(json.dumps({"ksn_counter": 0x1FFFE, "trace": 41}))
    assert run("provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db",
               issuer_db, "--derivation-id", "90123457", "--force").exit_code == 0
    # 1FFFF has 17 one-bits: the next counter is 20000
    assert (out / "keys.bin").read_bytes() == register_record(key, key_id, 0x20000, 41)
    assert sorted(p.name for p in out.iterdir()) == ["keys.bin", "terminal.json"]
    assert key.hex().upper() not in (out / "terminal.json").read_text()
