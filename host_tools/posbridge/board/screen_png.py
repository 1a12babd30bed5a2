"""The emulated display as a picture: the firmware's own 128x64 MONO_VLSB frame buffer
(the SSD1306's page layout: byte k is column k % 128 of page k // 128, bit 0 at the
top) rendered to a PNG, scaled up and coloured like the OLED."""
from pathlib import Path

from PIL import Image

WIDTH, HEIGHT = 128, 64
ON = (150, 220, 255)
OFF = (8, 12, 24)


def render(framebuffer: bytes, scale: int = 4) -> Image.Image:
    if len(framebuffer) != WIDTH * HEIGHT // 8:
        raise ValueError(f"frame buffer of {len(framebuffer)} bytes, expected 1024")
    img = Image.new("RGB", (WIDTH, HEIGHT), OFF)
    px = img.load()
    for page in range(HEIGHT // 8):
        row = framebuffer[page * WIDTH:(page + 1) * WIDTH]
        for x, byte in enumerate(row):
            for bit in range(8):
                if byte >> bit & 1:
                    px[x, page * 8 + bit] = ON
    return img.resize((WIDTH * scale, HEIGHT * scale), Image.NEAREST)


def save(framebuffer: bytes, path: Path, scale: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    render(framebuffer, scale).save(path)
    return path
