"""The SMPP gateway against the test SMSC on loopback (smsc.py): the PDUs it sends, long
and Chinese texts in parts, refusals and a missing SMSC recorded as failures, and the
`dispatch --gateway smpp` command."""
import socket

import pytest
from click.testing import CliRunner

from posbridge.issuer import Policy, notify, outbox
from posbridge.issuer.cli import issuer as issuer_group
from posbridge.issuer.dispatcher import Dispatcher
from posbridge.issuer.gateways import BuiltinGateway, GatewayError, OutgoingMessage
from posbridge.issuer.smpp_gateway import SmppGateway

from .conftest import ISSUER_NOW
from .smsc import ESME_RSYSERR, ESME_RTHROTTLED, Smsc
from .test_balance_inquiry import LI_WEI

WHEN = "2026-11-22 16:02"
ENGLISH_LONG = notify.frozen_card_text("en", last4="0011", when=WHEN, terminal_id="T0000001")
CHINESE_LONG = notify.large_amount_text("zh", last4="0011", amount=6000000, currency=156,
                                        merchant="Demo Shop", available=100000,
                                        terminal_id="T0000001", when=WHEN, limit=5000000)
SHORT = "Card ending 0011: balance inquiry at terminal T0000001."


def queue(issuer, text, *, channel="sms", language="en"):
    """One queued alert for Li Wei, as the issuer would keep it."""
    holder = issuer.ledger.card_on_file(LI_WEI).holder
    with issuer.ledger.transaction():
        outbox.add(issuer.ledger, transaction_id=None, cardholder_id=holder.id,
                   kind="account_change", card_last4="0011", channel=channel,
                   destination="138****5678", text=text, status="queued",
                   language=language, now=ISSUER_NOW)


def dispatch(issuer, smsc_port, password="secret"):
    builtin = BuiltinGateway()
    gateways = {"sms": SmppGateway("127.0.0.1", smsc_port, system_id="bank", password=password,
                                   source_addr="95500", timeout=5), "app": builtin}
    dispatcher = Dispatcher(issuer.ledger, issuer.policy, gateways, clock=lambda: ISSUER_NOW)
    try:
        return dispatcher.run_once(), builtin
    finally:
        dispatcher.close()


def test_bind_submit_unbind(issuer):
    assert len(ENGLISH_LONG) > 160 and len(CHINESE_LONG) > 70    # two parts each
    for text in (SHORT, ENGLISH_LONG, CHINESE_LONG):
        queue(issuer, text, language="zh" if text is CHINESE_LONG else "en")
    queue(issuer, "app push text", channel="app")
    with Smsc() as smsc:
        report, builtin = dispatch(issuer, smsc.port)
    assert [o.status for o in report.outcomes] == ["sent"] * 4

    # the session: one bind, five submit_sm (1 + 2 + 2 parts), one unbind; the app push
    # never reached the SMSC
    assert [p.command for p in smsc.pdus] == ["bind_transmitter"] + ["submit_sm"] * 5 + ["unbind"]
    bind = smsc.pdus[0].fields
    assert (bind["system_id"], bind["password"], bind["interface_version"]) == \
        ("bank", "secret", 0x34)
    submits = [p.fields for p in smsc.received("submit_sm")]
    for s in submits:
        assert (s["source_addr"], s["destination_addr"], s["dest_addr_ton"],
                s["dest_addr_npi"]) == ("95500", "13812345678", 2, 1)
    assert [(s["data_coding"], s["esm_class"]) for s in submits] == \
        [(0, 0), (0, 0x40), (0, 0x40), (8, 0x40), (8, 0x40)]
    assert smsc.messages() == [SHORT, ENGLISH_LONG, CHINESE_LONG]
    assert len({p.sequence for p in smsc.pdus}) == len(smsc.pdus)

    rows = issuer.ledger.outbox()
    assert [(r["status"], r["gateway_ref"]) for r in rows[:3]] == \
        [("sent", "MSG0001"), ("sent", "MSG0002+MSG0003"), ("sent", "MSG0004+MSG0005")]
    assert rows[3]["gateway_ref"] == f"builtin-{rows[3]['message_id']}"
    assert builtin.sent == [rows[3]["message_id"]]


def test_an_international_number(issuer):
    from posbridge.issuer import preferences
    holder = issuer.ledger.card_on_file(LI_WEI).holder
    preferences.update(issuer.ledger, holder.id, phone="+8613812345678")
    queue(issuer, SHORT)
    with Smsc() as smsc:
        dispatch(issuer, smsc.port)
    [submit] = smsc.received("submit_sm")
    assert (submit.fields["destination_addr"], submit.fields["dest_addr_ton"]) == \
        ("8613812345678", 1)


def test_a_refused_message_fails_and_the_next_one_goes(issuer):
    queue(issuer, "first")
    queue(issuer, "second")
    refuse_first = {0: ESME_RTHROTTLED}
    with Smsc(submit_status=lambda n: refuse_first.get(n, 0)) as smsc:
        report, _ = dispatch(issuer, smsc.port)
    assert [o.status for o in report.outcomes] == ["failed", "sent"]
    first, second = issuer.ledger.outbox()
    assert first["status"] == "failed" and first["attempts"] == 1
    assert first["reason"].startswith("SMSC refused the message: Throttling error")
    assert first["reason"].endswith("(0x58)")
    assert first["next_attempt_at"] == ISSUER_NOW + 60
    assert second["status"] == "sent"
    assert smsc.messages() == ["second"]
    # a minute later, the SMSC takes it
    with Smsc() as smsc:
        builtin = BuiltinGateway()
        gateways = {"sms": SmppGateway("127.0.0.1", smsc.port, password="secret"), "app": builtin}
        dispatcher = Dispatcher(issuer.ledger, issuer.policy, gateways,
                                clock=lambda: ISSUER_NOW + 60)
        report = dispatcher.run_once()
        dispatcher.close()
    assert [o.status for o in report.outcomes] == ["sent"]
    assert smsc.messages() == ["first"]
    assert [r["status"] for r in issuer.ledger.outbox()] == ["sent", "sent"]


def test_a_refused_bind_fails_every_sms_of_the_run_with_one_bind(issuer):
    queue(issuer, "one")
    queue(issuer, "two")
    queue(issuer, "push", channel="app")
    with Smsc(password="other") as smsc:
        report, builtin = dispatch(issuer, smsc.port, password="secret")
    assert [o.status for o in report.outcomes] == ["failed", "failed", "sent"]
    assert [p.command for p in smsc.pdus] == ["bind_transmitter"]
    reasons = {r["reason"] for r in issuer.ledger.outbox() if r["status"] == "failed"}
    assert len(reasons) == 1
    [reason] = reasons
    assert reason.startswith(f"SMPP bind to 127.0.0.1:{smsc.port} failed:")
    assert "secret" not in reason


def test_no_smsc_listening(issuer):
    queue(issuer, "one")
    with socket.socket() as s:          # a port nobody listens on once it is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report, _ = dispatch(issuer, port)
    assert [(o.status, o.detail) for o in report.outcomes] == \
        [("failed", f"SMPP bind to 127.0.0.1:{port} failed: Connection refused")]
    [row] = issuer.ledger.outbox()
    assert row["status"] == "failed" and row["text"] == "one"


def test_system_error_on_submit_keeps_the_session(issuer):
    queue(issuer, "one")
    queue(issuer, "two")
    with Smsc(submit_status=lambda n: ESME_RSYSERR if n == 0 else 0) as smsc:
        report, _ = dispatch(issuer, smsc.port)
    assert [o.status for o in report.outcomes] == ["failed", "sent"]
    assert [p.command for p in smsc.pdus].count("bind_transmitter") == 1


def test_the_smpp_gateway_sends_sms_only():
    gateway = SmppGateway("127.0.0.1", 1)
    with pytest.raises(GatewayError, match="sends SMS, not app"):
        gateway.send(OutgoingMessage("id", "app", "13812345678", "x"))
    gateway.close()


def test_dispatch_command_with_smpp(db_path, issuer, mocker):
    issuer.policy = Policy(send_immediately=False)
    queue(issuer, SHORT)
    queue(issuer, CHINESE_LONG, language="zh")
    issuer.close()
    mocker.patch("posbridge.issuer.cli.common.now", return_value=ISSUER_NOW)
    with Smsc() as smsc:
        result = CliRunner().invoke(issuer_group, [
            "--db", str(db_path), "dispatch", "--gateway", "smpp", "--smpp-port",
            str(smsc.port), "--smpp-system-id", "bank"], env={"POSBRIDGE_SMPP_PASSWORD": "secret"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[1:] == ["sent", "MSG0001"]
    assert lines[1].split()[1:] == ["sent", "MSG0002+MSG0003"]
    assert lines[-1] == "dispatch: 2 sent, 0 failed, 0 held; 0 waiting in the outbox"
    assert smsc.messages() == [SHORT, CHINESE_LONG]
    assert "13812345678" not in result.output
