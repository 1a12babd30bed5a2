"""The emulator's display panel: each screen goes to a pipe as one record,
    b"SCR" | text length (2 bytes, big-endian) | text lines joined by "\\n" | frame buffer
so the host can print the text and render the very pixels the firmware drew."""


class PipePanel:
    def __init__(self, stream):
        self.stream = stream

    def show(self, buf, lines=()):
        text = "\n".join(lines).encode()
        self.stream.write(b"SCR" + len(text).to_bytes(2, "big") + text)
        self.stream.write(buf)
