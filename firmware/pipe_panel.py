"""The emulator's display panel: each screen goes to a pipe as one record,
    b"SCR" | heap free (4 bytes) | text length (2 bytes) | text lines joined by "\\n"
    | frame buffer
(big-endian) so the host can print the text, render the very pixels the firmware drew
and say how much heap the board had left on that screen (after a collection). With
`names`, each screen is followed by the count of interned names on stdout
(micropython.qstr_info's line), for the endurance run: MicroPython never frees them.
With `timed`, the time this panel spends on each screen (the collection for the heap
figure, the pipe) goes to stdout as "panel_us N": the emulator's own work, which make
bench takes out of the board's (the board's panel sends the frame buffer over I2C)."""
import gc
import micropython
import time


class PipePanel:
    def __init__(self, stream, names=False, timed=False):
        self.stream = stream
        self.names = names
        self.timed = timed

    def show(self, buf, lines=()):
        t0 = time.ticks_us()
        gc.collect()
        free = gc.mem_free()
        text = "\n".join(lines).encode()
        self.stream.write(b"SCR" + free.to_bytes(4, "big") + len(text).to_bytes(2, "big")
                          + text)
        self.stream.write(buf)
        if self.timed:
            print("panel_us", time.ticks_diff(time.ticks_us(), t0))
        if self.names:
            micropython.qstr_info()
