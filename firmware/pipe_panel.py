"""The emulator's display panel: each screen goes to a pipe as one record,
    b"SCR" | heap free (4 bytes) | text length (2 bytes) | text lines joined by "\\n"
    | frame buffer
(big-endian) so the host can print the text, render the very pixels the firmware drew
and say how much heap the board had left on that screen (after a collection). With
`names`, each screen is followed by the count of interned names on stdout
(micropython.qstr_info's line), for the endurance run: MicroPython never frees them."""
import gc
import micropython


class PipePanel:
    def __init__(self, stream, names=False):
        self.stream = stream
        self.names = names

    def show(self, buf, lines=()):
        gc.collect()
        free = gc.mem_free()
        text = "\n".join(lines).encode()
        self.stream.write(b"SCR" + free.to_bytes(4, "big") + len(text).to_bytes(2, "big")
                          + text)
        self.stream.write(buf)
        if self.names:
            micropython.qstr_info()
