"""End to end over pseudo-terminals: the real firmware under MicroPython (64 KiB heap),
the bridge on its host link, the display through the emulator."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cbor2
import pytest

from posbridge.link import protocol as p
from posbridge.link.host_link import LinkFailed
from tests.schema import validate

ROOT = Path(__file__).resolve().parents[2]
POSBRIDGE = str(Path(sys.executable).parent / "posbridge")


def assert_screen_and_sms_agree(screens: str, sms: str):
    """The idle screen's time (the terminal's, at the merchant's offset) and the time in
    the cardholder's SMS (the issuer's) name the same moment: within a minute, since
    the two are read a few seconds apart."""
    shown = [int(h) * 60 + int(m) for h, m in re.findall(r"(\d\d):(\d\d) {2}online", screens)]
    # the message's "YYYY-MM-DD HH:MM", not a listing's "HH:MM:SS" of when it was queued
    said = re.search(r"\d{4}-\d\d-\d\d (\d\d):(\d\d)(?!:)", sms)
    assert shown and said, (screens[-500:], sms)
    sms_minute = int(said.group(1)) * 60 + int(said.group(2))
    assert any(min((t - sms_minute) % 1440, (sms_minute - t) % 1440) <= 1 for t in shown), \
        (sorted({f"{t // 60:02d}:{t % 60:02d}" for t in shown}), said.group(0))


def wait_until(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_boot_hello_and_first_screen(session):
    session.emulator.wait_for_screen("Starting")
    idle = session.emulator.wait_for_screen("Insert card", timeout=15)
    assert "online" in idle.text
    assert session.bridge.board["terminal_id"] == "T0000001"
    hello = [m for m in session.messages if m[1] == p.HELLO]
    replies = [m for m in session.messages if m[1] == p.HELLO_REPLY]
    assert hello[0][0] == "rx" and replies[0][0] == "tx"


def test_every_message_sent_validates_against_the_schema(session):
    session.emulator.wait_for_screen("Insert card", timeout=15)
    session.bridge.request_status()                       # board answers STATUS
    session.link.send(0x7E, p.encode_body({}))            # board answers ERROR 1
    session.link.send(p.STATUS_REQUEST, b"\xa1\x01")      # board answers ERROR 2
    session.link.send(p.STATUS_REQUEST, p.encode_body({}))
    assert wait_until(lambda: sum(m[0] == "rx" and m[1] == p.STATUS
                                  for m in session.messages) >= 2)
    assert wait_until(lambda: sum(m[1] == p.ERROR for m in session.messages) >= 2)
    # the board asks the bridge too (its liveness check); ask for one at once
    session.link.send(p.STATUS_REQUEST, p.encode_body({}))
    sent = [(d, t, b) for d, t, b in session.messages if not (d == "tx" and t == 0x7E)
            and b != b"\xa1\x01"]
    kinds = {(d, t) for d, t, _ in sent}
    assert {("rx", p.HELLO), ("tx", p.HELLO_REPLY), ("tx", p.STATUS_REQUEST),
            ("rx", p.STATUS), ("rx", p.ERROR)} <= kinds
    # the bridge's own STATUS, answering the board
    session.bridge.on_status_request({})
    for direction, mtype, body in session.messages:
        if (direction, mtype) == ("tx", 0x7E) or body == b"\xa1\x01":
            continue  # the deliberately bad messages of this test
        validate(mtype, body)
    status = [cbor2.loads(b) for d, t, b in session.messages if d == "rx" and t == p.STATUS][0]
    assert status[2] > 0  # heap free under the 64 KiB heap


def test_fault_injector_between_board_and_bridge(noisy_session):
    """Flipped bits, dropped bytes, duplicated and garbage chunks in both directions:
    every message arrives once and in order, or its sender reports the failure."""
    s = noisy_session
    s.emulator.wait_for_screen("Insert card", timeout=60)
    sent_ok = failed = 0
    for _ in range(40):
        try:
            s.link.send(p.STATUS_REQUEST, p.encode_body({}))
            sent_ok += 1
        except LinkFailed:
            failed += 1
        # one request at a time: the board answers before it is asked again
        n = len(_board_rx_counts(s))
        wait_until(lambda: len(_board_rx_counts(s)) > n, timeout=3)
    s.injector.enabled.clear()  # a clean wire for the last word
    # the host sends one message at a time: everything it sent before this request was
    # acknowledged (so delivered) or given up before the request left
    before = s.link.counters()
    s.link.send(p.STATUS_REQUEST, p.encode_body({}))
    sent_ok += 1
    lower = before["tx"] + 1 - before.get("failures", 0)
    assert wait_until(lambda: _board_rx_counts(s) and _board_rx_counts(s)[-1] >= lower,
                      timeout=20), (sent_ok, failed, _board_rx_counts(s), s.link.counters())
    rx_counts = _board_rx_counts(s)
    damage = dict(s.injector.counts)
    # each STATUS carries the board's count of messages delivered to it: strictly
    # increasing means no duplicate reached the board and no reply reached us twice
    assert rx_counts == sorted(set(rx_counts)), rx_counts
    # every message the bridge sent (ours, and a HELLO_REPLY for each HELLO the board
    # retried in the noise, possibly one after our last request) reached the board once,
    # or its send was reported failed
    counters = s.link.counters()
    sent, gave_up = counters["tx"], counters.get("failures", 0)
    delivered_to_board = rx_counts[-1]
    assert lower <= delivered_to_board <= sent, (lower, sent, gave_up, rx_counts)
    assert gave_up >= failed  # a HELLO_REPLY lost in the noise counts there too
    assert damage["flip"] + damage["drop"] + damage["duplicate"] + damage["garbage"] > 10, damage


def _board_rx_counts(s):
    return [cbor2.loads(b)[4][2] for d, t, b in s.messages if d == "rx" and t == p.STATUS]


def test_make_demo_scenario_runs(tmp_path):
    # the demo's PC set to UTC: the screen still shows the merchant's time (UTC+8), as
    # the SMS does
    out = subprocess.run([POSBRIDGE, "emulate", "--scenario", str(ROOT / "scenarios/demo.json"),
                          "--screens", str(tmp_path)],
                         capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, COLUMNS="100", TZ="UTC0"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Insert card" in out.stdout and "HELLO_REPLY" in out.stdout
    assert "heap free=" in out.stdout
    # the demo's balance inquiries, within the 64 KiB heap
    assert "SMS sent to" in out.stdout and "Restricted card" in out.stdout
    assert "Terminal error" not in out.stdout
    # the demo's purchases: approved, declined 51, and one whose answer came too late,
    # reversed and acknowledged
    assert "APPROVED" in out.stdout and "Insufficient" in out.stdout
    assert "No charge" in out.stdout and "Sending reversal" in out.stdout
    assert "Acknowledged" in out.stdout and "Credited back" in out.stdout
    assert "CNY 12.50 charged" in out.stdout and "CNY 8.80 reversed by" in out.stdout
    # contactless: a tap below the CVM limit, no PIN, the ARQC verified; one above it
    # with the PIN
    assert "or tap card" in out.stdout and "CONTACTLESS" in out.stdout
    assert out.stdout.count("ARQC verified") == 2 and "entry_mode=7" in out.stdout
    assert "4761730000000011" not in out.stdout
    # alerts: Li Wei's balance SMS and wrong PIN, the frozen card's security alert, the
    # two approved purchases, the reversed one's credit, after its charge, and the two
    # contactless purchases
    assert "issuer outbox: 8 message(s)" in out.stdout
    outbox = out.stdout[out.stdout.index("issuer outbox"):]
    assert_screen_and_sms_agree(out.stdout, out.stdout.split("issuer outbox:")[1])
    charge = outbox.index("purchase of CNY 8.80 at DEMO SHOP (T0000001), ")
    assert outbox.index("purchase of CNY 8.80 at DEMO SHOP (T0000001) cancelled, "
                        "credited back") > charge
    assert outbox.index("purchase of CNY 88.00 at DEMO SHOP") < \
        outbox.index("purchase of CNY 1,288.00 at DEMO SHOP")
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs[:2] == ["001-starting.png", "002-insert-card-or-tap-card.png"], pngs


def test_emulate_link_path_and_serve_process(tmp_path):
    """`emulate --link PATH` exposes the board's tty; `serve --port PATH` bridges it;
    Ctrl-C stops both cleanly."""
    alias = tmp_path / "board-tty"
    env = dict(os.environ, COLUMNS="120")
    emu = subprocess.Popen([POSBRIDGE, "emulate", "--link", str(alias)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert wait_until(alias.is_symlink, timeout=20)
        db = tmp_path / "issuer.sqlite"
        subprocess.run([POSBRIDGE, "issuer", "--db", str(db), "init"], check=True,
                       capture_output=True)
        serve = subprocess.Popen([POSBRIDGE, "serve", "--port", str(alias),
                                  "--issuer-db", str(db)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env=env)
        serve_out = _collect(serve)
        try:
            # the board retries HELLO with back-off until this bridge answers
            assert wait_until(lambda: "connected" in "".join(serve_out), timeout=30), serve_out
        finally:
            serve.send_signal(signal.SIGINT)
            serve.wait(timeout=10)
        out = "".join(serve_out)
        assert serve.returncode == 0, out
        assert "HELLO" in out and "bridge stopped" in out
        assert "Traceback" not in out
    finally:
        emu.send_signal(signal.SIGINT)
        emu_out, _ = emu.communicate(timeout=10)
    assert emu.returncode == 0, emu_out
    assert "Insert card" in emu_out
    assert not alias.exists()


def test_emulate_link_runs_a_scenario_against_a_serve_process(tmp_path):
    """`emulate --link PATH --scenario FILE` drives the board's card reader and PIN pad
    while `serve --port PATH`, another process, bridges it: a balance inquiry end to end."""
    alias = tmp_path / "board-tty"
    db = tmp_path / "issuer.sqlite"
    subprocess.run([POSBRIDGE, "issuer", "--db", str(db), "init"], check=True,
                   capture_output=True)
    # a bridge PC set to a zone far from the merchant's (UTC+8): the screen must not
    # follow it
    env = dict(os.environ, COLUMNS="120", TZ="EST5EDT")
    emu = subprocess.Popen([POSBRIDGE, "emulate", "--link", str(alias),
                            "--scenario", str(ROOT / "scenarios" / "balance.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    emu_out = _collect(emu)
    serve = None
    try:
        assert wait_until(alias.is_symlink, timeout=20), "".join(emu_out)
        serve = subprocess.Popen([POSBRIDGE, "serve", "--port", str(alias),
                                  "--issuer-db", str(db)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 env=env)
        serve_out = _collect(serve)
        emu.wait(timeout=120)       # the scenario's last step done: the emulator ends
    finally:
        if emu.poll() is None:
            emu.send_signal(signal.SIGINT)
            emu.wait(timeout=10)
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            serve.wait(timeout=10)
    out = "".join(emu_out)
    assert emu.returncode == 0, out
    assert "balance.json: 11 steps done" in out and "SMS sent to" in out, out
    bridged = "".join(serve_out)
    assert "BALANCE_REQUEST" in bridged and "BALANCE_RESPONSE" in bridged, bridged
    assert "Traceback" not in out + bridged
    assert "4761730000000011" not in out + bridged        # the card number, masked
    # the alert was made by the issuer behind `serve`, in its own database
    rows = subprocess.run([POSBRIDGE, "issuer", "--db", str(db), "outbox"],
                          capture_output=True, text=True, check=True).stdout
    assert "*0011" in rows and "balance_inquiry" in rows, rows
    assert_screen_and_sms_agree(out, rows)
    assert not alias.exists()


def test_emulate_link_refuses_a_scenario_that_needs_its_own_bridge(tmp_path):
    """An `outbox` step reads the in-process issuer, which --link does not have: refused
    in one line before the board starts."""
    scenario = tmp_path / "outbox.json"
    scenario.write_text('{"steps": [{"expect": "Insert card"}, {"outbox": true}]}')
    alias = tmp_path / "board-tty"
    out = subprocess.run([POSBRIDGE, "emulate", "--link", str(alias), "--scenario",
                          str(scenario)], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, COLUMNS="300"))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: outbox.json:"), out.stderr
    assert "step 2 (outbox)" in lines[0] and "--link" in lines[0]
    assert "Starting" not in out.stdout and not alias.exists()


def _collect(proc):
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(line)
    threading.Thread(target=read, daemon=True).start()
    return lines


def test_the_board_boots_and_answers_over_a_link_paced_at_115200():
    """posbridge emulate --baud 115200: the host link at the real USB-UART's pace."""
    from posbridge.bridge import Bridge
    from posbridge.board.emulator import Emulator
    from posbridge.link.host_link import HostLink, LinkClosed
    from posbridge.ports import open_port
    emulator = Emulator(baud=115200)
    port = open_port(emulator.start())
    link = HostLink(port).start()
    bridge = Bridge(link)
    stop = threading.Event()

    def serve():
        try:
            bridge.serve(stop)
        except LinkClosed:
            pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        emulator.wait_for_screen("Insert card", timeout=30)
        bridge.request_status()
        deadline = time.monotonic() + 10
        while not bridge.board_status and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bridge.board_status["heap_free"] > 0
        assert emulator.line.bytes_sent("board->bridge") > 0
    finally:
        stop.set()
        t.join(timeout=2)
        link.close()
        port.close()
        emulator.stop()
