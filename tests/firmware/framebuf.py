# CPython stand-in for MicroPython's built-in framebuf (MONO_VLSB only), so the display
# and the application run in CPython tests too. Under MicroPython the built-in module
# wins over this file. It has no font: text() draws nothing here; the pixels of text
# are checked by the tests that run under MicroPython.
MONO_VLSB = 0


class FrameBuffer:
    def __init__(self, buf, width, height, fmt):
        assert fmt == MONO_VLSB
        self.buf, self.width, self.height = buf, width, height

    def pixel(self, x, y, c=None):
        i, bit = (y // 8) * self.width + x, 1 << (y % 8)
        if c is None:
            return 1 if self.buf[i] & bit else 0
        if c:
            self.buf[i] |= bit
        else:
            self.buf[i] &= ~bit & 0xFF

    def fill(self, c):
        v = 0xFF if c else 0
        for i in range(len(self.buf)):
            self.buf[i] = v

    def fill_rect(self, x, y, w, h, c):
        for yy in range(max(0, y), min(self.height, y + h)):
            for xx in range(max(0, x), min(self.width, x + w)):
                self.pixel(xx, yy, c)

    def text(self, s, x, y, c=1):
        pass
