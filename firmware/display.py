"""Text screens for a 128x64 monochrome panel, drawn with framebuf.

The buffer is MONO_VLSB, the SSD1306's own page layout, so the panel driver sends it
as is; the emulator receives the same bytes and renders them. 8x8 font: 16 columns,
8 rows. Row 0 is drawn inverted as a title bar."""
import framebuf

WIDTH = 128
HEIGHT = 64
COLS = WIDTH // 8
ROWS = HEIGHT // 8


class Display:
    def __init__(self, panel):
        self.panel = panel
        self.buf = bytearray(WIDTH * HEIGHT // 8)
        self.fb = framebuf.FrameBuffer(self.buf, WIDTH, HEIGHT, framebuf.MONO_VLSB)
        self.lines = ()

    def show(self, *lines):
        """Draw up to ROWS lines (longer ones are cut at COLS characters)."""
        lines = tuple(line[:COLS] for line in lines[:ROWS])
        fb = self.fb
        fb.fill(0)
        for row, line in enumerate(lines):
            y = row * 8
            if row == 0:
                fb.fill_rect(0, 0, WIDTH, 8, 1)
                fb.text(line, (WIDTH - 8 * len(line)) // 2, y, 0)
            else:
                fb.text(line, 0, y, 1)
        self.lines = lines
        self.panel.show(self.buf, lines)
