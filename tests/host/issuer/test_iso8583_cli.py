"""The commands as a person runs them: `posbridge issuer serve --listen` as a process of
its own, and `posbridge serve --port A --port B --upstream iso8583://...` against it."""
import os
import tty

import pytest
from click.testing import CliRunner

from posbridge.cli import main
from posbridge.link import iso8583_map as m
from posbridge.link import iso8583_spec as spec

from tests.iso8583_net import Client, HostProcess, line_with, start_posbridge, stop_process


@pytest.fixture
def iso_host(db_path):
    host = HostProcess(db_path)
    yield host
    host.close()


def test_issuer_serve_answers_over_tcp_and_stops_on_sigterm(iso_host):
    client = Client(iso_host.port)
    answer = client.exchange(m.network(spec.SIGN_ON, 1, 1795334400))
    assert answer["t"] == "0810" and answer["39"] == "00"
    client.close()
    assert iso_host.close() == 0


def test_issuer_serve_without_a_database_says_so(tmp_path):
    result = CliRunner().invoke(main, ["issuer", "--db", str(tmp_path / "none.sqlite"),
                                       "serve", "--listen", "127.0.0.1:0"])
    assert result.exit_code == 1 and "no issuer database" in result.output


@pytest.mark.parametrize("listen", ["8583", "host:port", "h:70000"])
def test_issuer_serve_refuses_a_bad_address(listen, db_path):
    result = CliRunner().invoke(main, ["issuer", "--db", str(db_path), "serve",
                                       "--listen", listen])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_serve_refuses_a_bad_upstream(tmp_path):
    master, slave = os.openpty()
    try:
        result = CliRunner().invoke(main, ["serve", "--port", os.ttyname(slave),
                                           "--upstream", "tcp://host:1"])
    finally:
        os.close(master)
        os.close(slave)
    assert result.exit_code == 2 and "iso8583://HOST:PORT" in result.output


def test_one_bridge_two_boards_upstream(iso_host, tmp_path):
    """Two ports (pseudo-terminals standing for two boards) bridged to the host: the
    bridge signs on, and stops cleanly on SIGTERM."""
    port = iso_host.port
    ptys = [os.openpty() for _ in range(2)]
    for master, slave in ptys:
        tty.setraw(master)
    try:
        bridge = start_posbridge(["serve", *sum((["--port", os.ttyname(s)] for _, s in ptys), []),
                         "--upstream", f"iso8583://127.0.0.1:{port}",
                         "--status-interval", "0"], tmp_path)
        line_with(bridge, "signed on to the issuer host")
        assert bridge.poll() is None
        assert stop_process(bridge) == 0
    finally:
        for master, slave in ptys:
            os.close(master)
            os.close(slave)
