"""ISO 8583 messages on a TCP stream: each preceded by its length, 2 bytes big-endian.

Both ends bound what they read: a length of 0 or above MAX_MESSAGE is refused (the
stream cannot be trusted after it: the connection is closed), and once a message has
begun the rest of it must come within `timeout`, so that a peer that sends half a
message and stalls holds nothing but its own connection."""
import asyncio

HEADER = 2
# our largest message (a purchase with 255 bytes of ICC data) is some 450 bytes
MAX_MESSAGE = 2048


class FramingError(ValueError):
    """A length header that cannot be right, or a message cut short."""


def frame(message: bytes) -> bytes:
    if not 0 < len(message) <= MAX_MESSAGE:
        raise FramingError(f"message of {len(message)} bytes")
    return len(message).to_bytes(HEADER, "big") + message


async def read_message(reader: asyncio.StreamReader, timeout: float,
                       idle_timeout=None, max_message: int = MAX_MESSAGE):
    """The next message, or None at the end of the stream. asyncio.TimeoutError when
    no message begins within `idle_timeout` (None: wait for ever) or one that began
    is not complete within `timeout`; FramingError for a bad length or a cut."""
    try:
        header = await asyncio.wait_for(reader.readexactly(HEADER), idle_timeout)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise FramingError("stream ended inside a length header") from None
        return None
    length = int.from_bytes(header, "big")
    if not 0 < length <= max_message:
        raise FramingError(f"length header says {length} bytes (1 to {max_message})")
    try:
        return await asyncio.wait_for(reader.readexactly(length), timeout)
    except asyncio.IncompleteReadError as exc:
        raise FramingError(f"stream ended {len(exc.partial)} bytes into a "
                           f"{length}-byte message") from None
