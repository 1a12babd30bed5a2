"""SMS through an SMSC over SMPP 3.4 (the `smpplib` package).

One session per dispatcher run: bind_transmitter on the first message, a submit_sm per
part (waiting for its submit_sm_resp), unbind on close. Text the GSM default alphabet
can carry goes as data_coding 0, anything else (Chinese) as UCS-2 (data_coding 8); a
text longer than one SMS is split into parts with a concatenation header (UDHI), as
smpplib.gsm.make_parts does it.

An SMSC that refuses a message (error status in submit_sm_resp) fails that message; a
connection that cannot be made or breaks fails it and every later one of the run with
the same reason, without trying to connect again for each. A message whose parts were
only partly taken is retried whole later: delivery is at least once.
"""
import logging
import socket

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
import smpplib.smpp

from .gateways import Gateway, GatewayError, OutgoingMessage

log = logging.getLogger("posbridge.issuer.smpp")
# smpplib's own logger: its debug dumps hold phone numbers and texts, its INFO lines and
# its warning about closing an unbound socket repeat what this module says once
_CLIENT_LOG = "posbridge.issuer.smpp.client"
logging.getLogger(_CLIENT_LOG).setLevel(logging.ERROR)

DEFAULT_PORT = 2775
_CONNECTION_ERRORS = (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError,
                      socket.timeout, OSError)


class SmppGateway(Gateway):
    name = "smpp"

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, system_id: str = "posbridge",
                 password: str = "", source_addr: str = "95500", timeout: float = 5.0):
        self.host, self.port = host, int(port)
        self.system_id, self.password = system_id, password
        self.source_addr = source_addr
        self.timeout = timeout
        self._client = None
        self._broken = None          # the reason, once the session cannot be used

    def send(self, message: OutgoingMessage) -> str:
        if message.channel != "sms":
            raise GatewayError(f"the SMPP gateway sends SMS, not {message.channel}")
        client = self._session()
        parts, coding, esm_class = smpplib.gsm.make_parts(message.text)
        refs = []
        try:
            for part in parts:
                pdu = client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_UNK,
                    source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
                    source_addr=self.source_addr,
                    **_destination(message.phone),
                    esm_class=esm_class, data_coding=coding, short_message=part,
                    registered_delivery=0)
                refs.append(self._answer(client, pdu.sequence))
        except _CONNECTION_ERRORS as exc:
            self._break(f"SMPP connection to {self.host}:{self.port} lost: {_why(exc)}")
            raise GatewayError(self._broken) from None
        log.info("SMPP: message %s taken by the SMSC in %d part(s)", message.message_id,
                 len(parts))
        return "+".join(refs)

    def close(self):
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.unbind()
        except _CONNECTION_ERRORS as exc:
            log.warning("SMPP unbind: %s", _why(exc))
        finally:
            client.disconnect()

    # ---- the session ---------------------------------------------------------------

    def _session(self):
        if self._broken:
            raise GatewayError(self._broken)
        if self._client is None:
            client = smpplib.client.Client(self.host, self.port, timeout=self.timeout,
                                           logger_name=_CLIENT_LOG,
                                           allow_unknown_opt_params=True)
            try:
                client.connect()
                client.bind_transmitter(system_id=self.system_id, password=self.password)
            except _CONNECTION_ERRORS as exc:
                client.disconnect()
                self._break(f"SMPP bind to {self.host}:{self.port} failed: {_why(exc)}")
                raise GatewayError(self._broken) from None
            self._client = client
        return self._client

    def _break(self, reason: str):
        self._broken = reason
        log.warning("%s", reason)
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()

    @staticmethod
    def _answer(client, sequence: int) -> str:
        """The SMSC's message id from the submit_sm_resp to `sequence`; other PDUs that
        arrive first are answered (enquire_link) or skipped."""
        while True:
            pdu = client.read_pdu()
            if pdu.command == "enquire_link":
                reply = smpplib.smpp.make_pdu("enquire_link_resp", client=client,
                                              sequence=pdu.sequence)
                client.send_pdu(reply)
                continue
            if pdu.command == "generic_nack":
                raise smpplib.exceptions.PDUError(f"generic_nack ({pdu.status:#x})")
            if pdu.command != "submit_sm_resp" or pdu.sequence != sequence:
                continue
            if pdu.is_error():
                raise GatewayError(f"SMSC refused the message: {pdu.get_status_desc()} "
                                   f"({pdu.status:#x})")
            message_id = pdu.message_id or b""
            return message_id.decode("ascii", "replace") if isinstance(message_id, bytes) \
                else str(message_id)


def _destination(phone: str) -> dict:
    """An E.164 number with + is international; a number without is national."""
    if phone.startswith("+"):
        return dict(dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN, destination_addr=phone[1:])
    return dict(dest_addr_ton=smpplib.consts.SMPP_TON_NATNL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN, destination_addr=phone)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
