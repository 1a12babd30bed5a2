# Helpers for the card reader tests (both interpreters): records built independently of
# the driver, and one-call wrappers. The card numbers are made up, test data only.
from card_reader import CardReader, CardError
from fwtest import ScriptedStream

JUL_2024 = 1719792000            # 2024-07-01 00:00:00 UTC
MID_JUN_2024 = 1718409600        # 2024-06-15 00:00:00 UTC
DISCRETIONARY = "9876501234567"


def check_digit(partial):
    # independent of the driver's luhn_ok: ISO/IEC 7812-1 Annex B written the other way
    total = 0
    for i in range(len(partial)):
        d = ord(partial[len(partial) - 1 - i]) - 48
        if i % 2 == 0:
            d = d * 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def pan_of(length, prefix="4"):
    body = prefix + "123456789012345678"[:length - 1 - len(prefix)]
    return body + check_digit(body)


def frame(content):
    body = bytes(content) + b"\x03"
    x = 0
    for b in body:
        x ^= b
    return b"\x02" + body + bytes((x,))


def record(pan, expiry="2612", service="201", disc=DISCRETIONARY):
    return frame((";%s=%s%s%s?" % (pan, expiry, service, disc)).encode())


def reader_for(chunks, now=MID_JUN_2024):
    return CardReader(ScriptedStream(chunks), now=lambda: now)


def results(reader, limit=20):
    out = []
    for _ in range(limit):
        r = reader.poll()
        if r is not None:
            out.append(r)
    return out


def one(data, now=MID_JUN_2024):
    got = results(reader_for([data], now))
    assert len(got) == 1, got
    return got[0]


def reason(data, now=MID_JUN_2024):
    r = one(data, now)
    assert isinstance(r, CardError), r
    return r.reason
