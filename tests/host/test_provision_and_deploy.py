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
from posbridge.board.provision import TEST_BDK


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
    assert record["terminal_id"] == "T0000002"
    assert record["initial_key_id"] == key_id.hex().upper()
    assert record["initial_key"] == derive_initial_key(TEST_BDK, key_id).hex().upper()
    assert json.loads((out / "counters.json").read_text()) == {"ksn_counter": 0, "trace": 0}
    assert record["initial_key"] not in result.output      # key material is not shown


def test_reprovisioning_needs_force_and_keeps_the_trace_number(tmp_path, issuer_db):
    out = tmp_path / "board"
    args = ["provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db", issuer_db]
    assert run(*args, "--derivation-id", "90123457").exit_code == 0
    (out / "counters.json").write_text(json.dumps({"ksn_counter": 41, "trace": 41}))
    clean_failure(run(*args, "--derivation-id", "90123458"), "exists", "--force")
    assert run(*args, "--derivation-id", "90123458", "--force").exit_code == 0
    # a new key starts its counter; the trace goes on (the issuer knows trace numbers)
    assert json.loads((out / "counters.json").read_text()) == {"ksn_counter": 0, "trace": 41}


@pytest.mark.parametrize("extra,fragment", [
    (["--derivation-id", "xyz"], "hex digits"),
    (["--derivation-id", "1234"], "8 hex digits"),
    (["--derivation-id", "90123457", "--bdk-id", "AAAAAAAA"], "no key set AAAAAAAA"),
    (["--derivation-id", "90123457", "--terminal-id", "T-1"], "terminal id"),
])
def test_provision_refuses_bad_values_clearly(tmp_path, issuer_db, extra, fragment):
    args = ["provision", "--out", tmp_path / "b", "--terminal-id", "T0000002",
            "--issuer-db", issuer_db] + extra
    clean_failure(run(*args), fragment)
    assert not (tmp_path / "b" / "terminal.json").exists()


def test_provision_without_an_issuer_key_store(tmp_path):
    clean_failure(run("provision", "--out", tmp_path / "b", "--terminal-id", "T1",
                      "--issuer-db", tmp_path / "none.sqlite", "--derivation-id", "90123457"),
                  "no issuer key store at", "none.keys")


def test_provision_needs_the_key_store_only_and_writes_private_records(tmp_path, issuer_db):
    """The BDK is in the key store (--issuer-keys), not in the database; the records
    hold the terminal's initial key, so they are the owner's alone."""
    keys = tmp_path / "elsewhere.keys"
    issuer_db.with_suffix(".keys").rename(keys)
    issuer_db.unlink()
    out = tmp_path / "board"
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-keys", keys, "--derivation-id", "90123457")
    assert result.exit_code == 0, result.output
    for name in ("terminal.json", "counters.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o600, name
    # again with --force over existing records: still private
    result = run("provision", "--out", out, "--terminal-id", "T0000002",
                 "--issuer-keys", keys, "--derivation-id", "90123458", "--force")
    assert result.exit_code == 0, result.output
    assert (out / "terminal.json").stat().st_mode & 0o777 == 0o600


@pytest.fixture
def built(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    for name in ("app.mpy", "link.mpy", "cbor.mpy"):
        (build / name).write_bytes(b"M\x06")
    (build / "main.py").write_text("import app\n")
    state = tmp_path / "state"
    state.mkdir()
    for name in ("terminal.json", "counters.json"):
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
                               str(state / "counters.json"), ":"]
    assert reset == "reset"


def test_deploy_without_records_copies_the_firmware_only(built):
    build, _ = built
    cmd = deploy_command("/dev/ttyUSB0", build)
    assert "terminal.json" not in " ".join(cmd) and cmd[-2:] == ["+", "reset"]


def test_deploy_errors_are_clear(built, tmp_path, mocker):
    build, state = built
    (state / "counters.json").unlink()
    with pytest.raises(DeployError, match="no counters.json.*posbridge provision"):
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


def test_reprovisioning_the_same_key_keeps_its_counter(tmp_path, issuer_db):
    out = tmp_path / "board"
    args = ["provision", "--out", out, "--terminal-id", "T0000002", "--issuer-db", issuer_db,
            "--derivation-id", "90123457"]
    assert run(*args).exit_code == 0
    (out / "counters.json").write_text(json.dumps({"ksn_counter": 41, "trace": 41}))
    assert run(*args, "--force").exit_code == 0
    # the counter goes on: starting it again would reuse transaction keys
    assert json.loads((out / "counters.json").read_text()) == {"ksn_counter": 41, "trace": 41}
