# Test helpers that work under both CPython and MicroPython (no pytest on the board side).


def raises(exc_type, fn, *args, **kwargs):
    """Call fn and return the exception of exc_type it raises; fail if it raises none."""
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise AssertionError("expected %s from %r" % (exc_type.__name__, fn))


class ScriptedStream:
    """A UART stand-in: reads hand out scripted chunks one call at a time (None when
    nothing is waiting, like UART(timeout=0)); writes are collected."""

    def __init__(self, chunks=()):
        self.chunks = list(chunks)
        self.written = bytearray()

    def feed(self, data):
        self.chunks.append(bytes(data))

    def any(self):
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, n=-1):
        if not self.chunks:
            return None
        chunk = self.chunks[0]
        if n is None or n < 0 or n >= len(chunk):
            self.chunks.pop(0)
            return chunk
        self.chunks[0] = chunk[n:]
        return chunk[:n]

    def readinto(self, buf):
        data = self.read(len(buf))
        if data is None:
            return None
        buf[:len(data)] = data
        return len(data)

    def write(self, data):
        self.written.extend(data)
        return len(data)

    def take_written(self):
        data = bytes(self.written)
        self.written = bytearray()
        return data


class FakeClock:
    """ticks_ms stand-in the tests move by hand."""

    def __init__(self, now=0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, ms):
        self.now += ms
