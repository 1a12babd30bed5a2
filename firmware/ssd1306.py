"""SSD1306 128x64 OLED over I2C (Solomon Systech SSD1306 datasheet rev 1.1).

show() takes a MONO_VLSB frame buffer: byte k is column k % 128 of page k // 128,
least significant bit at the top, which is the controller's horizontal addressing."""

_CMD = 0x80   # control byte: one command follows (datasheet 8.1.5.2)
_DATA = b"\x40"  # control byte: display data follows

# datasheet section 9 and the application note's start-up sequence
_INIT = (
    0xAE,        # display off
    0x20, 0x00,  # horizontal addressing mode
    0x40,        # start line 0
    0xA1,        # segment remap: column 127 is SEG0
    0xA8, 0x3F,  # multiplex ratio 64
    0xC8,        # COM scan from COM63 down
    0xD3, 0x00,  # no display offset
    0xDA, 0x12,  # COM pins: alternative configuration (128x64 panels)
    0xD5, 0x80,  # clock divide / oscillator
    0xD9, 0xF1,  # pre-charge period (internal charge pump)
    0xDB, 0x30,  # VCOMH deselect level
    0x81, 0xCF,  # contrast
    0xA4,        # follow RAM content
    0xA6,        # normal (not inverted)
    0x8D, 0x14,  # charge pump on
    0xAF,        # display on
)


class SSD1306:
    def __init__(self, i2c, addr=0x3C):
        self.i2c = i2c
        self.addr = addr
        self._cmd_buf = bytearray(2)
        self._cmd_buf[0] = _CMD
        for c in _INIT:
            self._command(c)

    def _command(self, c):
        self._cmd_buf[1] = c
        self.i2c.writeto(self.addr, self._cmd_buf)

    def show(self, buf, lines=None):
        for c in (0x21, 0, 127, 0x22, 0, 7):  # column and page ranges: whole panel
            self._command(c)
        self.i2c.writevto(self.addr, (_DATA, buf))
