"""A small SMSC for the SMPP gateway tests: a TCP server on loopback that speaks the
part of SMPP 3.4 a transmitter needs (bind_transmitter, submit_sm, enquire_link,
unbind), parses every PDU itself (not with smpplib, so the test is not the library
checking itself) and keeps what it received.

    with Smsc() as smsc:             # listening on 127.0.0.1:<free port>
        ... smsc.port ...
    smsc.pdus                        # [Pdu(command, status, sequence, fields), ...]
    smsc.messages()                  # the texts, parts joined by their UDH
"""
import socketserver
import struct
import threading
from dataclasses import dataclass, field

BIND_TRANSMITTER = 0x00000002
SUBMIT_SM = 0x00000004
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
RESP = 0x80000000

ESME_ROK = 0x00
ESME_RSYSERR = 0x08
ESME_RINVPASWD = 0x0E
ESME_RTHROTTLED = 0x58

NAMES = {BIND_TRANSMITTER: "bind_transmitter", SUBMIT_SM: "submit_sm", UNBIND: "unbind",
         ENQUIRE_LINK: "enquire_link"}

# GSM 03.38 default alphabet, basic table, one character per septet value 0..127
GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
             "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
assert len(GSM_BASIC) == 128


@dataclass
class Pdu:
    command: str
    status: int
    sequence: int
    fields: dict = field(default_factory=dict)


class _Reader:
    def __init__(self, body: bytes):
        self.body, self.pos = body, 0

    def cstring(self) -> str:
        end = self.body.index(b"\0", self.pos)
        text = self.body[self.pos:end].decode("ascii")
        self.pos = end + 1
        return text

    def byte(self) -> int:
        self.pos += 1
        return self.body[self.pos - 1]

    def octets(self, n: int) -> bytes:
        self.pos += n
        return self.body[self.pos - n:self.pos]


def parse_bind(body: bytes) -> dict:
    r = _Reader(body)
    return {"system_id": r.cstring(), "password": r.cstring(), "system_type": r.cstring(),
            "interface_version": r.byte(), "addr_ton": r.byte(), "addr_npi": r.byte(),
            "address_range": r.cstring()}


def parse_submit(body: bytes) -> dict:
    r = _Reader(body)
    out = {"service_type": r.cstring(), "source_addr_ton": r.byte(),
           "source_addr_npi": r.byte(), "source_addr": r.cstring(),
           "dest_addr_ton": r.byte(), "dest_addr_npi": r.byte(),
           "destination_addr": r.cstring(), "esm_class": r.byte(), "protocol_id": r.byte(),
           "priority_flag": r.byte(), "schedule_delivery_time": r.cstring(),
           "validity_period": r.cstring(), "registered_delivery": r.byte(),
           "replace_if_present_flag": r.byte(), "data_coding": r.byte(),
           "sm_default_msg_id": r.byte()}
    length = r.byte()
    out["short_message"] = r.octets(length)
    out["tlvs"] = body[r.pos:]
    return out


def decode_part(submit: dict):
    """(concatenation key, part number, total, text) of one submit_sm."""
    data = submit["short_message"]
    key, number, total = None, 1, 1
    if submit["esm_class"] & 0x40:                 # UDHI: a user data header first
        udh_len = data[0]
        udh, data = data[1:1 + udh_len], data[1 + udh_len:]
        assert udh[0] == 0x00 and udh[1] == 3, f"concatenation IE expected, got {udh.hex()}"
        key, total, number = udh[2], udh[3], udh[4]
    if submit["data_coding"] == 0x08:
        text = data.decode("utf-16-be")
    else:
        assert submit["data_coding"] == 0x00
        text = "".join(GSM_BASIC[b] for b in data)      # one septet per octet, unpacked
    return key, number, total, text


class Smsc(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, *, password: str = "secret", submit_status=None):
        """`submit_status(n)` -> the command_status for the n-th submit_sm (0-based)."""
        super().__init__(("127.0.0.1", 0), _Session)
        self.password = password
        self.submit_status = submit_status or (lambda n: ESME_ROK)
        self.pdus = []
        self.submits = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()
        self._thread.join()

    def received(self, command: str) -> "list[Pdu]":
        return [p for p in self.pdus if p.command == command]

    def messages(self) -> "list[str]":
        """Texts of the accepted submit_sm, parts joined in order."""
        done, parts = [], {}
        for pdu in self.pdus:
            if pdu.command != "submit_sm" or pdu.fields["resp_status"] != ESME_ROK:
                continue
            key, number, total, text = decode_part(pdu.fields)
            if key is None:
                done.append(text)
                continue
            got = parts.setdefault(key, {})
            got[number] = text
            if len(got) == total:
                done.append("".join(got[i] for i in range(1, total + 1)))
                del parts[key]
        return done


class _Session(socketserver.BaseRequestHandler):
    def handle(self):
        server = self.server
        while True:
            header = self._exact(16)
            if header is None:
                return
            length, command_id, status, sequence = struct.unpack(">IIII", header)
            body = self._exact(length - 16) if length > 16 else b""
            name = NAMES.get(command_id, f"{command_id:#010x}")
            pdu = Pdu(name, status, sequence)
            with server._lock:
                server.pdus.append(pdu)
            if command_id == BIND_TRANSMITTER:
                pdu.fields = parse_bind(body)
                ok = pdu.fields["password"] == server.password
                self._reply(command_id, ESME_ROK if ok else ESME_RINVPASWD, sequence,
                            b"smsc\0" if ok else b"")
                if not ok:
                    return
            elif command_id == SUBMIT_SM:
                pdu.fields = parse_submit(body)
                with server._lock:
                    n, server.submits = server.submits, server.submits + 1
                resp = server.submit_status(n)
                pdu.fields["resp_status"] = resp
                self._reply(command_id, resp, sequence,
                            f"MSG{n + 1:04d}\0".encode() if resp == ESME_ROK else b"\0")
            elif command_id == UNBIND:
                self._reply(command_id, ESME_ROK, sequence, b"")
                return
            elif command_id == ENQUIRE_LINK:
                self._reply(command_id, ESME_ROK, sequence, b"")
            else:
                self.request.sendall(struct.pack(">IIII", 16, GENERIC_NACK, 0x03, sequence))

    def _reply(self, command_id, status, sequence, body):
        self.request.sendall(struct.pack(">IIII", 16 + len(body), command_id | RESP, status,
                                         sequence) + body)

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
